import Foundation
import SyncCore
import Testing

/// slapd + the Kong test server + a config, driven through the built `idp-sync` binary.
final class Scenario: @unchecked Sendable {
    let ldap: SlapdServer
    let kong: KongServer
    let dir = TempDir()
    let journal: String
    var config: String { dir.path + "/config.yaml" }
    var consumers: [String: String] = [:]  // username → Kong id

    init(
        users: Int = 0, policy: [String: String] = [:], kongArguments: [String] = [], token: String? = nil,
        source: [String: String] = [:], ldap: SlapdServer? = nil, concurrency: Int = 8,
        certs: TestCertificates? = nil, mtls: Bool = false, gateway: [String: String] = [:], journal: String? = nil,
        extraConfig: String = ""
    ) throws {
        self.journal = journal ?? dir.path + "/journal.jsonl"
        self.ldap = try ldap ?? SlapdServer(users: users)
        kong = try KongServer(arguments: kongArguments, certs: certs, mtls: mtls)
        _ = dir.write("bind-password", self.ldap.password + "\n")
        var tokenLine = token.map { "    token_file: \(dir.write("kong-token", $0))\n" } ?? ""
        if let certs {
            tokenLine += "    ca_file: \(certs.ca)\n"
            if mtls { tokenLine += "    client_cert: \(certs.clientCert)\n    client_key: \(certs.clientKey)\n" }
        }
        var sourceKeys: [(String, String)] = [
            ("type", "ldap"), ("url", self.ldap.url), ("bind_dn", self.ldap.bindDN),
            ("bind_password_file", "\(dir.path)/bind-password"), ("base_dn", self.ldap.baseDN), ("page_size", "20"),
            ("disabled_filter", "(employeeType=left)"), ("timeout", "5s"),
        ]
        for (key, value) in source.sorted(by: { $0.key < $1.key }) {
            if let i = sourceKeys.firstIndex(where: { $0.0 == key }) {
                sourceKeys[i].1 = value
            } else {
                sourceKeys.append((key, value))
            }
        }
        let sourceText = sourceKeys.map { "  \($0.0): \($0.1)" }.joined(separator: "\n")
        let policyDefaults = [
            "grace_period": "24h", "max_disable": "10", "max_disable_percent": "50", "protected": "[svc-*]",
        ]
        var gatewayKeys: [(String, String)] = [
            ("match", "{ consumer: custom_id, user: id }"), ("concurrency", String(concurrency)),
        ]
        for (key, value) in gateway.sorted(by: { $0.key < $1.key }) {
            if let i = gatewayKeys.firstIndex(where: { $0.0 == key }) {
                gatewayKeys[i].1 = value
            } else {
                gatewayKeys.append((key, value))
            }
        }
        let gatewayText = gatewayKeys.map { "    \($0.0): \($0.1)" }.joined(separator: "\n")
        let policyText = policyDefaults.merging(policy) { _, new in new }.sorted { $0.key < $1.key }
            .map { "  \($0.key): \($0.value)" }.joined(separator: "\n")
        _ = dir.write(
            "config.yaml",
            """
            version: 1
            source:
            \(sourceText)
            gateways:
              - name: demo
                type: kong
                admin_url: \(kong.url)
            \(tokenLine)    select_tags: [idp-managed]
            \(gatewayText)
            policy:
            \(policyText)
            journal:
              path: \(self.journal)
            \(extraConfig)
            """)
    }

    /// alice (linked), carol (locked), dave (left), frank (missing), svc-ci (protected), one unmanaged.
    func seedDemo() async throws {
        let seeded = try await kong.seed([
            "consumers": [
                ["username": "alice", "custom_id": .string(DemoUsers.alice), "tags": ["idp-managed", "team:a"],
                 "keys": [["key": "alice-key-value-1"]]],
                ["username": "carol", "custom_id": .string(DemoUsers.carol), "tags": ["idp-managed"],
                 "keys": [["key": "carol-key-value-1"], ["key": "carol-key-value-2"]]],
                ["username": "dave", "custom_id": .string(DemoUsers.dave), "tags": ["idp-managed"]],
                ["username": "frank", "custom_id": "11111111-2222-3333-4444-555555555555",
                 "tags": ["idp-managed", "owner:ops"], "keys": [["key": "frank-key-value-1"]]],
                ["username": "svc-ci", "custom_id": "ffffffff-2222-3333-4444-555555555555", "tags": ["idp-managed"]],
                ["username": "outsider", "custom_id": "eeeeeeee-2222-3333-4444-555555555555", "tags": ["other"]],
            ]
        ])
        for consumer in seeded["consumers"]?.arrayValue ?? [] {
            consumers[consumer["username"]!.stringValue!] = consumer["id"]!.stringValue!
        }
    }

