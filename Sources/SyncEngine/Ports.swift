import SyncCore

/// Reads every entitled user. Throws `SourceError` unless the read is provably complete.
public protocol DirectorySource: Sendable {
    func snapshot() async throws -> DirectorySnapshot
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

/// What adding our plugin found.
public enum AddPluginResult: Hashable, Sendable {
    case created(PluginID)
    /// Kong said 409 and the plugin in the way is ours: the consumer is already disabled.
    case alreadyOurs(PluginID)
}

/// One Kong gateway: reads in bulk, writes one consumer at a time.
public protocol Gateway: Sendable {
    var name: String { get }
    /// Writes in flight at once (`concurrency` in the config).
    var concurrency: Int { get }
    /// Managed consumers (all pages of `select_tags`) and our plugins. Refuses a DB-less node.
    func snapshot() async throws -> GatewaySnapshot
    /// Keys and all plugins of the given consumers only.
    func details(for consumers: [ConsumerID]) async throws -> [ConsumerID: ConsumerDetails]
    /// The consumer as it is now, or nil when it is gone.
    func readConsumer(_ id: ConsumerID) async throws -> Consumer?
    /// Replaces the consumer's whole tag array (Kong's PATCH semantics).
    func setTags(_ id: ConsumerID, _ tags: [String]) async throws -> Consumer
    /// Adds our request-termination plugin to the consumer alone.
    func addBlockPlugin(_ id: ConsumerID) async throws -> AddPluginResult
    /// Removes one of our plugins; a plugin that is already gone counts as removed.
    func removePlugin(_ id: PluginID, of consumer: ConsumerID) async throws
    /// Deletes one key-auth credential; a key that is already gone counts as deleted.
    func deleteKey(_ id: KeyID, of consumer: ConsumerID) async throws
}

extension Gateway {
    public var concurrency: Int { 1 }
}

/// The append-only audit journal. Each append is durable (fsynced) before it returns.
public protocol JournalStore: AnyObject, Sendable {
    /// Appends one record (without seq, prev, hash, which the store adds) and returns its seq.
    @discardableResult
    func append(_ fields: [String: JSONValue]) throws -> Int64
    /// `seq:hash` of the last record, for the run's last log line.
    var head: String { get }
}

extension JournalStore {
    /// Appends the `run-started` record of a real run; on failure the report says nothing was done.
    /// Returns false when the run must not go on.
    func startRun(_ runID: String?, fields: [String: JSONValue], report: inout RunReport) -> Bool {
        var record = fields
        record["event"] = "run-started"
        record["run"] = JSONValue(runID)
        record["dry_run"] = false
        do {
            try append(record)
            return true
        } catch {
            report.errors.append("cannot write the journal: \(error); nothing was done")
            report.exitStatus = .error
            return false
        }
    }
}
