import ArgumentParser
import Logging
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// What `sync` and `restore` share before a real run: the lock, the journal (checked, a torn
/// line repaired), and the fields of `run-started` (docs/journal.md), so both record the same things.
struct OpenedRun {
    var lock: JournalLock
    var journal: JournalFile
    var started: JournalEvent.RunStarted
}

extension ConfigOptions {
    /// The one "load the config or exit 1" path: every problem on standard error, then exit 1.
    func loadOrExit() throws -> SyncConfiguration {
        do {
            return try RunSetup.readConfig(config).0
        } catch {
            Console.error("error: \(error)\n")
            throw ExitCode(1)
        }
    }
}

enum RunSetup {
    /// Reads the config once: the same bytes are parsed and hashed into `config_sha256`.
    static func readConfig(_ path: String) throws -> (SyncConfiguration, [UInt8]) {
        try ConfigLoader(environment: Environment.all).loadWithBytes(path: path)
    }

    /// The `run-started` record of this process (its `run` is set by the engine).
    static func started(configBytes: [UInt8]) -> JournalEvent.RunStarted {
        JournalEvent.RunStarted(
            run: nil, version: IdPSync.version, host: Environment.hostname, uid: Int64(getuid()),
            configSHA256: KeyFingerprint.hexSHA256(configBytes))
    }

    /// Takes the lock and opens the journal; what opening found (a repair, an interrupted run, a
    /// narrowed mode) is logged and goes into `run-started`.
    static func open(_ config: SyncConfiguration, configBytes: [UInt8], logger: Logger) throws -> OpenedRun {
        let lock = try JournalLock(journalPath: config.journalPath)
        let file = try JournalFile(path: config.journalPath)
        var started = started(configBytes: configBytes)
        if let fixed = file.modeFixed {
            logger.warning("journal mode fixed", metadata: ["journal.mode": "\(fixed)"])
        }
        if let repaired = file.repaired {
            started.repaired = repaired
            logger.warning("journal repaired", metadata: ["journal.repaired": "\(repaired)"])
        }
        if let interrupted = file.interrupted {
            // Writes of a killed run may or may not have reached the gateway; this run re-reads
            // everything, converges, and records what it found.
            started.previousRunInterrupted = (interrupted.run, interrupted.unfinishedIntents)
            logger.warning(
                "the previous run was interrupted",
                metadata: [
                    "sync.previous_run": "\(interrupted.run)",
                    "sync.intents_without_outcome": "\(interrupted.unfinishedIntents.count)",
                ])
        }
        return OpenedRun(lock: lock, journal: file, started: started)
    }
}
