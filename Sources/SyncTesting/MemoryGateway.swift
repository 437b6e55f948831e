import Synchronization
import SyncCore
import SyncEngine

/// An in-memory gateway for engine tests: consumers with tags, our blocks, a person's blocks and
/// keys, every write recorded in order. Never linked into the executable.
public final class MemoryGateway: Gateway, Sendable {
    public let name: String
    public let concurrency: Int

    public struct State: Sendable {
        public var consumers: [ConsumerID: Consumer] = [:]
        public var order: [ConsumerID] = []
        public var blocks: [ConsumerID: BlockID] = [:]
        public var foreign: [ConsumerID: ForeignBlock] = [:]
        public var keys: [ConsumerID: [KeyRef]] = [:]
        /// Credentials of other types than key-auth.
        public var credentials: [ConsumerID: [CredentialRef]] = [:]
        public var restrictions: [ConsumerID: [String]] = [:]
        /// Every write, in the order it started: "mark c-1", "block c-1", "unblock c-1", "delete-key k-1".
        public var writes: [String] = []
        public var inFlight = 0
        public var maxInFlight = 0
        var nextBlock = 0
    }

    /// Decides whether a write fails: given "block c-1" (as in `writes`), an error to throw, or nil.
    public typealias Failure = @Sendable (String) -> (any Error)?
    /// Runs when a consumer is read again right before a write: the test may change it there.
    public typealias BeforeReread = @Sendable (ConsumerID, inout State) -> Void

    private let state = Mutex(State())
    private let failure: Failure
    private let beforeReread: BeforeReread
    /// How long each write takes, so writes of one batch overlap.
    private let writeNanoseconds: UInt64

    public init(
        name: String = "memory", concurrency: Int = 8, writeNanoseconds: UInt64 = 0,
        failure: @escaping Failure = { _ in nil }, beforeReread: @escaping BeforeReread = { _, _ in }
    ) {
        self.name = name
        self.concurrency = concurrency
        self.writeNanoseconds = writeNanoseconds
        self.failure = failure
        self.beforeReread = beforeReread
    }

    /// Adds a managed consumer.
    public func add(
        _ consumer: Consumer, keys: [KeyRef] = [], credentials: [CredentialRef] = [], restrictions: [String] = [],
        foreign: ForeignBlock? = nil, blocked: Bool = false
    ) {
        state.withLock { s in
            s.consumers[consumer.id] = consumer
            s.order.append(consumer.id)
            s.keys[consumer.id] = keys
            s.credentials[consumer.id] = credentials
            s.restrictions[consumer.id] = restrictions
            s.foreign[consumer.id] = foreign
            if blocked {
                s.nextBlock += 1
                s.blocks[consumer.id] = BlockID("b-\(s.nextBlock)")
            }
        }
    }

    public var current: State { state.withLock { $0 } }

    // MARK: Gateway

    public func snapshot() async throws -> GatewaySnapshot {
        state.withLock { s in
            GatewaySnapshot(name: name, consumers: s.order.compactMap { s.consumers[$0] }, ourBlocks: s.blocks)
        }
    }

    public func details(for consumers: [ConsumerID]) async throws -> [ConsumerID: ConsumerDetails] {
        state.withLock { s in
            var out: [ConsumerID: ConsumerDetails] = [:]
            for id in consumers {
                let keys = s.keys[id] ?? []
                let all = keys.map { CredentialRef(type: "key-auth", id: $0.id.rawValue, identity: $0.fingerprint) }
                    + (s.credentials[id] ?? [])
                out[id] = ConsumerDetails(
                    keys: keys, ourBlock: s.blocks[id], foreign: s.foreign[id], credentials: all.sorted(),
                    restrictions: s.restrictions[id] ?? [])
            }
            return out
        }
    }

    public func readConsumer(_ id: ConsumerID) async throws -> Consumer? {
        state.withLock { s in
            beforeReread(id, &s)
            return s.consumers[id]
        }
    }

    private func write<T>(_ what: String, _ body: (inout State) throws -> T) async throws -> T {
        state.withLock { s in
            s.writes.append(what)
            s.inFlight += 1
            s.maxInFlight = max(s.maxInFlight, s.inFlight)
        }
        if writeNanoseconds > 0 { try? await Task.sleep(nanoseconds: writeNanoseconds) }
        defer { state.withLock { $0.inFlight -= 1 } }
        if let error = failure(what) { throw error }
        return try state.withLock { try body(&$0) }
    }

    public func mark(_ id: ConsumerID, with marks: [String], keeping: [String]) async throws -> Consumer {
        try await write("mark \(id)") { s in
            guard var consumer = s.consumers[id] else { throw GatewayError("\(name): no consumer \(id)", status: 404) }
            consumer.tags = keeping + marks
            s.consumers[id] = consumer
            return consumer
        }
    }

    public func block(_ id: ConsumerID) async throws -> BlockResult {
        try await write("block \(id)") { s in
            if let existing = s.blocks[id] { return .alreadyOurs(existing) }
            s.nextBlock += 1
            let block = BlockID("b-\(s.nextBlock)")
            s.blocks[id] = block
            return .created(block)
        }
    }

    public func unblock(_ block: BlockID, of consumer: ConsumerID) async throws {
        try await write("unblock \(consumer)") { s in
            if s.blocks[consumer] == block { s.blocks[consumer] = nil }
        }
    }

    public func deleteKey(_ id: KeyID, of consumer: ConsumerID) async throws {
        try await write("delete-key \(id)") { s in
            s.keys[consumer]?.removeAll { $0.id == id }
        }
    }

    public func deleteCredential(_ credential: CredentialRef, of consumer: ConsumerID) async throws {
        try await write("delete-credential \(credential.qualifiedID)") { s in
            s.credentials[consumer]?.removeAll { $0.type == credential.type && $0.id == credential.id }
        }
    }

    public func findKey(fingerprint: String) async throws -> (key: KeyID, consumer: ConsumerID)? {
        state.withLock { s in
            for (consumer, keys) in s.keys {
                if let key = keys.first(where: { $0.fingerprint == fingerprint }) { return (key.id, consumer) }
            }
            return nil
        }
    }

    public func findConsumer(_ name: String) async throws -> Consumer? {
        state.withLock { s in
            s.consumers[ConsumerID(name)] ?? s.consumers.values.first { $0.username == name || $0.customID == name }
        }
    }

    public func checkConnection() async throws -> String { "memory gateway \(name)" }
}
