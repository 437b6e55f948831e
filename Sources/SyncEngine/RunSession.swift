import Logging
import SyncCore

/// What opening the journal for a real run found (see `JournalOpening`).
public struct OpenedJournal: Sendable {
    public var store: any JournalStore
    /// Held for as long as the session lives: one real run at a time (docs/operations.md).
    public var lock: any Sendable
    /// `users` of the last run that ended ok (the shrink brake's baseline).
    public var lastGoodUsers: Int?
    /// Set when opening truncated a torn last line.
    public var repaired: String?
    /// The run before, killed before its last record, with its intents that have no outcome.
    public var interrupted: (run: String, intentsWithoutOutcome: [Int64])?
    /// Set when the journal's mode was wider than it should be and was narrowed.
    public var modeFixed: String?
    /// Consumers the journal says idp-sync disabled and has not restored, by gateway (see `JournalScan`).
    public var disabledByUs: [String: [String: Int64]]
    /// Times of disables applied in the journal's last hour outside accepted plans (see `JournalScan`).
    public var recentDisables: [Int64]

    public init(
        store: any JournalStore, lock: any Sendable, lastGoodUsers: Int? = nil, repaired: String? = nil,
        interrupted: (run: String, intentsWithoutOutcome: [Int64])? = nil, modeFixed: String? = nil,
        disabledByUs: [String: [String: Int64]] = [:], recentDisables: [Int64] = []
    ) {
        self.disabledByUs = disabledByUs
        self.recentDisables = recentDisables
        self.store = store
        self.lock = lock
        self.lastGoodUsers = lastGoodUsers
        self.repaired = repaired
        self.interrupted = interrupted
        self.modeFixed = modeFixed
    }
}

/// How a run reaches its journal: take the lock, open the journal and check it (a tampered
/// journal throws, so nothing is written anywhere).
public protocol JournalOpening: Sendable {
    func openForRun() throws -> OpenedJournal
}

/// The session every real run opens (sync, restore, and later watch): the lock, the journal
/// checked and repaired, and the `run-started` record saying what opening found — the same
/// fields for every command.
public struct RunSession: Sendable {
    public let journal: any JournalStore
    /// The `run-started` record, with `repaired` and `previous_run_interrupted` filled in.
    public let started: JournalEvent.RunStarted
    public let lastGoodUsers: Int?
    /// Consumers the journal says idp-sync disabled and has not restored, by gateway.
    public let disabledByUs: [String: [String: Int64]]
    public let recentDisables: [Int64]
    private let lock: any Sendable

    /// Opens the session; what opening found is logged and goes into `started`.
    public static func open(_ opening: any JournalOpening, started base: JournalEvent.RunStarted, logger: Logger) throws
        -> RunSession
    {
        let opened = try opening.openForRun()
        var started = base
        if let fixed = opened.modeFixed {
            logger.warning("journal mode fixed", metadata: ["journal.mode": "\(fixed)"])
        }
        if let repaired = opened.repaired {
            started.repaired = repaired
            logger.warning("journal repaired", metadata: ["journal.repaired": "\(repaired)"])
        }
        if let interrupted = opened.interrupted {
            // Writes of a killed run may or may not have reached the gateway; this run re-reads
            // everything, converges, and records what it found.
            started.previousRunInterrupted = interrupted
            logger.warning(
                "the previous run was interrupted",
                metadata: [
                    "sync.previous_run": "\(interrupted.run)",
                    "sync.intents_without_outcome": .stringConvertible(interrupted.intentsWithoutOutcome.count),
                ])
        }
        return RunSession(
            journal: opened.store, started: started, lastGoodUsers: opened.lastGoodUsers,
            disabledByUs: opened.disabledByUs, recentDisables: opened.recentDisables, lock: opened.lock)
    }

    private init(
        journal: any JournalStore, started: JournalEvent.RunStarted, lastGoodUsers: Int?,
        disabledByUs: [String: [String: Int64]], recentDisables: [Int64], lock: any Sendable
    ) {
        self.disabledByUs = disabledByUs
        self.recentDisables = recentDisables
        self.journal = journal
        self.started = started
        self.lastGoodUsers = lastGoodUsers
        self.lock = lock
    }
}
