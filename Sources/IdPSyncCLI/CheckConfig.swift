import ArgumentParser
import SyncConfig

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync check-config`: validates the file and lists every problem with its key path;
/// with `--connect`, binds to the source and reaches each gateway, one line per check.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration file (and, with --connect, reach every server).")

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Bind to the source and reach each gateway (GET /: version and database mode).")
    var connect = false

    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        try await run(context: .live)
    }

    /// The whole command over a context.
    func run(context: CommandContext) async throws {
        let config = try options.loadOrExit()
        context.line(
            "ok    config   \(options.path): source \(config.source.type), \(config.gateways.count) gateway(s), journal \(config.journalPath)"
                .escapedForTerminal)
        guard connect else { return }
        let logger = logOptions.logger()
        var failed = false
        do {
            let answer = try await context.source(config, logger).checkConnection()
            context.line("ok    source   \(answer)".escapedForTerminal)
        } catch {
            failed = true
            context.line("FAIL  source   \(error)".escapedForTerminal)
        }
        for gateway in context.gateways(config, logger) {
            do {
                let answer = try await gateway.checkConnection()
                context.line("ok    gateway  \(gateway.name): \(answer)".escapedForTerminal)
            } catch {
                failed = true
                context.line("FAIL  gateway  \(error)".escapedForTerminal)
            }
        }
        if failed { throw ExitCode(1) }
    }
}
