import Foundation
import SyncCore
import Testing

@Suite("Metrics, logs, check-config --connect, terminal niceties")
struct ObservabilityTests {
    func addMetrics(_ s: Scenario) throws -> String {
        let path = s.dir.path + "/metrics/idp-sync.prom"
        try FileManager.default.createDirectory(atPath: s.dir.path + "/metrics", withIntermediateDirectories: true)
        let config = try String(contentsOfFile: s.config, encoding: .utf8)
        try (config + "\nmetrics:\n  textfile_path: \(path)\n").write(toFile: s.config, atomically: true, encoding: .utf8)
        return path
    }

    func sample(_ text: String, _ name: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    @Test func metricsAreValidAtomicAndCarryTheLastSuccessForward() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let path = try addMetrics(s)
        #expect(try s.sync().status == 0)
        let first = try String(contentsOfFile: path, encoding: .utf8)
        let lint = try runProcess("/usr/bin/promtool", ["check", "metrics"], stdin: first)
        #expect(lint.status == 0, "\(lint.stdout)\(lint.stderr)")
        #expect(first.contains(#"idp_sync_actions_total{action="disable",gateway="demo",outcome="applied"} 2"#))
        #expect(first.contains(#"idp_sync_situations{gateway="demo",situation="protected"} 1"#))
        #expect(first.contains(#"idp_sync_managed_consumers{gateway="demo"} 5"#))
        #expect(sample(first, "idp_sync_directory_users") == 6)
        #expect(sample(first, "idp_sync_exit_code") == 0)
        let success = try #require(sample(first, "idp_sync_last_success_timestamp_seconds"))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.dir.path + "/metrics") == ["idp-sync.prom"])

        // A refused run: exit 4, the refusal counted, the last success kept.
        s.ldap.stop()
        // Observable: the directory no longer answers (rather than a fixed sleep).
        for _ in 0..<500 {
            let probe = try runProcess("/usr/bin/ldapsearch", ["-x", "-H", s.ldap.url, "-b", "", "-s", "base", "-o", "nettimeout=1"])
            if probe.status != 0 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(try s.sync().status == 4)
        let second = try String(contentsOfFile: path, encoding: .utf8)
        #expect(try runProcess("/usr/bin/promtool", ["check", "metrics"], stdin: second).status == 0)
        #expect(sample(second, "idp_sync_exit_code") == 4)
        #expect(sample(second, "idp_sync_last_success_timestamp_seconds") == success)
        #expect(second.contains(#"idp_sync_refused{cause="source-error"} 1"#))
        #expect(second.contains(#"idp_sync_refused{cause="shrink"} 0"#))
        // No sample timestamps: every sample line is exactly "name{labels} value".
        #expect(second.split(separator: "\n").filter { !$0.hasPrefix("#") }.allSatisfy { $0.split(separator: " ").count == 2 })
    }

    @Test func logFormatsAreStructuredAndEndWithTheJournalHead() async throws {
        let s = try Scenario(kongArguments: ["--token", "tok-obs-4242"], token: "tok-obs-4242")
        try await s.seedDemo()
        let json = try s.sync(["--log-format", "json", "--log-level", "trace"])
        #expect(json.status == 0)
        let lines = try json.stderr.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(lines.contains { $0["msg"] == "directory read" && $0["sync.users"] == .int(6) })
        #expect(lines.contains { $0["msg"] == "plan ready" })
        #expect(lines.contains { $0["msg"] == "writes done" && $0["sync.applied"] == .int(5) })
        let last = try #require(lines.last)
        #expect(last["msg"] == "run finished")
        let head = try #require(last["journal.head"]?.stringValue)
        #expect(try String(contentsOfFile: s.journal + ".head", encoding: .utf8) == head + "\n")
        for secret in ["tok-obs-4242", s.ldap.password, "alice-key-value-1"] {
            #expect(!json.stderr.contains(secret) && !json.stdout.contains(secret))
        }
        let text = try s.sync(["--log-format", "text"])
        #expect(text.stderr.contains(" INFO run finished"))
        let logfmt = try s.sync(["--dry-run"])
        #expect(logfmt.stderr.contains("level=info msg=\"run finished\""))
    }

    /// "Atomic" shown, not assumed: the file is replaced by rename (its inode changes), and a reader
    /// that reads it without pause while runs rewrite it only ever sees a whole file, old or new.
    @Test func metricsAreReplacedByRenameAndReadersSeeWholeFiles() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let path = try addMetrics(s)
        #expect(try s.sync().status == 0)
        let first = try String(contentsOfFile: path, encoding: .utf8)
        func inode() -> UInt64 {
            var info = stat()
            stat(path, &info)
            return UInt64(info.st_ino)
        }
        @Sendable func names(_ text: String) -> Set<Substring> {
            Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        }
        let expectedNames = names(first)
        let before = inode()
        final class Reader: @unchecked Sendable {
            let lock = NSLock()
            var stop = false
            var reads = 0
            var partial: [String] = []
            func finish() -> (Int, [String]) {
                lock.lock()
                defer { lock.unlock() }
                stop = true
                return (reads, partial)
            }
        }
        let reader = Reader()
        let thread = Thread {
            while true {
                reader.lock.lock()
                let done = reader.stop
                reader.lock.unlock()
                if done { break }
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                let text = String(decoding: data, as: UTF8.self)
                let whole = text.hasSuffix("\n") && names(text) == expectedNames
                reader.lock.lock()
                reader.reads += 1
                if !whole { reader.partial.append(text) }
                reader.lock.unlock()
            }
        }
        thread.start()
        for _ in 0..<3 { #expect(try s.sync().status == 0) }
        let (reads, partial) = reader.finish()
        #expect(reads > 0, "the reader never read")
        #expect(partial.isEmpty, "a reader saw a partial file: \(partial.first ?? "")")
        #expect(inode() != before, "the file was rewritten in place, not replaced by rename")
    }

    @Test func logLevelsFilter() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let quiet = try s.sync(["--dry-run", "--log-level", "warning"])
        #expect(quiet.status == 0)
        #expect(!quiet.stderr.contains("level=info") && !quiet.stderr.contains("level=debug"), "\(quiet.stderr)")
        let chatty = try s.sync(["--dry-run", "--log-level", "debug"])
        #expect(chatty.stderr.contains("level=debug msg=\"kong request\""), "\(chatty.stderr)")
        #expect(chatty.stderr.contains("level=info msg=\"run finished\""))
        let normal = try s.sync(["--dry-run"])
        #expect(!normal.stderr.contains("level=debug") && normal.stderr.contains("level=info"))
    }

