import ArgumentParser
import SyncConfig
import SyncCore
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync journal`: read the audit journal; `journal verify` checks its chain.
struct Journal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the audit journal (one line per record).",
        subcommands: [Show.self, Verify.self, Acknowledge.self, Rotate.self],
        defaultSubcommand: Show.self)

    /// Where the journal is: `--journal PATH`, or the config's `journal.path`.
    struct Location: ParsableArguments {
        @Option(name: .long, help: "The configuration file (its journal.path is read). Default: $IDP_SYNC_CONFIG, else /etc/idp-sync/config.yaml.")
        var config: String?

        @Option(name: .long, help: "The journal file, instead of --config.")
        var journal: String?

        func path() throws -> String {
            if let journal { return journal }
            let config = ConfigOptions.resolve(config)
            do {
                return try ConfigLoader(environment: Environment.all, readSecrets: false).load(path: config).journalPath
            } catch {
                Console.error("error: \(error)\n")
                throw ExitCode(1)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print the journal's records, filtered (the default subcommand).",
            discussion: """
                Filters of different kinds combine (a record must match each); a filter given twice means \
                either value. --since/--until take RFC 3339 times, local dates and times (2026-11-30, \
                2026-11-30 14:00, 14:00), today, yesterday, now, and ages (90s, 2h, 7d, -2h, 2h ago). Text shows \
                local times (TZ), or UTC with --utc; json and jsonl print the records as stored. --follow starts \
                with the last 10 records (unless --since or --lines), then prints records as runs append them. \
                On a terminal, text goes through $PAGER (else less); --no-pager prints directly.
                """)

        @OptionGroup var location: Location

        @Option(name: .customLong("run"), help: "Only this run (r-…); repeat for either.")
        var runID: [String] = []

        // Unconditional: `--since -2h` is a value, not an option.
        @Option(
            name: .long, parsing: .unconditional,
            help: "Records at or after this time (2026-11-30 14:00, yesterday, 2h ago).")
        var since: String?

        @Option(name: .long, parsing: .unconditional, help: "Records at or before this time.")
        var until: String?

        @Option(name: .long, help: "A consumer's id, username or custom_id; repeat for either.")
        var consumer: [String] = []

        @Option(name: .long, help: "A user's id or username; repeat for either.")
        var user: [String] = []

        @Option(name: .long, help: "flag, disable, delete-key, unflag or restore; repeat for either.")
        var action: [String] = []

        @Option(name: .long, help: "A gateway's name; repeat for either.")
        var gateway: [String] = []

        @Option(
            name: [.customShort("n"), .customLong("lines")], help: "Only the last N records (with --runs: runs), or all.")
        var lines: LineCount?

        @Flag(name: .shortAndLong, help: "Newest first.")
        var reverse = false

        @Flag(name: .long, help: "Show times in UTC instead of local time (text output).")
        var utc = false

        @Flag(name: .customLong("no-pager"), help: "Do not page text output on a terminal.")
        var noPager = false

        @Option(name: .long, help: "text, json or jsonl.")
        var output: JournalOutput = .text

        @Flag(name: .long, help: "List runs with their counts and outcome instead of records.")
        var runs = false

        @Flag(name: .shortAndLong, help: "Keep printing records as they are appended (Ctrl-C stops).")
        var follow = false

        enum JournalOutput: String, ExpressibleByArgument, CaseIterable {
            case text, json, jsonl
        }

        /// `-n`: a count of records, or `all`.
        struct LineCount: ExpressibleByArgument {
            var last: Int?

            init?(argument: String) {
                if argument == "all" {
                    last = nil
                } else if let n = Int(argument), n >= 0 {
                    last = n
                } else {
                    return nil
                }
            }
        }

        /// Writing to standard output failed (the pager was quit): stop quietly.
        struct OutputClosed: Error {}

        func validate() throws {
            for action in action where ActionKind(rawValue: action) == nil {
                let kinds = ActionKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("--action must be one of \(kinds), not '\(action.escapedForTerminal)'")
            }
            if follow && (runs || output == .json) {
                throw ValidationError("--follow prints records as text or jsonl; it cannot be combined with --runs or --output json")
            }
            if follow && reverse { throw ValidationError("--follow and --reverse cannot be combined") }
            _ = try query(now: Environment.unixNow())
        }

        /// The filters, with --since/--until read as local time where they name no offset.
        func query(now: Int64) throws -> JournalQuery {
            func bound(_ text: String?, _ name: String) throws -> String? {
                guard let text else { return nil }
                guard let time = TimeFormat.parseExpression(text, now: now, utcOffset: LocalTime.utcOffset(at:)) else {
                    throw ValidationError(
                        "\(name) '\(text.escapedForTerminal)' is not a time; use \(TimeFormat.expressionForms)")
                }
                return TimeFormat.rfc3339(time)
            }
            return JournalQuery(
                run: runID, since: try bound(since, "--since"), until: try bound(until, "--until"), consumer: consumer,
                user: user, action: action, gateway: gateway)
        }

        /// How a record's time is shown in text.
        var showTime: (String) -> String {
            if utc { return { $0 } }
            return LocalTime.show
        }

        func run() throws {
            let path = try location.path()
            let query = try query(now: Environment.unixNow())
            let reader = JournalReader(path: path)
            if follow { try followRecords(reader, query) }
            let pager = output == .text && !noPager ? Pager.start(environment: Environment.all) : nil
            var problems = ReadProblems()
            let result = Result {
                if runs {
                    try printRuns(reader, query, &problems)
                } else {
                    try printRecords(reader, query, &problems)
                }
            }
            pager?.finish()
            switch result {
            case .success, .failure(is OutputClosed): break
            case .failure(let error):
                Console.error("error: \(error)\n")
                throw ExitCode(1)
            }
            try finish(problems)
        }

        func printRecords(_ reader: JournalReader, _ query: JournalQuery, _ problems: inout ReadProblems) throws {
            var printer = RecordPrinter(output: output, time: showTime)
            try reader.read(query: query, last: lines?.last, reverse: reverse, problems: &problems) { record, line in
                printer.print(record, line)
                if Pager.outputClosed { throw OutputClosed() }
            }
            printer.finish()
        }

        /// journalctl -f: the last 10 matching records (or what --since or --lines say), then each
        /// one appended, until a signal stops it.
        func followRecords(_ reader: JournalReader, _ query: JournalQuery) throws -> Never {
            let last = lines.map(\.last) ?? (since == nil ? 10 : nil)
            var printer = RecordPrinter(output: output, time: showTime)
            var problems = ReadProblems()
            var offset: Int64 = 0
            do {
                offset = try reader.read(query: query, last: last, reverse: false, problems: &problems) {
                    printer.print($0, $1)
                }
            } catch {
                Console.error("error: \(error)\n")
                throw ExitCode(1)
            }
            fflush(nil)
            if !problems.isEmpty { Console.error("warning: \(problems.warning)\n") }
            while true {
                usleep(250_000)
                var more = ReadProblems()
                offset = (try? reader.read(from: offset, query: query, problems: &more) { record, line in printer.print(record, line) })
                    ?? offset
                if !more.isEmpty { Console.error("warning: \(more.warning)\n") }
                fflush(nil)
            }
        }

        /// Garbled or edited records were shown or skipped: say so and exit 1, like `verify` would.
        func finish(_ problems: ReadProblems) throws {
            guard !problems.isEmpty else { return }
            fflush(nil)
            Console.error("warning: \(problems.warning)\n")
            throw ExitCode(1)
        }

        func printRuns(_ reader: JournalReader, _ query: JournalQuery, _ problems: inout ReadProblems) throws {
            var runs: [String: RunSummary] = [:]
            var order: [String] = []
            var all = query
            all.consumer = []
            all.user = []
            all.action = []
            all.gateway = []
            try reader.read(query: all, problems: &problems) { record, _ in
                guard let id = record["run"]?.stringValue else { return }
                if runs[id] == nil {
                    runs[id] = RunSummary(id: id)
                    order.append(id)
                }
                runs[id]!.add(record)
            }
            if let last = lines?.last { order = Array(order.suffix(last)) }
            if reverse { order.reverse() }
            if output == .text {
                print(order.isEmpty ? RecordPrinter.noEntries : RunSummary.header)
            }
            var items: [JSONValue] = []
            for id in order {
                let r = runs[id]!
                switch output {
                case .text: print(r.line(time: showTime))
                case .json: items.append(r.json)
                case .jsonl: print(r.json.canonical)
                }
                if Pager.outputClosed { throw OutputClosed() }
            }
            if output == .json { print(JSONValue.array(items).pretty) }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain and the head file: exit 0 valid, 1 tampered.")

        @OptionGroup var location: Location

        @Option(name: .long, help: "SEQ:HASH kept elsewhere (each run logs its head).")
        var anchor: String?

        func run() throws {
            let path = try location.path()
            var parsedAnchor: JournalVerifier.Anchor? = nil
            if let anchor {
                guard let a = JournalVerifier.Anchor(anchor) else {
                    throw ValidationError("--anchor must be SEQ:HASH with a 64-digit hex hash")
                }
                parsedAnchor = a
            }
            let result: VerifyResult
            do {
                result = try JournalVerifier.verify(path: path, anchor: parsedAnchor)
            } catch {
                Console.error("error: \(error)\n")
                throw ExitCode(1)
            }
            for warning in result.warnings { print("warning: \(warning)".escapedForTerminal) }
            if let problem = result.problem {
                print("TAMPERED: \(path): \(problem)".escapedForTerminal)
                throw ExitCode(1)
            }
            let files = result.files.count > 1 ? " in \(result.files.count) files" : ""
            print("ok: \(path): \(result.records) records\(files), head \(result.lastSeq):\(result.lastHash)".escapedForTerminal)
        }
    }

    struct Acknowledge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "After a run refused a journal that does not verify: keep it and start a new one.",
            discussion: """
                The old file is kept as <journal>.<UTC time>; the new journal's first record (journal-started) \
                names it, its last verified seq:hash, what was wrong and your reason, so the decision is itself \
                journaled. Look at the old file first (idp-sync journal verify).
                """)

        @OptionGroup var location: Location

        @Option(name: .long, help: "Why this is acknowledged (who looked, what they found); journaled.")
        var reason: String

        func validate() throws {
            if reason.allSatisfy(\.isWhitespace) { throw ValidationError("--reason must say who looked and what they found") }
        }

        func run() throws {
            try Journal.startNewFile(path: try location.path(), acknowledging: reason)
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep the journal under a new name and start a new file that continues its chain.",
            discussion: """
                Only a journal that verifies is rotated. Use this, never logrotate: the new file's first record \
                (journal-started) names the old file and its last seq:hash, so 'journal verify' checks both.
                """)

        @OptionGroup var location: Location

        func run() throws {
            try Journal.startNewFile(path: try location.path(), acknowledging: nil)
        }
    }

    static func startNewFile(path: String, acknowledging reason: String?) throws {
        signal(SIGXFSZ, SIG_IGN)
        let identity = JournalArchive.Identity(
            version: IdPSync.version, host: Environment.hostname, uid: Int64(getuid()))
        do {
            let outcome =
                if let reason {
                    try JournalArchive.acknowledge(path: path, reason: reason, identity: identity, now: Environment.unixNow())
                } else {
                    try JournalArchive.rotate(path: path, identity: identity, now: Environment.unixNow())
                }
            print("ok: kept the old journal as \(outcome.archived); \(path) starts at \(outcome.head)".escapedForTerminal)
        } catch {
            Console.error("error: \(error)\n")
            throw ExitCode(1)
        }
    }
}

