import SyncCore

/// Reads every entitled user. Throws `SourceError` unless the read is provably complete.
public protocol DirectorySource: Sendable {
    func snapshot() async throws -> DirectorySnapshot
    /// Binds or authenticates and says, in one line, what answered (for `check-config --connect`).
    func checkConnection() async throws -> String
    /// One user by id or username, for `explain`; by default from a full snapshot.
    func lookup(_ value: String, by field: MatchRule.UserField) async throws -> DirectoryLookup
    /// What a run needs, proven with bounded requests (`check-config --connect`): by default the
    /// connection alone; an adapter adds what its reads rely on (a base, a filter, read access).
    func checkReadiness() async -> [ReadinessCheck]
}

/// One line of `check-config --connect`: what was proven, or what a run would trip over.
public struct ReadinessCheck: Sendable, Equatable {
    public enum Status: String, Sendable {
        case ok
        /// Works, but probably not what the operator meant (a filter or tag that matches nothing).
        case warning
        case failed
    }

    /// `source`, `gateway NAME`, `journal`.
    public var subject: String
    public var status: Status
    public var detail: String

    public init(_ subject: String, _ status: Status, _ detail: String) {
        self.subject = subject
        self.status = status
        self.detail = detail
    }

    /// `checkConnection()` as one check.
    static func connection(_ subject: String, _ check: () async throws -> String) async -> ReadinessCheck {
        do {
            return ReadinessCheck(subject, .ok, try await check())
        } catch {
            return ReadinessCheck(subject, .failed, "\(error)")
        }
    }
}

extension DirectorySource {
    public func checkReadiness() async -> [ReadinessCheck] {
        [await ReadinessCheck.connection("source") { try await checkConnection() }]
    }
}

/// What the directory says about one user, for `explain`.
public enum DirectoryLookup: Sendable, Equatable {
    case present(DirectoryUser)
    /// The entry exists but does not match the source's filter.
    case outsideFilter(dn: String)
    case absent
}

extension DirectorySource {
    public func lookup(_ value: String, by field: MatchRule.UserField) async throws -> DirectoryLookup {
        let wanted = MatchKey.normalize(value, as: field)
        let user = try await snapshot().users.first { user in
            let mine = field == .id ? user.id.rawValue : user.username
            return mine.map { MatchKey.normalize($0, as: field) == wanted } ?? false
        }
        return user.map(DirectoryLookup.present) ?? .absent
    }
}

/// Why a directory read is not a snapshot. Every case stops the run before any write (exit 4).
public struct SourceError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A gateway error: unreachable, 401, an unexpected answer. Its text names the gateway and never a secret.
public struct GatewayError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// HTTP status when the gateway answered, for callers that treat 404/409 specially.
    public var status: Int?
    /// The request timed out: a write may or may not have been applied.
    public var timedOut: Bool
    public init(_ description: String, status: Int? = nil, timedOut: Bool = false) {
        self.description = description
        self.status = status
        self.timedOut = timedOut
    }
}

/// What blocking a consumer found.
public enum BlockResult: Hashable, Sendable {
    case created(BlockID)
    /// Our block was already there (for instance, a write that timed out had landed).
    case alreadyOurs(BlockID)
}

