import ArgumentParser
import Logging
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync sync`: one reconciliation.
struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reconcile the gateways with the directory once.",
        discussion: """
            Reads every user and every managed consumer, plans, checks the brakes, then applies the plan with \
            each write journaled. --dry-run prints the plan and writes nothing.
            """)

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print the plan; write nothing to any gateway or the journal.")
    var dryRun = false

    @Option(name: .long, help: "text or json (the report of every exit path).")
    var output: OutputFormat = .text

    @Flag(name: .long, help: "Exit 2 when changes were planned or made.")
    var detailedExitcode = false

    @Option(name: .long, help: "Apply the plan only if its hash is exactly this (overrides the brakes).")
    var acceptPlan: String?

    @Option(name: .long, help: "Accept a drop of the directory to exactly this many users, once.")
    var acceptUsers: Int?

    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        // A full disk or a file-size limit must fail the journal write (EFBIG), not kill the process.
        signal(SIGXFSZ, SIG_IGN)
        // libldap writes without MSG_NOSIGNAL: a connection the server reset must fail the read, not
        // kill the run between an intent and its outcome.
        signal(SIGPIPE, SIG_IGN)
        StopSignal.install()
        try await run(context: .live(logOptions))
    }

    /// The whole command over a context; throws `ExitCode` with the run's exit status.
    func run(context: CommandContext) async throws {
        let startedAt = context.now()
        let logger = logOptions.logger()
        let config: SyncConfiguration
        let configBytes: [UInt8]
        do {
            (config, configBytes) = try RunSetup.readConfig(options.path)
        } catch {
            throw finish(failure: "\(error)", context)
        }
        let runID = Self.newRunID()

        var session: RunSession? = nil
        var lastGoodUsers: Int? = nil
        var disabledByUs: [String: [String: Int64]] = [:]
        var started = RunSetup.started(configBytes: configBytes)
        do {
            if dryRun {
                let scan = try JournalScan.scan(path: config.journalPath)
                lastGoodUsers = scan.lastGoodUsers
                disabledByUs = scan.disabledByUs
                if let problem = scan.problem {
                    logger.warning(
                        "the journal does not chain; a real run would refuse",
                        metadata: ["journal.problem": "\(problem)"])
                }
            } else {
                let opened = try RunSetup.open(config, configBytes: configBytes, logger: logger)
                lastGoodUsers = opened.lastGoodUsers
                disabledByUs = opened.disabledByUs
                started = opened.started
                session = opened
            }
        } catch {
            throw finish(failure: "\(error)", context)
        }
        let journal = session?.journal

        let engine = SyncRun(
            source: context.source(config, logger), sourceType: config.source.type,
            gateways: context.gateways(config, logger), planner: LiveAdapters.planner(config),
            journal: journal, runID: runID, started: started, logger: logger,
            now: { Int64(context.now()) }, shouldStop: context.shouldStop)
        var runOptions = RunOptions(
            dryRun: dryRun, acceptPlan: acceptPlan, acceptUsers: acceptUsers, lastGoodUsers: lastGoodUsers,
            detailedExitCode: detailedExitcode)
        runOptions.disabledByUs = disabledByUs
        let report = await engine.run(runOptions)
        Progress.clear()
        emit(report, context)
        if !dryRun, let problem = MetricsFile.record(report, config: config, startedAt: startedAt) {
            logger.warning("metrics not written", metadata: ["metrics.error": "\(problem)"])
        }
        var metadata: Logger.Metadata = [
            "sync.exit_code": .stringConvertible(Int(report.exitStatus.rawValue)),
            "sync.duration_seconds": .stringConvertible(Self.seconds(context.now() - startedAt)),
        ]
        if let journal { metadata["journal.head"] = "\(journal.head)" }
        logger.info("run finished", metadata: metadata)
        withExtendedLifetime(session) {}
        throw ExitCode(report.exitStatus.rawValue)
    }

    private func emit(_ report: RunReport, _ context: CommandContext) {
        switch output {
        case .json: context.line(report.json.canonical)
        case .text: context.output(report.text(style: context.reportStyle(options)))
        }
    }

    /// Reports an error before any run started, in the chosen output; the caller throws exit 1.
    private func finish(failure: String, _ context: CommandContext) -> ExitCode {
        var report = RunReport(run: nil, dryRun: dryRun, sourceType: "unknown")
        report.errors = [failure]
        report.exitStatus = .error
        if output == .json {
            context.line(report.json.canonical)
        }
        context.errors("error: \(failure)\n")
        return ExitCode(1)
    }

    /// Seconds to the millisecond (saturating: a clock step cannot trap the conversion).
    static func seconds(_ value: Double) -> Double {
        guard value.isFinite, abs(value) < 1e12 else { return 0 }
        return (value * 1000).rounded() / 1000
    }

    static func newRunID() -> String {
        let stamp = TimeFormat.rfc3339(Environment.unixNow()).filter { $0 != "-" && $0 != ":" }
        let hex = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        return "r-\(stamp)-\(String(repeating: "0", count: 4 - hex.count))\(hex)"
    }
}

/// SIGTERM and SIGINT ask the run to stop after the write in flight.
enum StopSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    static var requested: Bool { flag != 0 }

    static func install() {
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
        signal(SIGINT) { _ in StopSignal.flag = 1 }
    }
}
