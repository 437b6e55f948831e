import CLDAP
import Dispatch
import Logging
import SyncEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The change feed of an LDAP source, whatever the server: on the first `follow` it reads the
/// rootDSE once and delegates to `ActiveDirectoryFeed` when `supportedCapabilities` names Active
/// Directory (1.2.840.113556.1.4.800; Samba's AD DC too), to `LDAPDirectoryFeed` (RFC 4533)
/// otherwise. The choice is kept for later calls. Until the probe succeeds, a server that cannot
/// be reached is `.disconnected` and retried with the feeds' backoff; a bad bind throws.
public final class LDAPFeedSelector: DirectoryFeed, Sendable {
    public enum Kind: Sendable, Equatable {
        case activeDirectory
        case contentSync
    }

    public let settings: LDAPSettings
    public let pollSeconds: Int
    private let logger: Logger
    private let chosen = Mutex<(any DirectoryFeed)?>(nil)
    private let chosenKind = Mutex<Kind?>(nil)

    /// `pollSeconds` is the Active Directory feed's interval (`watch.poll_interval`).
    public init(settings: LDAPSettings, pollSeconds: Int, logger: Logger) {
        _ = Connection.ignoreOutsideConfiguration
        self.settings = settings
        self.pollSeconds = pollSeconds
        self.logger = logger
    }

    /// The kind of server found, once a `follow` has probed it.
    public var kind: Kind? { chosenKind.withLock { $0 } }

    /// Probes, then follows with the chosen feed, all on one thread of its own: no hop back to the
    /// cooperative pool between the probe and the feed (a busy pool must not delay the watch's start).
    public func follow(
        _ deliver: @escaping @Sendable (FeedEvent) -> Void, shouldStop: @escaping @Sendable () -> Bool
    ) async throws {
        try await followOnOwnThread(deliver, shouldStop)
    }

    func followBlocking(_ deliver: @escaping @Sendable (FeedEvent) -> Void, _ shouldStop: @escaping @Sendable () -> Bool) throws {
        let stop: @Sendable () -> Bool = { [settings] in shouldStop() || settings.shouldStop() }
        var backoff = LDAPDirectoryFeed.initialBackoff
        while chosen.withLock({ $0 }) == nil {
            if stop() { return }
            var probing = settings
            probing.shouldStop = stop
            switch try Self.probeNow(probing) {
            case .success(let kind):
                let feed: any DirectoryFeed =
                    kind == .activeDirectory
                    ? ActiveDirectoryFeed(settings: settings, pollSeconds: pollSeconds, logger: logger)
                    : LDAPDirectoryFeed(settings: settings, logger: logger)
                chosenKind.withLock { $0 = kind }
                chosen.withLock { $0 = feed }
                logger.info(
                    "ldap feed selected",
                    metadata: [
                        "ldap.url": .string(settings.url),
                        "ldap.feed": .string(kind == .activeDirectory ? "uSNChanged polling" : "RFC 4533"),
                    ])
            case .failure(let problem):
                logger.warning("ldap feed probe failed", metadata: ["ldap.reason": .string(problem.description)])
                deliver(.disconnected(problem.description))
                let end = ContinuousClock.now + .milliseconds(Int(backoff * 1000))
                while ContinuousClock.now < end {
                    if stop() { return }
                    usleep(100_000)
                }
                backoff = min(backoff * 2, LDAPDirectoryFeed.maxBackoff)
            }
        }
        guard let feed = chosen.withLock({ $0 }) as? BlockingFollow else { return }
        try feed.followBlocking(deliver, shouldStop)
    }

    /// One rootDSE read: the server's kind, a problem worth retrying, or a thrown error for a bad bind.
    private static func probeNow(_ settings: LDAPSettings) throws -> Result<Kind, SourceError> {
        let connection = try Connection(unbound: settings)
        defer { connection.close() }
        do {
            try connection.establish()
        } catch let error as SourceError {
            switch connection.failure {
            case LDAP_INVALID_CREDENTIALS, LDAP_INAPPROPRIATE_AUTH, LDAP_CONFIDENTIALITY_REQUIRED: throw error
            default: return .failure(error)
            }
        }
        do {
            let root = try connection.readEntry("", attributes: ["supportedCapabilities"])
            let capabilities = (root["supportedcapabilities"] ?? []).map { String(decoding: $0, as: UTF8.self) }
            return .success(capabilities.contains(ActiveDirectoryFeed.capabilityOID) ? .activeDirectory : .contentSync)
        } catch let error as SourceError {
            return .failure(error)
        }
    }
}
