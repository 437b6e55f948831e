import Foundation
import SyncCore
import Testing

/// The operator's afternoon: check-config --connect catching each mistake, journald-native logs,
/// colour and terminals, the plan a person reviews, pasteable suggestions, the key prompt.
@Suite("Operator: checks, journald logs, colour, plan layout, key prompt")
struct OperatorTests {
    /// The config with `from` replaced by `to` (mistakes a person makes by hand).
    func edit(_ s: Scenario, _ from: String, _ to: String) throws {
        let text = try String(contentsOfFile: s.config, encoding: .utf8)
        #expect(text.contains(from), "the scenario's config has no \(from)")
        try text.replacingOccurrences(of: from, with: to).write(toFile: s.config, atomically: true, encoding: .utf8)
    }

    func connect(_ s: Scenario, json: Bool = false) throws -> ProcessResult {
        try runProcess(Repo.binary, ["check-config", "--config", s.config, "--connect"] + (json ? ["--output", "json"] : []))
    }

    /// Each row: a mistake, the line that must fail (or warn) and what it must say.
    static func mistakes(_ s: Scenario) -> [(name: String, from: String, to: String, status: String, says: String)] { [
        ("wrong base_dn", "base_dn: \(s.ldap.baseDN)", "base_dn: ou=nowhere,\(s.ldap.baseDN)", "FAIL", "does not exist"),
        ("malformed filter", "  timeout: 5s", "  timeout: 5s\n  filter: objectClass=inetOrgPerson)", "FAIL", "not a valid LDAP filter"),
        ("unreadable id attribute", "  timeout: 5s", "  timeout: 5s\n  id_attribute: employeeNumber", "FAIL", "cannot be read"),
        ("missing journal directory", "journal.jsonl", "no-such-dir/journal.jsonl", "FAIL", "cannot open the journal directory"),
        ("select_tags typo", "select_tags: [idp-managed]", "select_tags: [idp-manged]", "warn", "match no consumer"),
    ] }

    @Test(arguments: 0..<5)
    func checkConfigConnectCatchesEachMistake(_ row: Int) async throws {
        let s = try Scenario()
        let mistake = Self.mistakes(s)[row]
        try await s.seedDemo()
        let good = try connect(s)
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(!good.stdout.contains("FAIL") && !good.stdout.contains("warn"), "\(good.stdout)")
        try edit(s, mistake.from, mistake.to)
        let bad = try connect(s)
        #expect(bad.status == (mistake.status == "FAIL" ? 1 : 0), "\(mistake.name): \(bad.stdout)\(bad.stderr)")
        let line = bad.stdout.split(separator: "\n").first { $0.hasPrefix(mistake.status) }
        #expect(line?.contains(mistake.says) == true, "\(mistake.name): \(bad.stdout)")
        // The same answer as JSON: every check with its status.
        let json = try JSONParser.parse(try connect(s, json: true).stdout)
        #expect(json["ok"] == .bool(mistake.status != "FAIL"))
        let statuses = (json["checks"]?.arrayValue ?? []).compactMap { $0["status"]?.stringValue }
        #expect(statuses.contains(mistake.status == "FAIL" ? "failed" : "warning"), "\(json)")
    }

