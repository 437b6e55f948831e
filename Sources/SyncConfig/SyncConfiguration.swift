import KongGateway
import LDAPDirectory
import SCIMDirectory
import SyncCore

/// The validated configuration file (docs/configuration.md). Secrets are already read from their files
/// or environment variables; their values never appear in diagnostics.
public struct SyncConfiguration: Sendable {
    /// The directory: each case holds its adapter's own settings type, so a key is declared in the
    /// reader (its name, type, range, default) and in that type, nowhere else.
    public enum Source: Sendable {
        case ldap(LDAPSettings)
        case scim(SCIMSettings)

        public var type: String {
            switch self {
            case .ldap: return "ldap"
            case .scim: return "scim"
            }
        }
    }

    /// One gateway entry; its case is the `type` key (adding a gateway kind adds a case).
    public enum Gateway: Sendable {
        case kong(KongSettings, match: MatchRule)

        public var name: String {
            switch self {
            case .kong(let kong, _): return kong.name
            }
        }

        /// How the planner links this gateway's consumers to users.
        public var match: MatchRule {
            switch self {
            case .kong(_, let match): return match
            }
        }
    }

    public var version: Int
    public var source: Source
    public var gateways: [Gateway]
    public var policy: Policy
    public var journalPath: String
    public var metricsTextfilePath: String?
    /// `watch:` (only `idp-sync watch` reads it).
    public var watch = WatchConfiguration(maxDisablePerHour: 25)
}

/// The `watch:` section.
public struct WatchConfiguration: Sendable, Equatable {
    /// How often grace periods that came due are applied (default 1m).
    public var tickSeconds: Int64 = 60
    /// How often a full reconciliation runs (default 1h).
    public var resyncSeconds: Int64 = 3600
    /// Active Directory: how often `uSNChanged` is polled (default 5s).
    public var pollSeconds: Int64 = 5
    /// Disables in any sliding hour (default `policy.max_disable`).
    public var maxDisablePerHour: Int

    public init(maxDisablePerHour: Int) { self.maxDisablePerHour = maxDisablePerHour }
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
