import ArgumentParser
import KongGateway
import LDAPDirectory
import SCIMDirectory
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
        let config = try options.loadOrExit()
        print("ok    config   \(options.config): source \(config.source.type), \(config.gateways.count) gateway(s), journal \(config.journalPath)")
        guard connect else { return }
        let logger = logOptions.logger()
        var failed = false
        let source = LiveAdapters.source(config, logger: logger)
        if let ldap = source as? LDAPDirectorySource {
            do {
                try await ldap.checkConnection()
                print("ok    source   \(ldap.settings.url): bound as \(ldap.settings.bindDN ?? "anonymous")")
            } catch {
                failed = true
                print("FAIL  source   \(error)".escapedForTerminal)
            }
        } else if let scim = source as? SCIMDirectorySource {
            do {
                let total = try await scim.checkConnection()
                print("ok    source   \(scim.settings.url): \(total) users")
            } catch {
                failed = true
                print("FAIL  source   \(error)".escapedForTerminal)
            }
        }
        for gateway in LiveAdapters.gateways(config, logger: logger) {
            do {
                let info = try await gateway.nodeInfo()
                if info.database == "off" {
                    failed = true
                    print("FAIL  gateway  \(gateway.name): Kong \(info.version) is DB-less (database: off) and cannot be written")
                } else {
                    print("ok    gateway  \(gateway.name) \(gateway.settings.adminURL): Kong \(info.version), database \(info.database)")
                }
            } catch {
                failed = true
                print("FAIL  gateway  \(error)".escapedForTerminal)
            }
        }
        if failed { throw ExitCode(1) }
    }
}
