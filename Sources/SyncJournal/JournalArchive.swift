#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SyncCore
import SyncEngine

/// `journal rotate` and `journal acknowledge` (docs/operations.md): the old file is kept under a new name
/// (`<journal>.<UTC time>`) and a new file starts with a `journal-started` record that names it and
/// its last verified `seq:hash`, so the chain of evidence survives and a person's decision is itself
/// journaled. Never use logrotate on the journal: it would cut the chain without that record.
public enum JournalArchive {
    public struct Outcome: Sendable {
        /// The old file's new path.
        public var archived: String
        /// `seq:hash` of the new file's first record.
        public var head: String
    }

    /// Rotates a journal that verifies (refuses one that does not: that needs `acknowledge`).
    /// Who starts the new file, for its first record.
    public struct Identity: Sendable {
        public var version: String
        public var host: String
        public var uid: Int64
        public init(version: String, host: String, uid: Int64) {
            self.version = version
            self.host = host
            self.uid = uid
        }
    }

    public static func rotate(path: String, identity: Identity, now: Int64) throws -> Outcome {
        try start(path: path, acknowledging: nil, identity: identity, now: now)
    }

    /// Starts a new journal after a person looked at a journal that does not verify.
    public static func acknowledge(path: String, reason: String, identity: Identity, now: Int64) throws -> Outcome {
        try start(path: path, acknowledging: reason, identity: identity, now: now)
    }

    static func start(path: String, acknowledging reason: String?, identity: Identity, now: Int64) throws
        -> Outcome
    {
        let (directoryPath, name) = SafeDirectory.split(path)
        let directory = try JournalFile.directory(directoryPath)
        let lock = try JournalLock(journalPath: path, directory: directory)
        defer { withExtendedLifetime(lock) {} }

        let exists = directory.exists(name)
        var problem: String? = nil
        var last: (seq: Int64, hash: String) = (0, JournalRecord.genesis)
        var lastGoodUsers: Int? = nil
        if exists {
            let (result, _) = try JournalVerifier.verifyFile(path: path, anchor: nil, tail: .head)
            problem = result.problem
            last = (result.lastSeq, result.lastHash)
            lastGoodUsers = (try? JournalScan.scan(path: path))?.lastGoodUsers
        } else {
            let head = JournalHead.read(directory, name: name)
            guard let missing = JournalTail.problemForMissingFile(head: head) else {
                throw JournalError.cannotOpen(path: path, reason: "there is no journal here yet; nothing to rotate or acknowledge")
            }
            problem = missing
            if case .value(let seq, let hash) = head { last = (seq, hash) }
        }
        if reason == nil, let problem {
            throw JournalError.tampered(path: path, problem: problem + " (rotate keeps only journals that verify)")
        }
        if reason != nil && problem == nil {
            throw JournalError.cannotOpen(
                path: path, reason: "it verifies, so there is nothing to acknowledge; 'idp-sync journal rotate' starts a new file")
        }
        if reason == nil && last.seq == 0 {
            throw JournalError.cannotOpen(path: path, reason: "it holds no records; nothing to rotate")
        }

        var archivedName = name + (exists ? "." : ".missing.") + stamp(now)
        if exists {
            var suffix = 1
            let base = archivedName
            while directory.exists(archivedName) {
                archivedName = "\(base).\(suffix)"
                suffix += 1
            }
            // link + unlink: never replaces an existing file of that name.
            guard linkat(directory.fd, name, directory.fd, archivedName, 0) == 0 else {
                throw JournalError.cannotWrite(path: path, reason: "cannot keep it as \(archivedName): \(String(cString: strerror(errno)))")
            }
            guard unlinkat(directory.fd, name, 0) == 0 else {
                throw JournalError.cannotWrite(path: path, reason: "cannot move it aside: \(String(cString: strerror(errno)))")
            }
        }
        try JournalFile.writeHead(directory, name: name, path: path, seq: 0, hash: JournalRecord.genesis)
        let journal = try JournalFile(path: path, directory: directory)
        try journal.append(
            .journalStarted(
                JournalEvent.JournalStarted(
                    version: identity.version, host: identity.host, uid: identity.uid, previousFile: archivedName,
                    previousSeq: last.seq, previousHash: last.hash, acknowledgedReason: reason, acknowledgedProblem: problem,
                    lastGoodUsers: lastGoodUsers.map { Int64($0) })))
        return Outcome(archived: directoryPath + "/" + archivedName, head: journal.head)
    }

    /// `20261207T031500Z`.
    static func stamp(_ now: Int64) -> String {
        TimeFormat.rfc3339(now).filter { $0 != "-" && $0 != ":" }
    }
}