    func sync(_ extra: [String] = []) throws -> ProcessResult {
        try runProcess(Repo.binary, ["sync", "--config", config] + extra)
    }

    func consumer(_ username: String) async throws -> JSONValue {
        try await kong.kong("GET", "/consumers/\(consumers[username]!)").1
    }

    func plugins(_ username: String) async throws -> [JSONValue] {
        try await kong.kong("GET", "/consumers/\(consumers[username]!)/plugins").1["data"]?.arrayValue ?? []
    }

    func writes() async throws -> Int64 { try await kong.stats()["writes"]?.intValue ?? -1 }
}

@Suite("End to end: idp-sync against slapd and the Kong test server")
struct EndToEndTests {
    @Test func dryRunWritesNothing() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let before = try await s.kong.state()
        try await s.kong.resetStats()
        let result = try s.sync(["--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("dry run"))
        let rows = result.stdout.split(separator: "\n")
        #expect(rows.contains { $0.hasPrefix("  ~ flag") && $0.contains(" frank ") }, "\(result.stdout)")
        #expect(rows.contains { $0.hasPrefix("  - disable") && $0.contains(" carol ") })
        #expect(rows.contains { $0.hasPrefix("  ! report") && $0.contains(" svc-ci ") && $0.contains("protected") })
        #expect(try await s.kong.state() == before)
        #expect(try await s.writes() == 0)
        #expect(!FileManager.default.fileExists(atPath: s.journal))
        #expect(!FileManager.default.fileExists(atPath: s.journal + ".lock"))
        #expect(try s.sync(["--dry-run", "--detailed-exitcode"]).status == 2)
    }

    @Test func theWholeLifecycle() async throws {
        let s = try Scenario()
        try await s.seedDemo()

        // 1. First run: frank is flagged, carol and dave (deactivated, grace 0) are disabled.
        let first = try s.sync(["--output", "json"])
        #expect(first.status == 0, "\(first.stderr)")
        let report = try JSONParser.parse(first.stdout)
        #expect(report["counts"]?["flag"] == .int(3))
        #expect(report["counts"]?["disable"] == .int(2))
        #expect(report["counts"]?["protected"] == .int(1))
        #expect(report["source"]?["users"] == .int(6))
        #expect(report["format_version"] == "1")
        let runStarted = try s.records().first { $0["event"] == "run-started" }
        #expect(runStarted?["journal_format"] == .int(1))
        let frank = try await s.consumer("frank")
        let frankTags = frank["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(frankTags.contains("owner:ops") && frankTags.contains(Marks.orphaned))
        #expect(frankTags.contains(Marks.reasonPrefix + "missing"))
        #expect(try await s.plugins("frank").isEmpty)
        let carolPlugins = try await s.plugins("carol")
        #expect(carolPlugins.count == 1)
        #expect(carolPlugins.first?["config"]?["status_code"] == .int(403))
        #expect(try await s.consumer("carol")["tags"]?.arrayValue?.contains(.string(Marks.disabled)) == true)
        #expect(try await s.consumer("svc-ci")["tags"] == ["idp-managed"])

        // 2. Nothing changed: a second run writes nothing.
        try await s.kong.resetStats()
        #expect(try s.sync().status == 0)
        #expect(try await s.writes() == 0)

        // 3. Frank's grace clock expires: the next run disables him.
        let old = Environment.unix() - 2 * 86_400
        var expired = frankTags.filter { !$0.hasPrefix(Marks.missingSincePrefix) }
        expired.append(Marks.missingSincePrefix + String(old))
        let (patched, _) = try await s.kong.kong("PATCH", "/consumers/\(s.consumers["frank"]!)", ["tags": JSONValue(expired)])
        #expect(patched == 200)
        let third = try s.sync()
        #expect(third.status == 0, "\(third.stderr)")
        #expect(third.stdout.contains("disable    frank"))
        #expect(try await s.plugins("frank").count == 1)

        // 4. Carol comes back (her administrative lock is lifted): she is restored.
        let unlock = try runProcess(
            "/usr/bin/ldapmodify",
            ["-x", "-H", s.ldap.url, "-D", "cn=admin,dc=example,dc=org", "-w", "admin-secret"],
            stdin: "dn: uid=carol,ou=people,dc=example,dc=org\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
        #expect(unlock.status == 0, "\(unlock.stderr)")
        let fourth = try s.sync()
        #expect(fourth.stdout.contains("restore    carol"))
        #expect(try await s.plugins("carol").isEmpty)
        #expect(try await s.consumer("carol")["tags"] == ["idp-managed"])

        // 5. The journal tells the story and verifies; one edited byte breaks it.
        let verify = try runProcess(Repo.binary, ["journal", "verify", "--journal", s.journal])
        #expect(verify.status == 0, "\(verify.stdout)")
        let text = try String(contentsOfFile: s.journal, encoding: .utf8)
        let records = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(records.filter { $0["event"] == "run-started" }.count == 4)
        #expect(records.filter { $0["event"] == "intent" }.count == records.filter { $0["event"] == "outcome" }.count)
        let restore = records.first { $0["event"] == "intent" && $0["action"] == "restore" }
        #expect(restore?["keys"]?.arrayValue?.count == 2)
        #expect(restore?["keys"]?.arrayValue?.first?["fingerprint"]?.stringValue?.hasPrefix("sha256:") == true)
        for secret in ["alice-key-value-1", "carol-key-value-1", "frank-key-value-1", s.ldap.password] {
            #expect(!text.contains(secret))
        }
        let edited = text.replacingOccurrences(of: "\"action\":\"restore\"", with: "\"action\":\"restorf\"")
        try edited.write(toFile: s.journal, atomically: false, encoding: .utf8)
        let tampered = try runProcess(Repo.binary, ["journal", "verify", "--journal", s.journal])
        #expect(tampered.status == 1)
        #expect(tampered.stdout.contains("TAMPERED"))
    }

    @Test func aQuietRunStaysWithinTheRequestBudget() async throws {
        let s = try Scenario(users: 2500)
        try await s.kong.control("POST", "/__test/generate", #"{"count": 2500, "tags": ["idp-managed"], "keys_per_consumer": 2}"#)
        try await s.kong.resetStats()
        let result = try s.sync()
        #expect(result.status == 0, "\(result.stderr)")
        let stats = try await s.kong.stats()
        // GET /, 3 pages of consumers, 1 page of our plugins: no request per consumer.
        #expect(stats["total"] == .int(5))
        #expect(stats["writes"] == .int(0))
    }

    @Test func secretsNeverReachAnyOutput() async throws {
        let s = try Scenario(kongArguments: ["--token", "kong-admin-token-777"], token: "kong-admin-token-777")
        try await s.seedDemo()
        for args in [["--dry-run", "--log-level", "trace"], ["--log-level", "trace", "--output", "json"]] {
            let r = try s.sync(args)
            #expect(r.status == 0, "\(r.stderr)")
            for secret in ["kong-admin-token-777", s.ldap.password, "alice-key-value-1", "carol-key-value-2"] {
                #expect(!r.stdout.contains(secret) && !r.stderr.contains(secret), "\(secret) leaked")
            }
        }
        let journal = try String(contentsOfFile: s.journal, encoding: .utf8)
        #expect(!journal.contains("kong-admin-token-777") && !journal.contains(s.ldap.password))
    }

    /// `--detailed-exitcode` on real runs: 2 with changes made, 0 when quiet, 3 when a brake refuses
    /// (the brake wins over "changes", docs/operations.md's order).
    @Test func detailedExitCodesOfRealRuns() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let changes = try s.sync(["--detailed-exitcode"])
        #expect(changes.status == 2, "\(changes.stderr)")
        #expect(try await s.plugins("carol").count == 1)
        let quiet = try s.sync(["--detailed-exitcode"])
        #expect(quiet.status == 0, "\(quiet.stderr)")

        let braked = try Scenario(policy: ["max_disable": "1"])
        try await braked.seedDemo()
        let refused = try braked.sync(["--detailed-exitcode"])
        #expect(refused.status == 3, "\(refused.stderr)")
        #expect(try await braked.writes() == 0)
    }

    @Test func configProblemsGetAJSONReportAndExit1() async throws {
        let dir = TempDir()
        let config = dir.write("bad.yaml", "version: 1\nsource: {type: ldap}\ngateways: []\n")
        let r = try runProcess(Repo.binary, ["sync", "--config", config, "--output", "json"])
        #expect(r.status == 1)
        let report = try JSONParser.parse(r.stdout)
        #expect(report["exit_code"] == .int(1))
        #expect(report["errors"]?.arrayValue?.first?.stringValue?.contains("source.url") == true)
    }
}

enum Environment {
    static func unix() -> Int64 { Int64(Date().timeIntervalSince1970) }
}
