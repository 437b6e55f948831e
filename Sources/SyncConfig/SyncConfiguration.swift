import SyncCore

/// The validated configuration file (docs/configuration.md). Secrets are already read from their files
/// or environment variables; their values never appear in diagnostics.
public struct SyncConfiguration: Sendable {
    public struct LDAPSource: Sendable {
        public var url: String
        public var caFile: String?
        public var startTLS: Bool
        public var bindDN: String?
        public var bindPassword: String?
        public var baseDN: String
        public var filter: String
        public var pageSize: Int
        public var idAttribute: String
        public var usernameAttribute: String
        public var disabledFilter: String?
        public var timeoutSeconds: Int
        /// Bounds the whole listing (`read_deadline`).
        public var readDeadlineSeconds: Int
        public var allowInsecure: Bool
    }

    public struct SCIMSource: Sendable {
        public var url: String
        public var token: String?
        public var username: String?
        public var password: String?
        public var filter: String?
        public var pageSize: Int
        public var idAttribute: String
        public var usernameAttribute: String
        public var timeoutSeconds: Int
        public var readDeadlineSeconds: Int
        public var caFile: String?
        public var retries: Int
        public var allowInsecure: Bool
    }

    public enum Source: Sendable {
        case ldap(LDAPSource)
        case scim(SCIMSource)

        public var type: String {
            switch self {
            case .ldap: return "ldap"
            case .scim: return "scim"
            }
        }
    }

    /// `gateways[i]` with `type: kong`.
    public struct KongGateway: Sendable {
        public var name: String
        public var adminURL: String
        public var token: String?
        public var caFile: String?
        public var clientCert: String?
        public var clientKey: String?
        public var selectTags: [String]
        public var match: MatchRule
        public var timeoutSeconds: Int
        public var readDeadlineSeconds: Int
        public var concurrency: Int
        public var retries: Int
        public var allowInsecure: Bool
    }

    /// One gateway entry; its case is the `type` key (adding a gateway kind adds a case).
    public enum Gateway: Sendable {
        case kong(KongGateway)

        public var name: String {
            switch self {
            case .kong(let kong): return kong.name
            }
        }

        public var match: MatchRule {
            switch self {
            case .kong(let kong): return kong.match
            }
        }
    }

    public var version: Int
    public var source: Source
    public var gateways: [Gateway]
    public var policy: Policy
    public var journalPath: String
    public var metricsTextfilePath: String?
}

/// One problem in the configuration, with the path of the key (`gateways[0].admin_url`).
public struct ConfigDiagnostic: Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found in a configuration file, reported at once.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var diagnostics: [ConfigDiagnostic]
    public var description: String {
        let count = diagnostics.count
        return "\(file): \(count) problem\(count == 1 ? "" : "s")\n"
            + diagnostics.map { "  - \($0)" }.joined(separator: "\n")
    }
}
