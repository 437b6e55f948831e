import ArgumentParser

/// The `idp-sync` command tree.
public struct IdPSync: AsyncParsableCommand {
    public static let version = "1.0.0"

    public static let configuration = CommandConfiguration(
        commandName: "idp-sync",
        abstract: "Keeps Kong consumers and their API keys in line with the identity provider.",
        version: version,
        subcommands: [Sync.self, Journal.self, Explain.self, Restore.self, CheckConfig.self]
    )

    public init() {}
}

/// Options every command that reads the config shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file (YAML).")
    var config: String
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
