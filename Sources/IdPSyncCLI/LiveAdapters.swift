import Dispatch
import KongGateway
import LDAPDirectory
import SCIMDirectory
import Logging
import SyncConfig
import SyncCore
import SyncEngine

/// The composition root: the only place where live adapters are built from the config.
enum LiveAdapters {
    static func source(_ config: SyncConfiguration, logger: Logger) -> any DirectorySource {
        switch config.source {
        case .ldap(var settings):
            settings.shouldStop = { StopSignal.requested }
            return LDAPDirectorySource(settings: settings, logger: logger, progress: Progress.sink)
        case .scim(var settings):
            settings.shouldStop = { StopSignal.requested }
            return SCIMDirectorySource(settings: settings, logger: logger, progress: Progress.sink)
        }
    }

    /// One adapter per gateway entry; a new gateway kind is one more case here.
    static func gateways(_ config: SyncConfiguration, logger: Logger) -> [any Gateway] {
        config.gateways.map { entry -> any Gateway in
            switch entry {
            case .kong(var settings, _):
                settings.shouldStop = { StopSignal.requested }
                return KongAdminClient(settings: settings, logger: logger, progress: Progress.sink)
            }
        }
    }

    /// The source's change feed for `watch`; nil when the source has none (SCIM). An LDAP source's
    /// feed picks RFC 4533 or Active Directory's uSNChanged polling from the server's rootDSE.
    static func feed(_ config: SyncConfiguration, logger: Logger) -> (any DirectoryFeed)? {
        switch config.source {
        case .ldap(var settings):
            settings.shouldStop = { StopSignal.requested }
            return LDAPFeedSelector(settings: settings, pollSeconds: Int(config.watch.pollSeconds), logger: logger)
        case .scim:
            return nil
        }
    }

    static func planner(_ config: SyncConfiguration) -> Planner {
        Planner(
            policy: config.policy,
            gateways: config.gateways.map { GatewayPolicy(name: $0.name, match: $0.match) },
            parallel: { n, body in DispatchQueue.concurrentPerform(iterations: n, execute: body) })
    }
}
