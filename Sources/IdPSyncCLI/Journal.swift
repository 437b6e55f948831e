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
        subcommands: [Show.self, Verify.self],
        defaultSubcommand: Show.self)

    /// Where the journal is: `--journal PATH`, or the config's `journal.path`.
    struct Location: ParsableArguments {
        @Option(name: .long, help: "The configuration file (its journal.path is read).")
        var config: String?

        @Option(name: .long, help: "The journal file, instead of --config.")
        var journal: String?

        func path() throws -> String {
            if let journal { return journal }
            guard let config else { throw ValidationError("give --config FILE or --journal PATH") }
            do {
                return try ConfigLoader(environment: Environment.all).load(path: config).journalPath
            } catch {
                Console.error("error: \(error)\n")
                throw ExitCode(1)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the journal's records.")

        @OptionGroup var location: Location

        @Option(name: .long, help: "text or jsonl.")
        var output: JournalOutput = .text

        enum JournalOutput: String, ExpressibleByArgument {
            case text, jsonl
        }

        func run() throws {
            let path = try location.path()
            guard let file = fopen(path, "r") else {
                Console.error("error: cannot open journal \(path): \(String(cString: strerror(errno)))\n")
                throw ExitCode(1)
            }
            defer { fclose(file) }
            var buffer: UnsafeMutablePointer<CChar>? = nil
            var capacity = 0
            defer { free(buffer) }
            while getline(&buffer, &capacity, file) > 0, let buffer {
                let line = String(cString: buffer)
                if output == .jsonl {
                    print(line, terminator: line.hasSuffix("\n") ? "" : "\n")
                    continue
                }
                guard let record = try? JSONParser.parse(line.hasSuffix("\n") ? String(line.dropLast()) : line) else {
                    print("(unreadable line)")
                    continue
                }
                print(Self.text(record))
            }
        }

        static func text(_ r: JSONValue) -> String {
            let seq = r["seq"]?.intValue.map { String($0) } ?? "?"
            let time = r["time"]?.stringValue ?? "?"
            let event = r["event"]?.stringValue ?? "?"
            let run = r["run"]?.stringValue ?? ""
            var line = "\(seq.leftPad(5)) \(time) \(run) \(event)"
            switch event {
            case "intent", "outcome":
                let consumer = r["consumer"]?["username"]?.stringValue ?? r["consumer"]?["custom_id"]?.stringValue
                    ?? r["consumer"]?["id"]?.stringValue ?? "?"
                line += " \(r["gateway"]?.stringValue ?? "?") \(r["action"]?.stringValue ?? "?") \(consumer)"
                line += " [\(r["situation"]?.stringValue ?? "?")]"
                if event == "intent" { line += " \(r["reason"]?.stringValue ?? "")" }
                if let outcome = r["outcome"]?.stringValue { line += " → \(outcome)" }
                if let error = r["error"]?.stringValue { line += ": \(error)" }
            case "run-finished":
                line += " outcome=\(r["outcome"]?.stringValue ?? "?") exit=\(r["exit_code"]?.intValue ?? -1)"
                line += " users=\(r["users"]?.intValue ?? -1)"
            case "run-refused":
                line += " cause=\(r["cause"]?.stringValue ?? "?"): \(r["detail"]?.stringValue ?? "")"
            case "run-started":
                line += r["dry_run"]?.boolValue == true ? " (dry run)" : ""
                if let repaired = r["repaired"]?.stringValue { line += " repaired: \(repaired)" }
            default: break
            }
            return line
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
            for warning in result.warnings { print("warning: \(warning)") }
            if let problem = result.problem {
                print("TAMPERED: \(path): \(problem)")
                throw ExitCode(1)
            }
            print("ok: \(path): \(result.records) records, head \(result.lastSeq):\(result.lastHash)")
        }
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
