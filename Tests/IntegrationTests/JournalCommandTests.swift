import Foundation
import SyncCore
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
        #expect(try idpSync(["journal"] + j + ["--until", "2000-01-01"]).stdout.isEmpty)
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
        // Observable start: the follower has printed the 12 records already there.
        var printed = 0
        for _ in 0..<3000 {
            printed = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").count
            if printed >= 12 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(printed == 12, "the follower did not print the existing records")
        let frank = s.consumers["frank"]!
        _ = try await s.kong.kong("PATCH", "/consumers/\(frank)", ["tags": ["idp-managed"]])
        #expect(try s.sync().status == 0)
        // The tail loop: these four records were appended after the follower printed its first ones.
        var followed = ""
        for _ in 0..<3000 {
            followed = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if followed.split(separator: "\n").count >= 16 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        kill(follower, SIGTERM)
        _ = waitFor(follower)
        let lines = followed.split(separator: "\n")
        #expect(lines.count == 16)  // 12 of the first run, then run-started, intent, outcome, run-finished
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