/// One API gateway, in the sync's own terms: managed consumers and their block state, marks (our
/// tags), our block, credentials. Each adapter maps these to its own gateway's mechanisms (see its
/// module); nothing here names them.
/// Reads are in bulk; writes touch one consumer at a time.
public protocol Gateway: Sendable {
    var name: String { get }
    /// Writes in flight at once (`concurrency` in the config).
    var concurrency: Int { get }
    /// Managed consumers (every one in scope) and our blocks. Throws when the gateway cannot be
    /// written at all, so nothing is planned against it.
    func snapshot() async throws -> GatewaySnapshot
    /// Keys, our block and anyone else's, of the given consumers only.
    func details(for consumers: [ConsumerID]) async throws -> [ConsumerID: ConsumerDetails]
    /// The consumer as it is now (still in scope), or nil when it is gone.
    func readConsumer(_ id: ConsumerID) async throws -> Consumer?
    /// Sets the consumer's marks: afterwards it carries exactly `keeping` (the tags that are not
    /// ours, as just read) plus `marks`. Empty `marks` unmarks it.
    func mark(_ id: ConsumerID, with marks: [String], keeping: [String]) async throws -> Consumer
    /// Blocks every request of the consumer (status `Marks.blockStatus`).
    func block(_ id: ConsumerID) async throws -> BlockResult
    /// Removes our block; one that is already gone counts as removed.
    func unblock(_ block: BlockID, of consumer: ConsumerID) async throws
    /// Deletes one key credential; one that is already gone counts as deleted.
    func deleteKey(_ id: KeyID, of consumer: ConsumerID) async throws
    /// Deletes one credential of another type; one that is already gone counts as deleted.
    func deleteCredential(_ credential: CredentialRef, of consumer: ConsumerID) async throws
    /// The key with this fingerprint and its consumer (the key itself is never sent).
    func findKey(fingerprint: String) async throws -> (key: KeyID, consumer: ConsumerID)?
    /// A consumer by id, username or custom_id, in scope or not (for `explain`).
    func findConsumer(_ name: String) async throws -> Consumer?
    /// Reaches the gateway with its credentials and says, in one line, what answered (product and
    /// version); throws when it cannot be used.
    func checkConnection() async throws -> String
    /// What a run needs, proven with bounded requests (`check-config --connect`): by default the
    /// connection alone; an adapter adds the scope it reads (at least one managed consumer).
    func checkReadiness() async -> [ReadinessCheck]
}

extension Gateway {
    public var concurrency: Int { 1 }

    public func checkReadiness() async -> [ReadinessCheck] {
        [await ReadinessCheck.connection("gateway \(name)") { try await checkConnection() }]
    }

    /// Removes our marks, keeping every other tag.
    public func unmark(_ id: ConsumerID, keeping: [String]) async throws -> Consumer {
        try await mark(id, with: [], keeping: keeping)
    }
}

/// The append-only audit journal. Each append is durable (fsynced) before it returns.
public protocol JournalStore: AnyObject, Sendable {
    /// Appends the records in order (the store adds seq, time, prev and hash), durable together
    /// (one fsync): all of them, or, on an error, none. Returns their seqs.
    @discardableResult
    func append(contentsOf events: [JournalEvent]) throws -> [Int64]
    /// `seq:hash` of the last record, for the run's last log line.
    var head: String { get }
}

extension JournalStore {
    /// Appends one record and returns its seq.
    @discardableResult
    public func append(_ event: JournalEvent) throws -> Int64 {
        try append(contentsOf: [event])[0]
    }

    /// Appends the `run-started` record of a real run; on failure the report says nothing was done.
    /// Returns false when the run must not go on.
    func startRun(_ started: JournalEvent.RunStarted, report: inout RunReport) -> Bool {
        do {
            try append(.runStarted(started))
            return true
        } catch {
            report.errors.append("cannot write the journal: \(error); nothing was done")
            report.exitStatus = .error
            return false
        }
    }
}

/// A directory's change feed, for `watch` (RFC 4533 on OpenLDAP and 389-ds; `uSNChanged` polling on
/// Active Directory). The feed never reports a user as gone because a connection dropped: it
/// reconnects with backoff, resumes where it was, and says so when it cannot.
public protocol DirectoryFeed: Sendable {
    /// Follows the directory until `shouldStop()` is true, delivering events in order (on the
    /// feed's own thread). The first `.live` comes once the feed is established: every change made
    /// after it is delivered. Returns when stopped; throws only when the feed cannot work at all
    /// (the server does not support it, a bad bind).
    func follow(_ deliver: @escaping @Sendable (FeedEvent) -> Void, shouldStop: @escaping @Sendable () -> Bool) async throws
}

/// What a change feed reports.
public enum FeedEvent: Sendable, Equatable {
    /// Established (again): changes from now on are delivered. `resumed` is true when a reconnect
    /// continued from the feed's cookie without reading everything again.
    case live(resumed: Bool)
    /// One directory entry changed. `key` names the entry across events (its entryUUID or
    /// objectGUID); `before` is what the feed last knew of it, `now` its state now (nil: deleted,
    /// or no longer matched by the source's filter). `changedAt` is when the directory made the
    /// change, if it says (for the lag metric).
    case changed(key: String, before: DirectoryUser?, now: DirectoryUser?, changedAt: Double?)
    /// The server cannot resume (e-syncRefreshRequired, a lost cookie) and the feed starts over: the
    /// caller runs a full reconciliation.
    case refreshRequired(String)
    /// The connection dropped; the feed is reconnecting (nothing is concluded from it).
    case disconnected(String)
}
