import ArgumentParser

/// The `idp-sync` command tree.
public struct IdPSync: AsyncParsableCommand {
    /// The release version (see BuildInfo.swift); journaled in `run-started`.
    public static let version = BuildInfo.version
    /// The commit the binary was built from, or `unknown` for a development build.
    public static let commit = BuildInfo.commit

    public static let configuration = CommandConfiguration(
        commandName: "idp-sync",
        abstract: "Keeps Kong consumers and their API keys in line with the identity provider.",
        discussion: """
            Reads every user of a directory (LDAP or SCIM 2.0) and the managed consumers of Kong gateways, flags \
            consumers whose user is gone or disabled, blocks them after a grace period and restores users who come \
            back. Every change is written to a hash-chained audit journal.

            The configuration file is described in idp-sync.yaml(5). Exit codes: 0 success; 1 error; 2 changes \
            (only with --detailed-exitcode); 3 refused by a brake or a changed plan; 4 directory not trustworthy; \
            64 invalid command line. More in /usr/share/doc/idp-sync/docs/ (docs/ in the source).
            """,
        version: "\(version) (commit \(commit))",
        subcommands: [Sync.self, Watch.self, Journal.self, Explain.self, Restore.self, CheckConfig.self]
    )

    public init() {}
}

/// Options every command that reads the config shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file (YAML). Default: $IDP_SYNC_CONFIG, else /etc/idp-sync/config.yaml.")
    var config: String?

    /// The file this command reads: `--config`, else `$IDP_SYNC_CONFIG`, else the packaged default.
    var path: String { ConfigOptions.resolve(config) }

    static let defaultPath = "/etc/idp-sync/config.yaml"

    /// `--config PATH` as a suggested command must repeat it: empty when the default applies.
    var arguments: [String] { path == Self.defaultPath ? [] : ["--config", path] }

    static func resolve(_ given: String?, environment: [String: String] = Environment.all) -> String {
        if let given { return given }
        if let fromEnvironment = environment["IDP_SYNC_CONFIG"], !fromEnvironment.isEmpty { return fromEnvironment }
        return defaultPath
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
