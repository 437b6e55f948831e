import Synchronization

/// A small lock for the adapters' shared state (the journal's chain, a connection counter): the
/// standard library's `Mutex`, which owns its storage (a `pthread_mutex_t` in a stored property,
/// passed as `&mutex`, is not guaranteed a stable address).
public final class Lock: Sendable {
    private let mutex = Mutex<Void>(())

    public init() {}

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try mutex.withLock { _ in try body() }
    }
}
