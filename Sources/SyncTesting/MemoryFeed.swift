import Synchronization
import SyncCore
import SyncEngine

/// A scripted change feed for engine tests: `send` queues events, `follow` delivers them in order
/// until stopped. `startLive` sends `.live(resumed: false)` as soon as `follow` starts.
public final class MemoryFeed: DirectoryFeed, Sendable {
    private let queue = Mutex<[FeedEvent]>([])
    private let failure: String?

    public init(startLive: Bool = true, failure: String? = nil) {
        self.failure = failure
        if startLive { queue.withLock { $0.append(.live(resumed: false)) } }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public func send(_ event: FeedEvent) { queue.withLock { $0.append(event) } }

    /// A user's change, with what the feed knew before.
    public func change(_ key: String, before: DirectoryUser?, now: DirectoryUser?, at: Double? = nil) {
        send(.changed(key: key, before: before, now: now, changedAt: at))
    }

    public func follow(_ deliver: @escaping @Sendable (FeedEvent) -> Void, shouldStop: @escaping @Sendable () -> Bool) async throws {
        if let failure { throw Failure(description: failure) }
        while !shouldStop() {
            let events = queue.withLock { events in
                defer { events.removeAll() }
                return events
            }
            for event in events { deliver(event) }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }
}
