import Foundation
import SyncCore
import SyncEngine
import SyncJournal
import Testing

@Suite("journal, explain and restore through the binary")
struct JournalCommandTests {
    func idpSync(_ args: [String], stdin: String? = nil) throws -> ProcessResult {
        try runProcess(Repo.binary, args, stdin: stdin)
    }

    @Test func journalFiltersRunsAndFollow() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        #expect(try s.sync().status == 0)
        let j = ["--journal", s.journal]

        let carol = try idpSync(["journal"] + j + ["--consumer", "carol", "--output", "jsonl"])
        let records = try carol.stdout.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(records.count == 4)  // flag and disable, intent and outcome each
        #expect(records.allSatisfy { $0["consumer"]?["username"] == "carol" })

        let disables = try idpSync(["journal"] + j + ["--action", "disable", "--since", "1h", "--output", "json"])
        let array = try JSONParser.parse(disables.stdout).arrayValue ?? []
        #expect(array.count == 4)
        #expect(try idpSync(["journal"] + j + ["--until", "2000-01-01"]).stdout == "-- No entries --\n")
        #expect(try idpSync(["journal"] + j + ["--until", "2000-01-01", "--output", "jsonl"]).stdout.isEmpty)
        #expect(try idpSync(["journal"] + j + ["--action", "explode"]).status == 64)

        let text = try idpSync(["journal"] + j)
        #expect(text.stdout.contains("── run r-"))
        #expect(text.stdout.contains("applied  disable    demo/carol"))
        let runs = try idpSync(["journal"] + j + ["--runs"])
        #expect(runs.stdout.split(separator: "\n").count == 2)
        #expect(runs.stdout.contains("ok"))

