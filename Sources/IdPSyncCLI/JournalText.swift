import SyncCore

/// Prints journal records: text grouped by run, a JSON array, or the lines as they are.
struct RecordPrinter {
    let output: Journal.Show.JournalOutput
    private var currentRun: String?
    private var first = true

    init(output: Journal.Show.JournalOutput) { self.output = output }

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
            Swift.print(TextEscape.visible(Self.text(record)))
        }
        first = false
    }

    func finish() {
        if output == .json { Swift.print(first ? "[]" : "\n]") }
    }

    static func text(_ r: JSONValue) -> String {
        let seq = r["seq"]?.intValue.map { String($0) } ?? "?"
        let time = r["time"]?.stringValue ?? "?"
        let event = r["event"]?.stringValue ?? "?"
        var line = "\(seq.leftPadded(6)) \(time) "
        switch event {
        case "intent", "outcome":
            let consumer = r["consumer"]
            let name = consumer?["username"]?.stringValue ?? consumer?["custom_id"]?.stringValue
                ?? consumer?["id"]?.stringValue ?? "?"
            let action = r["action"]?.stringValue ?? "?"
            if event == "intent" {
                line += "intent   \(action.rightPadded(10)) \(r["gateway"]?.stringValue ?? "?")/\(name)"
                line += " [\(r["situation"]?.stringValue ?? "?")] \(r["reason"]?.stringValue ?? "")"
            } else {
                let outcome = r["outcome"]?.stringValue ?? "?"
                line += "\(outcome.rightPadded(8)) \(action.rightPadded(10)) \(r["gateway"]?.stringValue ?? "?")/\(name)"
                if let error = r["error"]?.stringValue { line += ": \(error)" }
            }
        case "run-started":
            line += "started"
            if r["dry_run"]?.boolValue == true { line += " (dry run)" }
            if let host = r["host"]?.stringValue { line += " on \(host)" }
            if let uid = r["uid"]?.intValue { line += " uid \(uid)" }
            if let restoring = r["restore_of"]?.stringValue { line += ", restoring run \(restoring)" }
            if let repaired = r["repaired"]?.stringValue { line += "; repaired: \(repaired)" }
            if let previous = r["previous_run_interrupted"]?["run"]?.stringValue {
                let n = r["previous_run_interrupted"]?["intents_without_outcome"]?.arrayValue?.count ?? 0
                line += "; run \(previous) was interrupted with \(n) write(s) without outcome"
            }
        case "run-finished":
            line += "finished \(r["outcome"]?.stringValue ?? "?"), exit \(r["exit_code"]?.intValue ?? -1)"
            if let users = r["users"]?.intValue { line += ", \(users) users" }
            if let counts = r["counts"]?.objectValue, !counts.isEmpty {
                line += ", " + counts.keys.sorted().map { "\($0) \(counts[$0]!.intValue ?? 0)" }.joined(separator: ", ")
            }
            if r["stopped"]?.boolValue == true { line += " (stopped by a signal)" }
        case "run-refused":
            line += "REFUSED \(r["cause"]?.stringValue ?? "?"): \(r["detail"]?.stringValue ?? "")"
        default:
            line += event
        }
        return line
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
        switch r["event"]?.stringValue {
        case "run-started":
            started = r["time"]?.stringValue
            if let restoring = r["restore_of"]?.stringValue { note = "restore of \(restoring)" }
        case "run-finished":
            finished = r["time"]?.stringValue
            outcome = r["outcome"]?.stringValue ?? "?"
            exitCode = r["exit_code"]?.intValue
            users = r["users"]?.intValue
            if r["stopped"]?.boolValue == true { note = "stopped by a signal" }
        case "run-refused":
            outcome = "refused"
            note = "\(r["cause"]?.stringValue ?? ""): \(r["detail"]?.stringValue ?? "")"
        case "outcome":
            if r["outcome"]?.stringValue == "applied" { applied += 1 } else { failed += 1 }
        default: break
        }
    }

    var line: String {
        [
            id.rightPadded(26), (started ?? "?").rightPadded(21), outcome.rightPadded(10),
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
