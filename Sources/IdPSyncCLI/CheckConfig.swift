import ArgumentParser
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync check-config`: validates the file and lists every problem with its key path; with
/// `--connect`, proves with bounded requests what a run needs (docs/operations.md), one line per check.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration file (and, with --connect, what a run needs).",
        discussion: """
            --connect binds to the source and reads one entry (base_dn exists, the filter is valid, the id and \
            username attributes are readable), checks the journal directory and the lock, and reaches each \
            gateway with its token and select_tags. Exit 1 when any check fails; warnings (a filter or tag that \
            selects nothing) do not fail.
            """)

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Prove what a run needs: source, journal and lock, each gateway.")
    var connect = false

    @Option(name: .long, help: "text or json.")
    var output: OutputFormat = .text

    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        try await run(context: .live(logOptions))
    }

    /// The whole command over a context.
    func run(context: CommandContext) async throws {
        let config: SyncConfiguration
        do {
            config = try RunSetup.readConfig(options.path).0
        } catch {
            if output == .json {
                emit([ReadinessCheck("config", .failed, "\(options.path): \(error)")], context)
            } else {
                context.errors("error: \(error)\n")
            }
            throw ExitCode(1)
        }
        var checks = [
            ReadinessCheck(
                "config", .ok,
                "\(options.path): source \(config.source.type), \(config.gateways.count) gateway(s), journal \(config.journalPath)")
        ]
        if connect {
            let logger = logOptions.logger()
            checks += await context.source(config, logger).checkReadiness()
            checks += Self.journalChecks(config)
            for gateway in context.gateways(config, logger) { checks += await gateway.checkReadiness() }
        }
        emit(checks, context)
        if checks.contains(where: { $0.status == .failed }) { throw ExitCode(1) }
    }

    private func emit(_ checks: [ReadinessCheck], _ context: CommandContext) {
        switch output {
        case .json:
            let items: [JSONValue] = checks.map {
                ["check": .string($0.subject), "status": .string($0.status.rawValue), "detail": .string($0.detail)]
            }
            context.line(JSONValue.object(["ok": .bool(!checks.contains { $0.status == .failed }), "checks": .array(items)]).canonical)
        case .text:
            let width = max(8, checks.map(\.subject.count).max() ?? 0)
            for check in checks {
                let (word, tint) =
                    switch check.status {
                    case .ok: ("ok  ", "32")
                    case .warning: ("warn", "33")
                    case .failed: ("FAIL", "31")
                    }
                let status = context.color ? "\u{1B}[\(tint)m\(word)\u{1B}[0m" : word
                let subject = check.subject.escapedForTerminal
                context.line("\(status)  \(subject.rightPadded(width))  \(check.detail.escapedForTerminal)")
            }
        }
    }

    /// The journal directory is safe and writable, the journal chains (a run would refuse one that
    /// does not), and the lock is free or held by a live run.
    static func journalChecks(_ config: SyncConfiguration) -> [ReadinessCheck] {
        let path = config.journalPath
        var checks: [ReadinessCheck] = []
        do {
            switch try JournalLock.probe(journalPath: path) {
            case .free:
                checks.append(ReadinessCheck("journal", .ok, "\(SafeDirectory.split(path).directory) is writable; the lock is free"))
            case .held(let pid):
                // The pid comes from a file: only a positive one is asked about (kill(0, …) is the whole group).
                let alive = Int32(pid).map { $0 > 0 && (kill($0, 0) == 0 || errno == EPERM) } ?? false
                checks.append(
                    ReadinessCheck(
                        "journal", .ok,
                        alive
                            ? "the lock is held by pid \(pid), a run or watch in progress (a run started now would exit 1: lock held)"
                            : "the lock is held by pid \(pid)"))
            }
        } catch {
            return [ReadinessCheck("journal", .failed, "\(error)")]
        }
        do {
            let scan = try JournalScan.scan(path: path)
            if let problem = scan.problem {
                checks.append(
                    ReadinessCheck(
                        "journal", .failed,
                        "\(path) does not verify, so a run would refuse: \(problem); see `\(ShellWords.command(["journal", "verify", "--journal", path]))`"))
            } else if scan.records == 0 {
                checks.append(ReadinessCheck("journal", .ok, "\(path) has no records yet (the first run starts it)"))
            } else {
                checks.append(ReadinessCheck("journal", .ok, "\(path) chains (\(scan.records) records)"))
            }
        } catch {
            checks.append(ReadinessCheck("journal", .failed, "\(error)"))
        }
        return checks
    }
}