        // --follow prints what a later run appends.
        let out = s.dir.path + "/follow.out"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let null = open("/dev/null", O_RDWR)
        let follower = try spawn(Repo.binary, ["journal", "--follow", "--output", "jsonl"] + j, stdout: fd, stderr: null, stdin: null)
        close(fd)
        close(null)
        // Observable start: the follower has printed the last 10 of the 12 records already there.
        var printed = 0
        for _ in 0..<3000 {
            printed = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").count
            if printed >= 10 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(printed == 10, "the follower did not print the last existing records")
        let frank = s.consumers["frank"]!
        _ = try await s.kong.kong("PATCH", "/consumers/\(frank)", ["tags": ["idp-managed"]])
        #expect(try s.sync().status == 0)
        // The tail loop: these four records were appended after the follower printed its first ones.
        var followed = ""
        for _ in 0..<3000 {
            followed = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if followed.split(separator: "\n").count >= 14 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        kill(follower, SIGTERM)
        _ = waitFor(follower)
        let lines = followed.split(separator: "\n")
        #expect(lines.count == 14)  // the last 10 of the first run, then run-started, intent, outcome, run-finished
        #expect(lines.last?.contains("run-finished") == true)
    }

    @Test func explainNamesEachCause() async throws {
        let s = try Scenario(policy: ["on_missing": "delete-keys", "grace_period": "0s", "max_disable_percent": "100"])
        try await s.seedDemo()
        #expect(try s.sync().status == 0)
        let c = ["--config", s.config]

        // carol: disabled in the IdP.
        let byName = try idpSync(["explain"] + c + ["--consumer", "carol", "--output", "json"])
        #expect(byName.status == 0, "\(byName.stderr)")
        #expect(try JSONParser.parse(byName.stdout)["cause"] == "user-disabled")
        // Her keys were deleted (on_missing: delete-keys): asked by key on stdin, the key was revoked.
        let byKey = try idpSync(["explain"] + c + ["--key", "-"], stdin: "carol-key-value-1\n")
        #expect(byKey.stdout.contains("the key was revoked"))
        #expect(!byKey.stdout.contains("carol-key-value-1"))

        // frank: missing, keys deleted (on_missing: delete-keys): his old key was revoked.
        let revoked = try JSONParser.parse(try idpSync(["explain"] + c + ["--key", "-", "--output", "json"], stdin: "frank-key-value-1").stdout)
        #expect(revoked["cause"] == "key-revoked")
        #expect(try JSONParser.parse(try idpSync(["explain"] + c + ["--consumer", "frank", "--output", "json"]).stdout)["cause"]
            == "user-deleted-or-altered")

        // A key nobody here knows.
        let unknown = try JSONParser.parse(try idpSync(["explain"] + c + ["--key", "-", "--output", "json"], stdin: "from-staging").stdout)
        #expect(unknown["cause"] == "key-from-another-environment")

        // carol comes back: until the next sync, that is a sync delay.
        _ = try runProcess(
            "/usr/bin/ldapmodify", ["-x", "-H", s.ldap.url, "-D", "cn=admin,dc=example,dc=org", "-w", "admin-secret"],
            stdin: "dn: uid=carol,ou=people,dc=example,dc=org\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
        let delay = try idpSync(["explain"] + c + ["--consumer", "carol"])
        #expect(delay.stdout.contains("the next sync restores it"))

        // The key never appears in argv.
        #expect(try idpSync(["explain"] + c + ["--key", "carol-key-value-1"]).status == 64)
    }

    @Test func restoreUndoesOneRunAndSkipsWhatChangedSince() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let synced = try s.sync(["--output", "json"])
        #expect(synced.status == 0, "\(synced.stderr)")
        let first = try JSONParser.parse(synced.stdout)
        let run = try #require(first["run"]?.stringValue)
        // A person touches frank's marks after the run: restore must leave him alone.
        let frank = try await s.consumer("frank")
        var tags = frank["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        tags.removeAll { $0.hasPrefix(Marks.reasonPrefix) }
        _ = try await s.kong.kong("PATCH", "/consumers/\(s.consumers["frank"]!)", ["tags": JSONValue(tags)])

        let dry = try idpSync(["restore", "--config", s.config, "--run", run, "--dry-run"])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("gateway demo"), "\(dry.stdout)")
        #expect(dry.stdout.split(separator: "\n").contains { $0.contains("+ restore") && $0.contains(" carol ") }, "\(dry.stdout)")
        #expect(dry.stdout.contains("skipped: gateway demo: frank"))
        #expect(try await s.plugins("carol").count == 1)

        // A torn last line (a crash leftover): restore repairs it and says so, like sync.
        let handle = try #require(FileHandle(forWritingAtPath: s.journal))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"event":"intent","seq":99,"ru"#.utf8))
        handle.closeFile()
        let real = try idpSync(["restore", "--config", s.config, "--run", run, "--output", "json"])
        #expect(real.status == 0, "\(real.stderr)")
        #expect(try await s.plugins("carol").isEmpty)
        #expect(try await s.plugins("dave").isEmpty)
        #expect(try await s.consumer("carol")["tags"] == ["idp-managed"])
        #expect(try await s.consumer("frank")["tags"]?.arrayValue?.contains(.string(Marks.orphaned)) == true)
        let started = try s.records().last { $0["event"] == "run-started" }
        #expect(started?["restore_of"] == .string(run))
        #expect(started?["repaired"]?.stringValue?.contains("torn last line") == true)
        #expect(started?["config_sha256"]?.stringValue?.count == 64)
        #expect(started?["journal_format"] == .int(1))
        #expect(try idpSync(["journal", "verify", "--journal", s.journal]).status == 0)
        #expect(try idpSync(["restore", "--config", s.config, "--run", "r-nope"]).status == 1)

        // The directory still says carol is locked: the next sync disables her again with a fresh clock.
        let again = try s.sync()
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("disable    carol"))
    }
}

/// `idp-sync journal` read like journalctl: -n, -r, the --since forms, local time, either-filters,
/// `-- No entries --`, --follow's start and the pager, on journals written with chosen times.
@Suite("journal reader through the binary, side by side with journalctl")
struct JournalReaderTests {
    func idpSync(_ args: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try runProcess(Repo.binary, args, environment: environment)
    }

    /// The seqs of `--output jsonl` lines.
    func seqs(_ r: ProcessResult) throws -> [Int64] {
        try r.stdout.split(separator: "\n").map { try JSONParser.parse(String($0))["seq"]?.intValue ?? -1 }
    }

    /// r-1 at 2026-11-29T20:00:00Z (flag alice), r-2 at 2026-11-30T08:00:00Z (disable bob on prod,
    /// carol on stage), r-3 at 2026-11-30T12:00:00Z (flag dave on stage, restore alice on prod):
    /// 16 records, one second apart within a run.
    static func fixture() throws -> TimedJournal {
        let j = try TimedJournal()
        j.run("r-1", at: "2026-11-29T20:00:00Z", [(.flag, "prod", "alice")])
        j.run("r-2", at: "2026-11-30T08:00:00Z", [(.disable, "prod", "bob"), (.disable, "stage", "carol")])
        j.run("r-3", at: "2026-11-30T12:00:00Z", [(.flag, "stage", "dave"), (.restore, "prod", "alice")])
        return j
    }