    @Test func checkConfigTellsAMissingTokenFromARefusedOne() async throws {
        let none = try Scenario(kongArguments: ["--token", "tok-right-1234"])
        let missing = try connect(none)
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("no token configured"), "\(missing.stdout)")
        let wrong = try Scenario(kongArguments: ["--token", "tok-right-1234"], token: "tok-wrong-5678")
        let refused = try connect(wrong)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("the configured token was refused"), "\(refused.stdout)")
        #expect(!refused.stdout.contains("tok-wrong-5678") && !refused.stdout.contains("tok-right-1234"))
    }

    /// A lock held by a live process is reported with its pid, and is not a failure.
    @Test func checkConfigReportsAHeldLockWithItsPid() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let fd = open(s.journal + ".lock", O_RDWR | O_CREAT, 0o640)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let text = "\(getpid())\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        let r = try connect(s)
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("the lock is held by pid \(getpid())"), "\(r.stdout)")
    }

    // MARK: logs

    /// Under systemd (JOURNAL_STREAM names stderr) each line starts with its syslog priority and
    /// carries no timestamp; anywhere else it stays logfmt with its time.
    @Test func journaldLinesCarryTheirPriority() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let script = #"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@""#
        let under = try runProcess("/bin/sh", ["-c", script, Repo.binary, "sync", "--config", s.config, "--dry-run"])
        #expect(under.status == 0, "\(under.stderr)")
        let lines = under.stderr.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("<") }, "\(under.stderr)")
        #expect(lines.contains { $0.hasPrefix("<6>level=info msg=\"run finished\"") }, "\(under.stderr)")
        #expect(!under.stderr.contains("time="))
        // Another stream's identity: plain logfmt.
        let elsewhere = try runProcess(
            Repo.binary, ["sync", "--config", s.config, "--dry-run"], environment: ["JOURNAL_STREAM": "1:1"])
        #expect(elsewhere.stderr.contains("time=") && !elsewhere.stderr.contains("<6>"))
        // An error is <3>, so `journalctl -p err` finds it.
        try edit(s, "admin_url: \(s.kong.url)", "admin_url: http://127.0.0.1:9")
        let failed = try runProcess(Repo.binary, ["sync", "--config", s.config, "--log-format", "journald"])
        #expect(failed.status == 1)
        #expect(failed.stderr.split(separator: "\n").contains { $0.hasPrefix("<3>level=error") }, "\(failed.stderr)")
    }

    @Test func jsonLogsKeepNumbersNumbers() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let r = try s.sync(["--log-format", "json"])
        #expect(r.status == 0)
        let lines = try r.stderr.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        let read = try #require(lines.first { $0["msg"] == "directory read" })
        #expect(read["sync.users"] == .int(6))
        guard case .double(let seconds)? = read["sync.duration_seconds"] else {
            Issue.record("sync.duration_seconds is not a number: \(read)")
            return
        }
        #expect(seconds >= 0 && seconds < 60)
        let done = try #require(lines.first { $0["msg"] == "writes done" })
        #expect(done["sync.stopped"] == .bool(false))
        let finished = try #require(lines.last)
        #expect(finished["sync.exit_code"] == .int(0))
    }

    // MARK: colour and terminals

    /// `script` gives the command a pseudo-terminal, so `auto` sees a terminal.
    func onTerminal(_ command: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> ProcessResult {
        let line = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try runProcess(
            "/usr/bin/script", ["-qfec", line, "-E", "always", "/dev/null"], stdin: stdin,
            environment: ["TERM": "xterm", "NO_COLOR": "", "COLUMNS": "200"].merging(environment) { _, new in new })
    }

    @Test func colourFollowsTheTerminalNoColorAndTheFlag() throws {
        let s = try Scenario()
        let check = [Repo.binary, "check-config", "--config", s.config]
        #expect(try onTerminal(check).stdout.contains("\u{1B}[32mok"))
        #expect(!(try onTerminal(check, environment: ["NO_COLOR": "1"]).stdout.contains("\u{1B}[")))
        #expect(!(try onTerminal(check, environment: ["TERM": "dumb"]).stdout.contains("\u{1B}[")))
        #expect(!(try onTerminal(check + ["--color", "never"]).stdout.contains("\u{1B}[")))
        #expect(try onTerminal(check + ["--color", "always"], environment: ["NO_COLOR": "1"]).stdout.contains("\u{1B}[32m"))
        // Not a terminal: nothing unless asked.
        let arguments = Array(check.dropFirst())
        #expect(!(try runProcess(Repo.binary, arguments).stdout.contains("\u{1B}[")))
        #expect(try runProcess(Repo.binary, arguments + ["--color", "always"]).stdout.contains("\u{1B}[32m"))
    }

    /// Progress (`\r` and erase-line) only on a terminal that wants it.
    @Test func progressOnlyOnATerminalThatWantsIt() async throws {
        let s = try Scenario(users: 300)
        try await s.seedDemo()
        let sync = [Repo.binary, "sync", "--config", s.config, "--dry-run"]
        let tty = try onTerminal(sync)
        // Bytes, not Characters: "\r\n" is one Character, and script(1) turns every "\n" into it.
        func has(_ text: String, _ bytes: String) -> Bool { Data(text.utf8).range(of: Data(bytes.utf8)) != nil }
        #expect(has(tty.stdout, "\r\u{1B}[K"), "no progress on a terminal")
        let dumb = try onTerminal(sync, environment: ["TERM": "dumb"])
        #expect(!has(dumb.stdout, "\u{1B}["), "escape codes on TERM=dumb")
        #expect(!has(dumb.stdout.replacingOccurrences(of: "\r\n", with: "\n"), "\r"), "\\r progress on TERM=dumb")
        let piped = try runProcess(Repo.binary, Array(sync.dropFirst()))
        #expect(!has(piped.stderr, "\r") && !has(piped.stderr, "\u{1B}["))
    }

    // MARK: the plan

    @Test func thePlanIsAlignedAndItsSuggestionsPaste() async throws {
        let s = try Scenario(policy: ["max_disable": "1"])
        try await s.seedDemo()
        let r = try s.sync(["--dry-run"])
        #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Every line but a suggested command (which must paste whole) fits 120 columns.
        #expect(lines.filter { !$0.hasPrefix("  idp-sync ") }.allSatisfy { $0.count <= 120 }, "\(r.stdout)")
        // One table: the columns start at the same place on every row.
        let header = try #require(lines.first { $0.hasPrefix("  ACTION") })
        let consumerColumn = try #require(header.range(of: "CONSUMER")).lowerBound.utf16Offset(in: header)
        for name in ["frank", "carol", "dave", "svc-ci"] {
            let row = try #require(lines.first { $0.contains(" \(name)") && !$0.hasPrefix("gateway") }, "\(name)")
            #expect(row.range(of: name)?.lowerBound.utf16Offset(in: row) == consumerColumn, "\(row)")
        }
        // frank is flagged now and waits out his 24h grace period: the plan says until when.
        let waiting = try #require(lines.first { $0.contains("waiting") && $0.contains("frank") }, "\(r.stdout)")
        #expect(waiting.contains("disable at ") && waiting.contains("(in 1d"), "\(waiting)")
        // The brake names a complete command; pasted as it is, it applies exactly this plan.
        let index = try #require(lines.firstIndex { $0.hasPrefix("If this plan is right") })
        let command = lines[index + 1].trimmingCharacters(in: .whitespaces)
        #expect(command.contains("--config"), "\(command)")
        let pasted = try runProcess("/bin/sh", ["-c", command.replacingOccurrences(of: "idp-sync ", with: "\"$0\" "), Repo.binary])
        #expect(pasted.status == 0, "\(command): \(pasted.stdout)\(pasted.stderr)")
        #expect(pasted.stdout.contains("applied"))
        // restore prints the same table.
        let runs = try runProcess(Repo.binary, ["journal", "--runs", "--config", s.config, "--output", "jsonl"])
        let run = try #require(runs.stdout.split(separator: "\n").last.flatMap { try? JSONParser.parse(String($0))["run"]?.stringValue })
        let restore = try runProcess(Repo.binary, ["restore", "--config", s.config, "--run", run, "--dry-run"])
        #expect(restore.status == 0, "\(restore.stdout)\(restore.stderr)")
        #expect(restore.stdout.contains("gateway demo"), "\(restore.stdout)")
        #expect(restore.stdout.contains("  ACTION       CONSUMER"), "\(restore.stdout)")
        #expect(restore.stdout.contains("+ restore"), "\(restore.stdout)")
    }

    @Test func theDefaultConfigComesFromTheEnvironment() async throws {
        let s = try Scenario()
        let r = try runProcess(Repo.binary, ["check-config"], environment: ["IDP_SYNC_CONFIG": s.config])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(s.config))
        let none = try runProcess(Repo.binary, ["check-config"], environment: ["IDP_SYNC_CONFIG": ""])
        #expect(none.status == 1)
        #expect(none.stderr.contains("/etc/idp-sync/config.yaml"), "\(none.stderr)")
    }

    // MARK: the key prompt

    /// On a terminal, `explain --key -` asks for the key and does not echo it.
    @Test func theKeyIsNeverEchoed() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let explain = [Repo.binary, "explain", "--config", s.config, "--key", "-"]
        // The key is typed a moment after the prompt (a person, not a paste before the program runs).
        let typed = "sleep 1; printf 'alice-key-value-1\\n'"
        let line = explain.map { "'" + $0 + "'" }.joined(separator: " ")
        let r = try runProcess(
            "/bin/sh", ["-c", "(\(typed)) | script -qfec \"\(line)\" -E always /dev/null"],
            environment: ["TERM": "xterm"])
        #expect(r.stdout.contains("API key (input hidden):"), "\(r.stdout)")
        #expect(!r.stdout.contains("alice-key-value-1"), "the key was echoed: \(r.stdout)")
        #expect(r.stdout.contains("alice"), "the key was not read: \(r.stdout)")
    }
}
