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
        case .ldap(let ldap):
            return LDAPDirectorySource(
                settings: LDAPSettings(
                    url: ldap.url, bindDN: ldap.bindDN, bindPassword: ldap.bindPassword, baseDN: ldap.baseDN,
                    filter: ldap.filter, pageSize: ldap.pageSize, idAttribute: ldap.idAttribute,
                    usernameAttribute: ldap.usernameAttribute, disabledFilter: ldap.disabledFilter,
                    timeoutSeconds: ldap.timeoutSeconds, caFile: ldap.caFile, startTLS: ldap.startTLS,
                    readDeadlineSeconds: ldap.readDeadlineSeconds, shouldStop: { StopSignal.requested }),
                logger: logger, progress: Progress.sink)
        case .scim(let scim):
            let auth: SCIMSettings.Auth
            if let token = scim.token {
                auth = .bearer(token)
            } else if let user = scim.username {
                auth = .basic(username: user, password: scim.password ?? "")
            } else {
                auth = .none
            }
            return SCIMDirectorySource(
                settings: SCIMSettings(
                    url: scim.url, auth: auth, filter: scim.filter, pageSize: scim.pageSize, idAttribute: scim.idAttribute,
                    usernameAttribute: scim.usernameAttribute, timeoutSeconds: scim.timeoutSeconds, caFile: scim.caFile,
                    retries: scim.retries, readDeadlineSeconds: scim.readDeadlineSeconds,
                    shouldStop: { StopSignal.requested }),
                logger: logger, progress: Progress.sink)
        }
    }

    /// One adapter per gateway entry; a new gateway kind is one more case here.
    static func gateways(_ config: SyncConfiguration, logger: Logger) -> [any Gateway] {
        config.gateways.map { entry -> any Gateway in
            switch entry {
            case .kong(let gateway):
                return KongAdminClient(
                    settings: KongSettings(
                        name: gateway.name, adminURL: gateway.adminURL, token: gateway.token,
                        selectTags: gateway.selectTags, timeoutSeconds: gateway.timeoutSeconds, caFile: gateway.caFile,
                        clientCert: gateway.clientCert, clientKey: gateway.clientKey, retries: gateway.retries,
                        concurrency: gateway.concurrency, readDeadlineSeconds: gateway.readDeadlineSeconds,
                        shouldStop: { StopSignal.requested }),
                    logger: logger, progress: Progress.sink)
            }
        }
    }

    static func planner(_ config: SyncConfiguration) -> Planner {
        Planner(
            policy: config.policy,
            gateways: config.gateways.map { GatewayPolicy(name: $0.name, match: $0.match) },
            parallel: { n, body in DispatchQueue.concurrentPerform(iterations: n, execute: body) })
    }
}