    @Test func linesAndReverse() throws {
        let j = try Self.fixture()
        let at = ["--journal", j.path, "--output", "jsonl"]
        #expect(try seqs(idpSync(["journal"] + at)) == Array(1...16))
        #expect(try seqs(idpSync(["journal", "-n", "3"] + at)) == [14, 15, 16])
        #expect(try seqs(idpSync(["journal", "--lines", "3"] + at)) == [14, 15, 16])
        #expect(try seqs(idpSync(["journal", "--lines", "all"] + at)) == Array(1...16))
        #expect(try seqs(idpSync(["journal", "-r"] + at)) == Array((1...16).reversed()))
        #expect(try seqs(idpSync(["journal", "--reverse"] + at)) == Array((1...16).reversed()))
        #expect(try seqs(idpSync(["journal", "-n", "3", "-r"] + at)) == [16, 15, 14])
        #expect(try seqs(idpSync(["journal", "-r", "-n", "2", "--action", "disable"] + at)) == [9, 8])
        let json = try idpSync(["journal", "-n", "2", "--journal", j.path, "--output", "json"])
        #expect(try JSONParser.parse(json.stdout).arrayValue?.map { $0["seq"]?.intValue } == [15, 16])

        // Text: newest first, still under each run's header.
        let text = try idpSync(["journal", "-n", "7", "-r", "--journal", j.path, "--utc"])
        #expect(text.status == 0, "\(text.stderr)")
        let rows = text.stdout.split(separator: "\n").map(String.init)
        #expect(rows.first?.hasPrefix("── run r-3 ") == true)
        #expect(rows.dropFirst().first?.hasPrefix("    16 2026-11-30T12:00:05Z finished ok") == true, "\(rows)")
        #expect(rows.contains { $0.hasPrefix("── run r-2 ") })
        #expect(rows.last?.hasPrefix("    10 ") == true)

        // --runs: the last N runs, newest first with -r.
        func runIDs(_ args: [String]) throws -> [String] {
            try idpSync(["journal", "--runs"] + args + at).stdout.split(separator: "\n")
                .map { try JSONParser.parse(String($0))["run"]?.stringValue ?? "?" }
        }
        #expect(try runIDs([]) == ["r-1", "r-2", "r-3"])
        #expect(try runIDs(["-n", "2"]) == ["r-2", "r-3"])
        #expect(try runIDs(["-r"]) == ["r-3", "r-2", "r-1"])
        #expect(try runIDs(["-n", "1", "-r"]) == ["r-3"])
        let runsText = try idpSync(["journal", "--runs", "-n", "1", "--journal", j.path]).stdout.split(separator: "\n")
        #expect(runsText.count == 2)
        #expect(runsText.last?.hasPrefix("r-3 ") == true)

        #expect(try idpSync(["journal", "-n", "-1", "--journal", j.path]).status == 64)
        #expect(try idpSync(["journal", "-n", "many", "--journal", j.path]).status == 64)
        #expect(try idpSync(["journal", "-f", "-r", "--journal", j.path]).status == 64)
    }

