import ArgumentParser
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync restore --run ID`: undoes what one run flagged and disabled.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Undo what one run flagged and disabled (never what a person did).",
        discussion: """
            Consumers whose idp-sync marks changed since that run are skipped. The restore is journaled \
            as a run of its own. If the directory still lacks a user, the next sync flags it again with \
            a fresh clock: add it to policy.protected to keep it working.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("run"), help: "The run to undo (r-…), as `idp-sync journal --runs` lists it.")
    var target: String

    @Flag(name: .long, help: "Print what would be restored; write nothing.")
    var dryRun = false

    @Option(name: .long, help: "text or json.")
    var output: OutputFormat = .text

    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        signal(SIGXFSZ, SIG_IGN)
        // libldap writes without MSG_NOSIGNAL: a connection the server reset must fail the read, not
        // kill the run between an intent and its outcome.
        signal(SIGPIPE, SIG_IGN)
        try await run(context: .live(logOptions))
    }

    /// The whole command over a context; throws `ExitCode` with the restore's exit status.
    func run(context: CommandContext) async throws {
        let logger = logOptions.logger()
        func fail(_ message: String) -> ExitCode {
            context.errors("error: \(message)\n")
            return ExitCode(1)
        }
        let config: SyncConfiguration
        let configBytes: [UInt8]
        do {
            (config, configBytes) = try RunSetup.readConfig(options.path)
        } catch {
            throw fail("\(error)")
        }
        var entries: [JournalEntry] = []
        do {
            try JournalReader(path: config.journalPath).read(query: JournalQuery(run: [target])) { record, _ in
                if let entry = JournalEntry(record: record) { entries.append(entry) }
            }
        } catch {
            throw fail("\(error)")
        }
        guard entries.contains(where: { if case .runStarted = $0.event { return true } else { return false } }) else {
            throw fail(
                "run \(target) is not in the journal \(config.journalPath); list runs with: \(ShellWords.command(["journal", "--runs"] + options.arguments))")
        }
        var session: RunSession? = nil
        if !dryRun {
            do {
                session = try RunSetup.open(config, configBytes: configBytes, logger: logger)
            } catch {
                throw fail("\(error)")
            }
        }
        let restore = RestoreRun(
            gateways: context.gateways(config, logger), journal: session?.journal, runID: Sync.newRunID(),
            started: session?.started ?? RunSetup.started(configBytes: configBytes), logger: logger)
        let report = await restore.run(undoing: target, entries: entries, dryRun: dryRun)
        switch output {
        case .json: context.line(report.json.canonical)
        case .text: context.output(report.text(style: context.reportStyle(options)))
        }
        withExtendedLifetime(session) {}
        throw ExitCode(report.exitStatus.rawValue)
    }
}
