import ArgumentParser
import SyncConfig

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync check-config`: validates the file and lists every problem with its key path.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration file.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            let config = try ConfigLoader(environment: Environment.all).load(path: options.config)
            print("ok: \(options.config): source \(config.source.type), \(config.gateways.count) gateway(s), journal \(config.journalPath)")
        } catch {
            Console.error("\(error)\n")
            throw ExitCode(1)
        }
    }
}
