import ArgumentParser
import Logging
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif


extension ConfigOptions {
    /// The one "load the config or exit 1" path: every problem on standard error, then exit 1.
    func loadOrExit() throws -> SyncConfiguration {
        do {
            return try RunSetup.readConfig(path).0
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

    /// Opens the engine's run session on the configured journal (lock, checks, repair, run-started).
    static func open(_ config: SyncConfiguration, configBytes: [UInt8], logger: Logger) throws -> RunSession {
        try RunSession.open(JournalFiles(path: config.journalPath), started: started(configBytes: configBytes), logger: logger)
    }
}
