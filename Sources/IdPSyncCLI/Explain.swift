import ArgumentParser
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync explain`: why does this key fail with "invalid user associated with this key"?
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain one key or consumer: gateway state, directory state, journal history, what to do.",
        discussion: """
            The key is read from standard input (--key -), never from the command line: it is \
            fingerprinted at once, looked up in the journal, and compared with the gateway's keys locally.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "'-' to read the key from standard input.")
    var key: String?

    @Option(name: .long, help: "A consumer's id, username or custom_id.")
    var consumer: String?

    @Option(name: .long, help: "text or json.")
    var output: OutputFormat = .text

    @OptionGroup var logOptions: LogOptions

    func validate() throws {
        guard (key == nil) != (consumer == nil) else { throw ValidationError("give exactly one of --key - and --consumer NAME") }
        if let key, key != "-" {
            throw ValidationError("--key takes '-' and reads the key from standard input, so it never shows up in ps or shell history")
        }
    }

    func run() async throws {
        try await run(context: .live(logOptions), readKey: { KeyPrompt.read() })
    }

    /// The whole command over a context; `readKey` gives the key (standard input when live).
    func run(context: CommandContext, readKey: () -> String?) async throws {
        let logger = logOptions.logger()
        let config = try options.loadOrExit()
        var fingerprint: String? = nil
        if key != nil {
            var line = readKey() ?? ""
            while line.last == "\r" || line.last == " " { line.removeLast() }
            guard !line.isEmpty else { throw ValidationError("no key on standard input") }
            fingerprint = KeyFingerprint.of(line)
            line = ""
        }

        let planner = LiveAdapters.planner(config)
        let journalPath = config.journalPath
        let gatherer = EvidenceGatherer(
            gateways: context.gateways(config, logger), source: context.source(config, logger),
            rules: Dictionary(config.gateways.map { ($0.name, $0.match) }, uniquingKeysWith: { first, _ in first }),
            policy: config.policy, isProtected: { planner.isProtected($0) },
            history: { consumerID, fingerprint in
                var entries: [JournalEntry] = []
                let query = consumerID.map { JournalQuery(consumer: [$0]) } ?? JournalQuery(keyFingerprint: fingerprint)
                try JournalReader(path: journalPath).read(query: query) { record, _ in
                    if let entry = JournalEntry(record: record) { entries.append(entry) }
                }
                return entries
            }, now: Int64(context.now()))
        let gathered = await gatherer.gather(fingerprint: fingerprint, consumer: consumer)
        let problems = gathered.problems
        var evidence = gathered.evidence
        evidence.configArguments = options.arguments
        let explanation = Explainer.explain(evidence)
        switch output {
        case .text:
            // Tags, reasons and errors come from the gateway, the directory and the journal: escaped.
            let lines = explanation.text.split(separator: "\n", omittingEmptySubsequences: false)
            context.output(lines.map { String($0).escapedForTerminal }.joined(separator: "\n"))
            for problem in problems { context.line("note: \(problem)".escapedForTerminal) }
        case .json:
            var json = explanation.json.objectValue ?? [:]
            json["problems"] = JSONValue(problems)
            context.line(JSONValue.object(json).canonical)
        }
        // A lookup that finds nothing exits 1, like any lookup: no consumer by that name on any gateway,
        // or a key whose consumer could not be read. (An unknown key is an answer: "another environment".)
        if !gathered.found && (consumer != nil || !problems.isEmpty) { throw ExitCode(1) }
    }
}

/// Reads the key from standard input; on a terminal it asks on stderr and turns echo off while the
/// key is typed (like ssh's password prompt), so the key never shows on screen or in a scrollback.
enum KeyPrompt {
    nonisolated(unsafe) static var saved = termios()

    static func read() -> String? {
        guard isatty(0) == 1 else { return readLine(strippingNewline: true) }
        var original = termios()
        guard tcgetattr(0, &original) == 0 else { return readLine(strippingNewline: true) }
        saved = original
        // Ctrl-C while echo is off must not leave the terminal silent.
        let restoreAndExit: @convention(c) (Int32) -> Void = { signal in
            tcsetattr(0, TCSAFLUSH, &KeyPrompt.saved)
            _exit(128 + signal)
        }
        signal(SIGINT, restoreAndExit)
        signal(SIGTERM, restoreAndExit)
        signal(SIGHUP, restoreAndExit)
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO | ECHONL)
        silent.c_lflag |= tcflag_t(ICANON)
        Console.error("API key (input hidden): ")
        tcsetattr(0, TCSANOW, &silent)
        let line = readLine(strippingNewline: true)
        tcsetattr(0, TCSAFLUSH, &original)
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        signal(SIGHUP, SIG_DFL)
        Console.error("\n")
        return line
    }
}