    @Test func sinceAndUntilTakeLocalTimesDatesAndOffsets() throws {
        let j = try Self.fixture()
        let at = ["--journal", j.path, "--output", "jsonl"]
        let kolkata = ["TZ": "Asia/Kolkata"]
        let utc = ["TZ": "UTC"]
        // A bare date is local midnight: in Kolkata 2026-11-30 starts at 2026-11-29T18:30:00Z, so r-1 is in.
        #expect(try seqs(idpSync(["journal", "--since", "2026-11-30"] + at, environment: kolkata)) == Array(1...16))
        #expect(try seqs(idpSync(["journal", "--since", "2026-11-30"] + at, environment: utc)) == Array(5...16))
        // A time without an offset is local: 13:30 in Kolkata is 08:00Z.
        for (since, until) in [("2026-11-30 13:30", "2026-11-30T13:30:03"), ("2026-11-30T13:30:00", "2026-11-30 13:30:03")] {
            let r = try idpSync(["journal", "--since", since, "--until", until] + at, environment: kolkata)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try seqs(r) == [5, 6, 7, 8])
        }
        #expect(try seqs(idpSync(["journal", "--since", "2026-11-30 08:00", "--until", "2026-11-30T08:00:03"] + at, environment: utc))
            == [5, 6, 7, 8])
        // An explicit offset or Z wins over TZ.
        #expect(try seqs(idpSync(["journal", "--since", "2026-11-30T13:30:00+05:30", "--until", "2026-11-30T08:00:01Z"] + at, environment: utc))
            == [5, 6])
        #expect(try seqs(idpSync(["journal", "--since", "2026-11-30 12:00 UTC"] + at, environment: kolkata)) == Array(11...16))
        // The old forms still work.
        #expect(try seqs(idpSync(["journal", "--since", "2026-11-30T12:00:00Z", "--until", "2026-11-30T12:00:02Z"] + at)) == [11, 12, 13])
        #expect(try seqs(idpSync(["journal", "--since", "30000d"] + at)) == Array(1...16))
        // Bad input: exit 64, naming the forms that work.
        for bad in ["next tuesday", "2026-11-31", "25:00", "2h later"] {
            let r = try idpSync(["journal", "--since", bad, "--journal", j.path])
            #expect(r.status == 64, "\(bad)")
            #expect(r.stderr.contains("--since '\(bad)' is not a time"), "\(r.stderr)")
            #expect(r.stderr.contains("yesterday") && r.stderr.contains("2h ago") && r.stderr.contains("2026-11-30 14:00"))
        }
        #expect(try idpSync(["journal", "--until", "soon", "--journal", j.path]).status == 64)
    }

    @Test func sinceAndUntilTakeTodayYesterdayNowAndAges() throws {
        // Around the real clock, in Kolkata: local midnights from Foundation, records on both sides.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Asia/Kolkata")!
        let now = Int64(Date().timeIntervalSince1970)
        let today = Int64(calendar.startOfDay(for: Date()).timeIntervalSince1970)
        let yesterday = today - 86_400  // Kolkata has no clock changes
        let j = try TimedJournal()
        for (name, time) in [
            ("y-before", yesterday - 60), ("y-after", yesterday + 60), ("t-before", today - 60), ("h3", now - 3 * 3600),
            ("h1", now - 3600), ("t-after", today + 60), ("future", now + 3600),
        ].sorted(by: { $0.1 < $1.1 }) {
            j.add(.runStarted(.init(run: name, version: "test", host: "h", uid: 0)), at: time)
        }
        func runs(_ args: [String]) throws -> Set<String> {
            let r = try idpSync(["journal", "--journal", j.path, "--output", "jsonl"] + args, environment: ["TZ": "Asia/Kolkata"])
            #expect(r.status == 0, "\(r.stderr)")
            return Set(try r.stdout.split(separator: "\n").map { try JSONParser.parse(String($0))["run"]?.stringValue ?? "?" })
        }
        let sinceToday = try runs(["--since", "today"])
        #expect(sinceToday.isSuperset(of: ["t-after", "future"]))
        #expect(sinceToday.isDisjoint(with: ["t-before", "y-after", "y-before"]))
        let yesterdayOnly = try runs(["--since", "yesterday", "--until", "today"])
        #expect(yesterdayOnly.isSuperset(of: ["y-after", "t-before"]))
        #expect(yesterdayOnly.isDisjoint(with: ["y-before", "t-after", "future"]))
        let recent: Set<String> = today + 60 >= now - 7200 ? ["h1", "future", "t-after"] : ["h1", "future"]
        #expect(try runs(["--since", "-2h"]) == recent)
        #expect(try runs(["--since", "2h ago"]) == runs(["--since", "-2h"]))
        #expect(try runs(["--since", "2h"]) == runs(["--since", "-2h"]))
        #expect(try runs(["--since", "now"]) == ["future"])
        #expect(try !runs(["--until", "now"]).contains("future"))
        #expect(try runs(["--since", "+30m"]) == ["future"])
    }

    @Test func textShowsLocalTimeUnlessUTCAndJSONKeepsRecords() throws {
        let j = try Self.fixture()
        let kolkata = ["TZ": "Asia/Kolkata"]
        let local = try idpSync(["journal", "--journal", j.path, "--run", "r-2"], environment: kolkata)
        #expect(local.status == 0, "\(local.stderr)")
        #expect(local.stdout.contains("     5 2026-11-30T13:30:00+05:30 started"))
        #expect(local.stdout.contains("     7 2026-11-30T13:30:02+05:30 applied  disable    prod/bob"))
        #expect(!local.stdout.contains("08:00:00Z"))
        let newYork = try idpSync(["journal", "--journal", j.path, "--run", "r-2"], environment: ["TZ": "America/New_York"])
        #expect(newYork.stdout.contains("     5 2026-11-30T03:00:00-05:00 started"))
        let utc = try idpSync(["journal", "--journal", j.path, "--run", "r-2", "--utc"], environment: kolkata)
        #expect(utc.stdout.contains("     5 2026-11-30T08:00:00Z started"))
        #expect(!utc.stdout.contains("+05:30"))
        // --runs text too.
        let runs = try idpSync(["journal", "--journal", j.path, "--runs"], environment: kolkata)
        #expect(runs.stdout.contains("r-2                        2026-11-30T13:30:00+05:30  ok"), "\(runs.stdout)")
        #expect(try idpSync(["journal", "--journal", j.path, "--runs", "--utc"], environment: kolkata).stdout
            .contains("2026-11-30T08:00:00Z"))
        // json and jsonl: the records byte for byte, whatever TZ says.
        let jsonl = try idpSync(["journal", "--journal", j.path, "--output", "jsonl"], environment: kolkata)
        #expect(jsonl.stdout == (try String(contentsOfFile: j.path, encoding: .utf8)))
        let json = try idpSync(["journal", "--journal", j.path, "--output", "json", "-n", "1"], environment: kolkata)
        #expect(try JSONParser.parse(json.stdout).arrayValue?.first?["time"] == "2026-11-30T12:00:05Z")
    }

    @Test func aFilterGivenTwiceMeansEither() throws {
        let j = try Self.fixture()
        let at = ["--journal", j.path, "--output", "jsonl"]
        // intents and outcomes: r-1 flag alice 2-3; r-2 disable bob 6-7, carol 8-9; r-3 flag dave 12-13, restore alice 14-15.
        #expect(try seqs(idpSync(["journal", "--action", "flag", "--action", "restore"] + at)) == [2, 3, 12, 13, 14, 15])
        #expect(try seqs(idpSync(["journal", "--action", "flag", "--action", "disable", "--gateway", "stage"] + at)) == [8, 9, 12, 13])
        #expect(try seqs(idpSync(["journal", "--consumer", "alice", "--consumer", "bob", "--gateway", "prod"] + at))
            == [2, 3, 6, 7, 14, 15])
        #expect(try seqs(idpSync(["journal", "--gateway", "prod", "--gateway", "stage", "--consumer", "carol"] + at)) == [8, 9])
        #expect(try seqs(idpSync(["journal", "--user", "u-bob", "--user", "carol"] + at)) == [6, 7, 8, 9])
        #expect(try seqs(idpSync(["journal", "--run", "r-1", "--run", "r-3", "--action", "flag"] + at)) == [2, 3, 12, 13])
        #expect(try seqs(idpSync(["journal", "--run", "r-1", "--run", "r-3"] + at)) == [1, 2, 3, 4] + Array(11...16))
        let runs = try idpSync(["journal", "--runs", "--run", "r-1", "--run", "r-3"] + at)
        #expect(runs.stdout.split(separator: "\n").count == 2)
        // Each --action is checked.
        let bad = try idpSync(["journal", "--action", "flag", "--action", "explode", "--journal", j.path])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("'explode'"))
    }

    @Test func anEmptyResultSaysNoEntries() throws {
        let j = try Self.fixture()
        let at = ["--journal", j.path, "--consumer", "nobody"]
        let text = try idpSync(["journal"] + at)
        #expect(text.status == 0)
        #expect(text.stdout == "-- No entries --\n")
        #expect(try idpSync(["journal", "-n", "0", "--journal", j.path]).stdout == "-- No entries --\n")
        #expect(try idpSync(["journal", "--output", "json"] + at).stdout == "[]\n")
        let jsonl = try idpSync(["journal", "--output", "jsonl"] + at)
        #expect(jsonl.status == 0)
        #expect(jsonl.stdout.isEmpty)
        let runs = try idpSync(["journal", "--runs", "--run", "r-none", "--journal", j.path])
        #expect(runs.status == 0)
        #expect(runs.stdout == "-- No entries --\n")
        #expect(try idpSync(["journal", "--runs", "--run", "r-none", "--journal", j.path, "--output", "json"]).stdout == "[]\n")
    }

    /// Starts `journal --follow`, waits until it has printed `count` lines and a little longer (so
    /// more would show), and returns its process with the lines; polls without blocking.
    func follow(_ args: [String], _ j: TimedJournal, count: Int) async throws -> (pid_t, String, [String]) {
        let out = j.dir.path + "/follow-\(UUID().uuidString).out"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let null = open("/dev/null", O_RDWR)
        let pid = try spawn(Repo.binary, ["journal", "--follow", "--journal", j.path] + args, stdout: fd, stderr: null, stdin: null)
        close(fd)
        close(null)
        return (pid, out, try await linesOf(out, atLeast: count))
    }

    func linesOf(_ path: String, atLeast count: Int) async throws -> [String] {
        var lines: [String] = []
        for _ in 0..<1500 {
            lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.count >= count { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        // The follower polls every 250 ms: anything more it would print is there by now.
        try await Task.sleep(nanoseconds: 600_000_000)
        return ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func followStartsWithTheLastTen() async throws {
        let j = try Self.fixture()
        func seqs(_ lines: [String]) throws -> [Int64] { try lines.map { try JSONParser.parse($0)["seq"]?.intValue ?? -1 } }
        let (pid, out, first) = try await follow(["--output", "jsonl"], j, count: 10)
        #expect(try seqs(first) == Array(7...16))
        // Then what is appended.
        j.run("r-4", at: "2026-11-30T13:00:00Z", [(.disable, "prod", "erin")])
        let later = try await linesOf(out, atLeast: 14)
        kill(pid, SIGTERM)
        #expect(try await exitStatus(of: pid) != nil)
        #expect(try seqs(later) == Array(7...20))

        // -n or --since say otherwise; filters apply first.
        for (args, expected) in [
            (["-n", "2"], [Int64(19), 20]), (["--since", "2026-11-30T12:00:03Z"], Array(14...20)),
            (["--lines", "all", "--action", "disable"], [6, 7, 8, 9, 18, 19]), (["--consumer", "alice"], [2, 3, 14, 15]),
        ] as [([String], [Int64])] {
            let (pid, _, lines) = try await follow(["--output", "jsonl"] + args, j, count: expected.count)
            kill(pid, SIGTERM)
            #expect(try await exitStatus(of: pid) != nil)
            #expect(try seqs(lines) == expected, "\(args)")
        }

        // Text: the last 10 under their run headers, without "-- No entries --" when there are some.
        let (textPID, textOut, _) = try await follow(["--utc"], j, count: 12)
        kill(textPID, SIGTERM)
        #expect(try await exitStatus(of: textPID) != nil)
        let text = try String(contentsOfFile: textOut, encoding: .utf8)
        #expect(text.hasPrefix("── run r-3 "), "\(text)")
        #expect(text.contains("    11 2026-11-30T12:00:00Z started"))
        #expect(!text.contains("    10 "))
        #expect(text.contains("── run r-4 "))
    }

    /// Runs `idp-sync journal ARGS` on a pseudo-terminal (util-linux `script`), with `PAGER` a
    /// script that notes it ran and what LESS was, and keeps what it was given.
    func onTerminal(
        _ args: [String], pager: String? = nil, prefix: [String] = ["env", "-u", "LESS"], in j: TimedJournal
    ) throws
        -> (result: ProcessResult, paged: String?, less: String?)
    {
        let marker = j.dir.path + "/pager-ran", paged = j.dir.path + "/paged", less = j.dir.path + "/less"
        for file in [marker, paged, less] { unlink(file) }
        let script = j.dir.write(
            "pager.sh", "touch '\(marker)'\nprintf '%s' \"$LESS\" > '\(less)'\ncat > '\(paged)'\n")
        // Run by /bin/sh, not exec'd: a file just written may still be open for writing in a
        // process another test is forking at this moment, and exec would fail with ETXTBSY.
        func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = (prefix + [Repo.binary, "journal", "--journal", j.path] + args).map(quote).joined(separator: " ")
        let r = try runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: ["PAGER": pager ?? "/bin/sh " + script])
        let ran = FileManager.default.fileExists(atPath: marker)
        return (
            r, ran ? (try? String(contentsOfFile: paged, encoding: .utf8)) ?? "" : nil,
            ran ? try? String(contentsOfFile: less, encoding: .utf8) : nil
        )
    }

    @Test func aTerminalGetsAPagerUnlessNoPager() throws {
        let j = try Self.fixture()
        // On a terminal: through $PAGER, with LESS=FRSX when unset, all of it, and the pager waited for.
        let paged = try onTerminal(["-n", "3", "--utc"], in: j)
        #expect(paged.result.status == 0, "\(paged.result.stdout)")
        #expect(paged.less == "FRSX")
        #expect(paged.paged?.contains("    16 2026-11-30T12:00:05Z finished ok") == true, "\(paged.paged ?? "nil")")
        #expect(paged.paged?.contains("── run r-3 ") == true)
        #expect(!paged.result.stdout.contains("finished ok"))
        // A LESS of the user's own is kept.
        #expect(try onTerminal(["-n", "1"], prefix: ["env", "LESS=R"], in: j).less == "R")
        // The empty result is paged too.
        #expect(try onTerminal(["--consumer", "nobody"], in: j).paged == "-- No entries --\n")

        // --no-pager: straight to the terminal.
        let direct = try onTerminal(["-n", "3", "--utc", "--no-pager"], in: j)
        #expect(direct.paged == nil)
        #expect(direct.result.stdout.contains("    16 2026-11-30T12:00:05Z finished ok"))
        // A pager that cannot be started: straight to the terminal.
        let missing = try onTerminal(["-n", "3", "--utc"], pager: j.dir.path + "/no-such-pager", in: j)
        #expect(missing.result.status == 0)
        #expect(missing.result.stdout.contains("finished ok"))
        // --follow is never paged.
        let followed = try onTerminal(["--follow", "-n", "1"], prefix: ["timeout", "1", "env", "-u", "LESS"], in: j)
        #expect(followed.paged == nil)
        #expect(followed.result.stdout.contains("finished ok"))
        // Not a terminal: no pager, even with PAGER set.
        let piped = try idpSync(["journal", "--journal", j.path, "-n", "1"], environment: ["PAGER": j.dir.path + "/pager.sh"])
        #expect(piped.stdout.contains("finished ok"))
        #expect(!FileManager.default.fileExists(atPath: j.dir.path + "/pager-ran"))
    }
}

/// A journal written record by record at chosen times, as a valid hash chain.
final class TimedJournal: @unchecked Sendable {
    let dir = TempDir()
    var path: String { dir.path + "/journal.jsonl" }
    private var seq: Int64 = 0
    private var prev = JournalRecord.genesis

    init() throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
    }

    func add(_ event: JournalEvent, at time: Int64) {
        seq += 1
        var record = event.fields
        record["seq"] = .int(seq)
        record["time"] = .string(TimeFormat.rfc3339(time))
        record["prev"] = .string(prev)
        prev = JournalRecord.hash(of: record)
        record["hash"] = .string(prev)
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data((JSONValue.object(record).canonical + "\n").utf8))
        handle.closeFile()
    }

    /// A run: started, an intent and an applied outcome per action, finished; one second apart.
    func run(_ id: String, at start: String, _ actions: [(ActionKind, String, String)]) {
        var time = TimeFormat.parseRFC3339(start)!
        add(.runStarted(.init(run: id, version: "test", host: "h", uid: 0)), at: time)
        for (kind, gateway, name) in actions {
            let action = JournalEvent.ActionRecord(
                run: id, gateway: gateway, action: kind, situation: .deactivated,
                consumer: Consumer(id: ConsumerID("id-\(name)"), username: name, customID: "u-\(name)", tags: nil),
                user: DirectoryUser(id: UserID("u-\(name)"), username: name, state: .deactivated), keys: [], before: [],
                after: [], reason: "test")
            time += 1
            add(.intent(action), at: time)
            time += 1
            add(.outcome(action, intent: seq, result: .applied), at: time)
        }
        time += 1
        add(.runFinished(.init(run: id, outcome: "ok", exitCode: 0, planHash: nil, users: 5)), at: time)
    }
}
