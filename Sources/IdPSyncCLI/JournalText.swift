import SyncCore
import SyncEngine

/// Prints journal records: text grouped by run, a JSON array, or the lines as they are.
struct RecordPrinter {
    /// What text output says when no record matched (journalctl's words).
    static let noEntries = "-- No entries --"

    let output: Journal.Show.JournalOutput
    /// How a record's stored time is shown in text (local or UTC).
    let time: (String) -> String
    private var currentRun: String?
    private var first = true

    init(output: Journal.Show.JournalOutput, time: @escaping (String) -> String = { $0 }) {
        self.output = output
        self.time = time
    }

    mutating func print(_ record: JSONValue, _ line: String) {
        switch output {
        case .jsonl: Swift.print(line)
        case .json:
            Swift.print(first ? "[" : ",", terminator: "\n")
            Swift.print(line, terminator: "")
        case .text:
            let run = record["run"]?.stringValue ?? "-"
            if run != currentRun {
                if currentRun != nil { Swift.print("") }
                Swift.print("── run \(TextEscape.visible(run)) " + String(repeating: "─", count: max(0, 60 - run.count)))
                currentRun = run
            }
            Swift.print(TextEscape.visible(Self.text(record, time: time)))
        }
        first = false
    }

    /// Closes the JSON array; text says when nothing matched.
    func finish() {
        switch output {
        case .json: Swift.print(first ? "[]" : "\n]")
        case .text where first: Swift.print(Self.noEntries)
        default: break
        }
    }

    /// One line per record, from the typed record (a record this version does not know is named,
    /// not guessed at).
    static func text(_ r: JSONValue, time: (String) -> String = { $0 }) -> String {
        guard let entry = JournalEntry(record: r) else { return "     ? not a journal record" }
        var line = "\(String(entry.seq).leftPadded(6)) \(time(entry.time)) "
        switch entry.event {
        case .intent(let a):
            line += "intent   \(a.action.rawValue.rightPadded(10)) \(a.gateway)/\(name(a.consumer))"
            line += " [\(a.situation.rawValue)] \(a.reason)"
        case .outcome(let a, _, let result):
            switch result {
            case .applied:
                line += "\("applied".rightPadded(8)) \(a.action.rawValue.rightPadded(10)) \(a.gateway)/\(name(a.consumer))"
            case .failed(let error):
                line += "\("failed".rightPadded(8)) \(a.action.rawValue.rightPadded(10)) \(a.gateway)/\(name(a.consumer))"
                line += ": \(error)"
            }
        case .runStarted(let r):
            line += "started"
            if r.dryRun { line += " (dry run)" }
            line += " on \(r.host) uid \(r.uid)"
            if let format = r.journalFormat, format > JournalEvent.format {
                line += " (journal_format \(format): newer than this idp-sync reads; its records may be shown in part)"
            }
            if let restoring = r.restoreOf { line += ", restoring run \(restoring)" }
            if let repaired = r.repaired { line += "; repaired: \(repaired)" }
            if let previous = r.previousRunInterrupted {
                line += "; run \(previous.run) was interrupted with \(previous.intentsWithoutOutcome.count) write(s) without outcome"
            }
        case .runFinished(let r):
            line += "finished \(r.outcome), exit \(r.exitCode)"
            if let users = r.users { line += ", \(users) users" }
            if let counts = r.counts, !counts.isEmpty {
                line += ", " + counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ")
            }
            if r.stopped == true { line += " (stopped by a signal)" }
        case .runRefused(let r):
            line += "REFUSED \(r.cause): \(r.detail)"
        case .journalStarted(let r):
            line += "journal started, continuing \(r.previousFile) at seq \(r.previousSeq)"
            if let reason = r.acknowledgedReason { line += "; acknowledged: \(reason)" }
        case .unknown(let event):
            line += "\(event) (a record this version does not know)"
        }
        return line
    }

    static func name(_ consumer: Consumer) -> String {
        consumer.username ?? consumer.customID ?? consumer.id.rawValue
    }
}

/// One row of `journal --runs`.
struct RunSummary {
    var id: String
    var started: String?
    var finished: String?
    var outcome = "running?"
    var exitCode: Int64?
    var users: Int64?
    var applied = 0
    var failed = 0
    var note = ""

    init(id: String) { self.id = id }

    mutating func add(_ r: JSONValue) {
        guard let entry = JournalEntry(record: r) else { return }
        switch entry.event {
        case .runStarted(let started):
            self.started = entry.time
            if let restoring = started.restoreOf { note = "restore of \(restoring)" }
        case .runFinished(let finished):
            self.finished = entry.time
            outcome = finished.outcome
            exitCode = finished.exitCode
            users = finished.users
            if finished.stopped == true { note = "stopped by a signal" }
        case .runRefused(let refused):
            outcome = "refused"
            note = "\(refused.cause): \(refused.detail)"
        case .outcome(_, _, let result):
            if case .applied = result { applied += 1 } else { failed += 1 }
        default: break
        }
    }

    static let header = [
        "RUN".rightPadded(26), "STARTED".rightPadded(26), "OUTCOME".rightPadded(10), "EXIT", "USERS".leftPadded(6),
        "APPLIED".leftPadded(8), "FAILED", "NOTE",
    ].joined(separator: " ")

    /// One row under `header`; `time` shows the start time (local or UTC).
    func line(time: (String) -> String) -> String {
        [
            id.rightPadded(26), (started.map(time) ?? "?").rightPadded(26), outcome.rightPadded(10),
            (exitCode.map { String($0) } ?? "-").leftPadded(4), (users.map { String($0) } ?? "-").leftPadded(6),
            String(applied).leftPadded(8), String(failed).leftPadded(6), note,
        ].joined(separator: " ").trimmingTrailingSpaces.escapedForTerminal
    }

    var json: JSONValue {
        [
            "run": .string(id), "started": JSONValue(started), "finished": JSONValue(finished),
            "outcome": .string(outcome), "exit_code": exitCode.map(JSONValue.int) ?? .null,
            "users": users.map(JSONValue.int) ?? .null, "applied": JSONValue(applied), "failed": JSONValue(failed),
            "note": note.isEmpty ? .null : .string(note),
        ]
    }
}

extension String {
    /// Control characters escaped (TextEscape): for text printed to a terminal.
    var escapedForTerminal: String { TextEscape.visible(self) }

    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
