import Foundation
import SyncCore
import Testing

/// What the README promises, each checked through the binary.
@Suite("README promises")
struct PromiseTests {
    @Test func redirectsAreNeverFollowed() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let elsewhere = try KongServer()
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "GET", "path_regex": "^/$", "status": 302, "headers": {"Location": "\#(elsewhere.url)/"}}]}"#)
        let r = try s.sync(["--dry-run", "--output", "json"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("answered 302"), "\(r.stdout)")
        #expect(try await elsewhere.stats()["total"] == .int(0), "the redirect was followed")
    }

    @Test func journalWithConfigReadsOnlyTheJournalPath() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        #expect(try s.sync().status == 0)
        // The same config, but its secrets are out of reach: a missing file and an unset variable.
        var text = try String(contentsOfFile: s.config, encoding: .utf8)
        text = text.replacingOccurrences(of: s.dir.path + "/bind-password", with: "/nonexistent/bind-password")
        text = text.replacingOccurrences(of: "    select_tags:", with: "    token: ${IDP_SYNC_TEST_UNSET_TOKEN}\n    select_tags:")
        let config = s.dir.write("reader.yaml", text)
        let check = try s.run(["check-config", "--config", config])
        #expect(check.status == 1)
        #expect(check.stderr.contains("IDP_SYNC_TEST_UNSET_TOKEN") && check.stderr.contains("/nonexistent/bind-password"))
        let journal = try s.run(["journal", "--config", config, "--output", "jsonl"])
        #expect(journal.status == 0, "\(journal.stderr)")
        #expect(journal.stdout.split(separator: "\n").count == s.journalLines().count)
        let verify = try s.run(["journal", "verify", "--config", config])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    @Test func verifyAnchorsThroughTheCommandLine() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 0)
        // The anchor as an operator gets it: from the run's last log line.
        let last = try #require(r.stderr.split(separator: "\n").last)
        let anchor = try #require(last.split(separator: " ").first { $0.hasPrefix("journal.head=") }?.dropFirst("journal.head=".count))
        let good = try s.run(["journal", "verify", "--journal", s.journal, "--anchor", String(anchor)])
        #expect(good.status == 0, "\(good.stdout)")
        let seq = anchor.split(separator: ":")[0]
        let wrong = try s.run(["journal", "verify", "--journal", s.journal, "--anchor", "\(seq):" + String(repeating: "a", count: 64)])
        #expect(wrong.status == 1)
        #expect(wrong.stdout.contains("differs from the anchor"), "\(wrong.stdout)")
        let beyond = try s.run(["journal", "verify", "--journal", s.journal, "--anchor", "999:" + String(repeating: "a", count: 64)])
        #expect(beyond.status == 1 && beyond.stdout.contains("records were cut"))
        #expect(try s.run(["journal", "verify", "--journal", s.journal, "--anchor", "nonsense"]).status == 64)
    }

    @Test func httpsProxyAppliesToTheDirectoryToo() async throws {
        let certs = try TestCertificates()
        let scim = try PortFileServer(
            script: "scim/scim_fake_server.py", ["--mode", "honest", "--users", "7", "--tls-cert", certs.cert, "--tls-key", certs.key])
        let kong = try KongServer()
        let dir = TempDir()
        _ = dir.write("token", "scim-token\n")
        let config = dir.write(
            "config.yaml",
            """
            version: 1
            source:
              type: scim
              url: https://127.0.0.1:\(scim.port)
              token_file: \(dir.path)/token
              ca_file: \(certs.ca)
              retries: 0
            gateways:
              - name: g
                admin_url: \(kong.url)
                select_tags: [idp-managed]
            journal:
              path: \(dir.path)/journal.jsonl
            """)
        let proxied = try runProcess(
            Repo.binary, ["sync", "--config", config, "--dry-run", "--output", "json"],
            environment: ["HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""])
        #expect(proxied.status == 4, "\(proxied.stdout)")
        #expect(proxied.stdout.contains("127.0.0.1 port 9"), "\(proxied.stdout)")
        let bypassed = try runProcess(
            Repo.binary, ["sync", "--config", config, "--dry-run"],
            environment: ["HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"])
        #expect(bypassed.status == 0, "\(bypassed.stdout)\(bypassed.stderr)")
    }

    @Test func explainOfAKeyThatStillWorksPagesTheKeysAndNamesNoCauseOfOurs() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        #expect(try s.sync().status == 0)
        try await s.kong.resetStats()
        let r = try s.run(["explain", "--config", s.config, "--key", "-", "--output", "json"], stdin: "alice-key-value-1\n")
        #expect(r.status == 0, "\(r.stderr)")
        let answer = try JSONParser.parse(r.stdout)
        #expect(answer["cause"] == "not-caused-by-idp-sync", "\(answer.canonical)")
        #expect(r.stdout.contains("alice"))
        #expect(!r.stdout.contains("alice-key-value-1") && !r.stderr.contains("alice-key-value-1"))
        #expect(try await s.requests("GET /key-auths") >= 1, "the key was not looked up in /key-auths")
    }

    @Test func explainOfAConsumerThatExistsNowhereExitsOne() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let r = try s.run(["explain", "--config", s.config, "--consumer", "nobody-by-that-name"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("no consumer with that id, username or custom_id"), "\(r.stdout)")
        #expect(try s.run(["explain", "--config", s.config, "--consumer", "alice"]).status == 0)
    }
}
