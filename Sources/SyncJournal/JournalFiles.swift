import SyncEngine

/// The journal at a path, as a run opens it: the lock on `<journal>.lock`, then the journal file,
/// checked against its head (`JournalFile`).
public struct JournalFiles: JournalOpening {
    public let path: String

    public init(path: String) { self.path = path }

    public func openForRun() throws -> OpenedJournal {
        let (directoryPath, _) = SafeDirectory.split(path)
        let directory = try JournalFile.directory(directoryPath)
        let lock = try JournalLock(journalPath: path, directory: directory)
        let file = try JournalFile(path: path, directory: directory)
        return OpenedJournal(
            store: file, lock: lock, lastGoodUsers: file.lastGoodUsers, repaired: file.repaired,
            interrupted: file.interrupted.map { ($0.run, $0.unfinishedIntents) }, modeFixed: file.modeFixed,
            disabledByUs: file.disabledByUs, recentDisables: file.recentDisables)
    }
}
