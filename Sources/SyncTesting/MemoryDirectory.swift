import SyncCore
import SyncEngine

/// An in-memory directory for engine tests: a fixed list of users, or a read that fails.
public struct MemoryDirectory: DirectorySource {
    public var users: [DirectoryUser]
    /// When set, every read fails with this (an incomplete read).
    public var failure: SourceError?

    public init(users: [DirectoryUser], failure: SourceError? = nil) {
        self.users = users
        self.failure = failure
    }

    public func snapshot() async throws -> DirectorySnapshot {
        if let failure { throw failure }
        return DirectorySnapshot(sourceType: "memory", scope: "memory", users: users)
    }

    public func checkConnection() async throws -> String { "memory directory: \(users.count) users" }
}