    @Test func checkConfigConnectReachesEveryServer() async throws {
        let s = try Scenario()
        let good = try runProcess(Repo.binary, ["check-config", "--config", s.config, "--connect"])
        #expect(good.status == 0, "\(good.stdout)")
        #expect(good.stdout.contains("ok    source"), "\(good.stdout)")
        #expect(good.stdout.contains("Kong 3.9.1, database postgres"))
        _ = s.dir.write("bind-password", "wrong\n")
        let bad = try runProcess(Repo.binary, ["check-config", "--config", s.config, "--connect"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("FAIL  source"))
        #expect(!bad.stdout.contains("wrong\n") && !bad.stdout.contains(s.ldap.password))

        let dbless = try Scenario(kongArguments: ["--dbless"])
        let off = try runProcess(Repo.binary, ["check-config", "--config", dbless.config, "--connect"])
        #expect(off.status == 1)
        #expect(off.stdout.contains("DB-less"))
    }

    @Test func versionAndCompletions() throws {
        // The version comes from VERSION (one source of truth); a development build names no commit.
        let version = try String(contentsOfFile: Repo.root + "/VERSION", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let printed = try runProcess(Repo.binary, ["--version"]).stdout
        #expect(printed.hasPrefix("\(version) (commit "), "\(printed)")
        let bash = try runProcess(Repo.binary, ["--generate-completion-script", "bash"])
        #expect(bash.status == 0)
        #expect(bash.stdout.contains("_idp-sync"))
        #expect(try runProcess(Repo.binary, ["--generate-completion-script", "zsh"]).stdout.contains("#compdef idp-sync"))
    }
}
