import Foundation
import SyncCore
import Testing

/// All of Kong: every credential type, Enterprise workspaces and RBAC, Konnect, living beside decK.
/// The built binary against the Kong test server and slapd.
@Suite("Kong breadth: credentials, workspaces, RBAC, Konnect, decK")
struct KongBreadthTests {
    /// Secrets seeded on frank's consumer: none may appear in the journal, the report or the logs.
    static let secrets = [
        "frank-key-value-1", "frank-basic-password", "frank-hmac-secret-0123456789", "frank-jwt-secret-0123456789",
        "frank-oauth-secret-0123456789",
    ]

    /// frank (missing from the directory) holding all five credential types and an acl group, alice linked.
    static func frankWithEverything(_ tags: [String] = ["idp-managed"]) -> JSONValue {
        [
            "consumers": [
                ["username": "alice", "custom_id": .string(DemoUsers.alice), "tags": JSONValue(tags)],
                ["username": "frank", "custom_id": "11111111-2222-3333-4444-555555555555", "tags": JSONValue(tags),
                 "keys": [["key": .string(secrets[0])]],
                 "credentials": [
                    "basic-auth": [["username": "frank-basic", "password": .string(secrets[1])]],
                    "hmac-auth": [["username": "frank-hmac", "secret": .string(secrets[2])]],
                    "jwt": [["key": "frank-jwt-issuer", "secret": .string(secrets[3])]],
                    "oauth2": [["name": "frank-app", "client_id": "frank-client-id", "client_secret": .string(secrets[4]),
                                "redirect_uris": ["https://app.example.org/cb"]]],
                    "acls": [["group": "payments"]],
                 ]],
            ]
        ]
    }

    func journalRecords(_ s: Scenario) throws -> [JSONValue] {
        try String(contentsOfFile: s.journal, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    /// The config's gateways replaced by `entries` (YAML list items, each indented by four).
    func gateways(_ s: Scenario, _ entries: [String]) throws {
        let text = try String(contentsOfFile: s.config, encoding: .utf8)
        let start = try #require(text.range(of: "gateways:\n")), end = try #require(text.range(of: "policy:\n"))
        let replaced = text[..<start.upperBound] + entries.joined() + text[end.lowerBound...]
        try String(replaced).write(toFile: s.config, atomically: true, encoding: .utf8)
    }

    @Test func aMissingUsersConsumerHoldingEveryCredentialTypeIsJournaledWithoutSecrets() async throws {
        let s = try Scenario(policy: ["grace_period": "0s"])
        _ = try await s.kong.seed(Self.frankWithEverything())
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let records = try journalRecords(s)
        let disable = try #require(records.first { $0["event"] == "intent" && $0["action"] == "disable" })
        let credentials = disable["credentials"]?.arrayValue ?? []
        #expect(Set(credentials.compactMap { $0["type"]?.stringValue }) == ["key-auth", "basic-auth", "hmac-auth", "jwt", "oauth2"])
        let identities = Set(credentials.compactMap { $0["identity"]?.stringValue })
        #expect(identities.contains("username=frank-basic") && identities.contains("username=frank-hmac"))
        #expect(identities.contains("key=frank-jwt-issuer") && identities.contains("client_id=frank-client-id"))
        #expect(identities.contains(KeyFingerprintForTests.of(Self.secrets[0])))
        // `keys` keeps its meaning (key-auth only) for older readers.
        #expect(disable["keys"]?.arrayValue?.count == 1)
        // The report lists them too; no secret anywhere.
        let report = try JSONParser.parse(r.stdout)
        let action = try #require(report["actions"]?.arrayValue?.first { $0["action"] == "disable" })
        #expect(action["credentials"]?.arrayValue?.count == 5)
        let journal = try String(contentsOfFile: s.journal, encoding: .utf8)
        for secret in Self.secrets {
            #expect(!journal.contains(secret) && !r.stdout.contains(secret) && !r.stderr.contains(secret), "\(secret) leaked")
        }
        // explain shows every credential and the restrictions (the acl group).
        let explain = try runProcess(Repo.binary, ["explain", "--config", s.config, "--consumer", "frank"])
        #expect(explain.stdout.contains("jwt key=frank-jwt-issuer"), "\(explain.stdout)")
        #expect(explain.stdout.contains("restriction: acl groups: payments"), "\(explain.stdout)")
        for secret in Self.secrets { #expect(!explain.stdout.contains(secret)) }
    }

    @Test func deleteCredentialsRemovesExactlyTheNamedTypes() async throws {
        let s = try Scenario(
            policy: ["grace_period": "0s", "on_missing": "delete-keys", "delete_credentials": "[jwt, basic-auth]"])
        _ = try await s.kong.seed(Self.frankWithEverything())
        let dry = try s.sync(["--dry-run", "--output", "json"])
        let planned = (try JSONParser.parse(dry.stdout)["actions"]?.arrayValue ?? []).filter { $0["action"] == "delete-credential" }
        #expect(Set(planned.compactMap { $0["credentials"]?.arrayValue?.first?["type"]?.stringValue }) == ["jwt", "basic-auth"], "\(dry.stdout)")
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let state = try JSONParser.parse(try await s.kong.state())
        func count(_ table: String) -> Int { state[table]?.arrayValue.map { $0.count } ?? -1 }
        #expect(count("jwt_secrets") == 0 && count("basicauth_credentials") == 0, "\(state)")
        #expect(count("hmacauth_credentials") == 1 && count("oauth2_credentials") == 1)
        #expect(count("keyauth_credentials") == 1, "key-auth is not in delete_credentials")
        // Each deletion was journaled as an intent before its outcome.
        let records = try journalRecords(s)
        let intents = records.filter { $0["event"] == "intent" && $0["action"] == "delete-credential" }
        let outcomes = records.filter { $0["event"] == "outcome" && $0["action"] == "delete-credential" && $0["outcome"] == "applied" }
        #expect(intents.count == 2 && outcomes.count == 2)
        for outcome in outcomes {
            let intent = try #require(records.first { $0["seq"] == outcome["intent"] })
            #expect(intent["credentials"] == outcome["credentials"])
        }
    }

    @Test func twoWorkspacesOfOneKongInOneRun() async throws {
        let s = try Scenario(kongArguments: ["--workspaces", "ws1,ws2"])
        for ws in ["ws1", "ws2"] {
            _ = try await s.kong.control("POST", "/__test/seed?workspace=\(ws)", Self.frankWithEverything().canonical)
        }
        try gateways(s, ["ws1", "ws2"].map { ws in
            """
              - name: kong-\(ws)
                type: kong
                admin_url: \(s.kong.url)
                workspace: \(ws)
                select_tags: [idp-managed]

            """
        })
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let report = try JSONParser.parse(r.stdout)
        let flagged = (report["actions"]?.arrayValue ?? []).filter { $0["action"] == "flag" }.compactMap { $0["gateway"]?.stringValue }
        #expect(Set(flagged) == ["kong-ws1", "kong-ws2"], "\(r.stdout)")
        let stats = try await s.kong.stats()
        #expect((stats["by_route"]?["PATCH /{workspace}/consumers/{consumer}"]?.intValue ?? 0) == 2, "\(stats)")
        #expect(stats["by_route"]?["PATCH /consumers/{consumer}"] == nil, "a write went to the default workspace")
    }

    func rbac(_ s: Scenario, _ rules: JSONValue) async throws {
        let body: JSONValue = ["tokens": ["tok-sync-role": rules]]
        _ = try await s.kong.control("POST", "/__test/rbac", body.canonical)
    }

    @Test func anRBACDenialOnReadWritesNothing() async throws {
        let s = try Scenario(token: "tok-sync-role")
        try await s.seedDemo()
        try await rbac(s, ["*": ["/": ["read"], "/consumers/*": ["*"], "/plugins": ["read"]]])  // no read on /consumers
        let r = try s.sync()
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("Kong RBAC denied GET /consumers in workspace default: the token lacks the 'read' permission"), "\(r.stdout)")
        #expect(try await s.writes() == 0)
        #expect(!r.stdout.contains("tok-sync-role") && !r.stderr.contains("tok-sync-role"))
    }

    @Test func anRBACDenialOnOneWriteIsAJournaledFailure() async throws {
        let s = try Scenario(token: "tok-sync-role")
        try await s.seedDemo()
        // Everything but creating plugins: flags work, the disables' blocks are denied.
        try await rbac(
            s, ["*": ["/": ["read"], "/consumers": ["read"], "/consumers/*": ["read", "update", "delete"], "/plugins": ["read"]]])
        let r = try s.sync()
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        let failed = try journalRecords(s).filter { $0["event"] == "outcome" && $0["outcome"] == "failed" }
        #expect(!failed.isEmpty)
        #expect(failed.allSatisfy { $0["action"] == "disable" && ($0["error"]?.stringValue ?? "").contains("lacks the 'create' permission") }, "\(failed)")
        let applied = try journalRecords(s).filter { $0["event"] == "outcome" && $0["outcome"] == "applied" }
        #expect(applied.contains { $0["action"] == "flag" })
    }

    @Test func aKonnectControlPlaneWithABearerToken() async throws {
        let plane = "3f6f0ad8-0f5e-4c1a-9c5e-0a2a1b6f7a10"
        let s = try Scenario(kongArguments: ["--konnect", plane, "--konnect-token", "kpat_test_0123456789"])
        try await s.seedDemo()
        let token = s.dir.write("konnect-token", "kpat_test_0123456789\n")
        try gateways(s, [
            """
              - name: konnect
                type: konnect
                control_plane_id: \(plane)
                api_url: \(s.kong.url)
                token_file: \(token)
                select_tags: [idp-managed]
                match: { consumer: custom_id, user: id }

            """
        ])
        let check = try runProcess(Repo.binary, ["check-config", "--config", s.config, "--connect"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("Konnect control plane"), "\(check.stdout)")
        try await s.kong.resetStats()
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // Through Konnect's shape only, with PUT for the tags (Konnect has no PATCH)...
        let routes = try await s.kong.stats()["by_route"]?.objectValue ?? [:]
        #expect(routes.keys.allSatisfy { $0.contains("/v2/control-planes/") }, "\(routes.keys.sorted())")
        #expect(routes.keys.contains { $0.hasPrefix("PUT ") } && !routes.keys.contains { $0.hasPrefix("PATCH ") })
        // ...the same outcome as on the Admin API: frank flagged, carol and dave disabled.
        #expect(try await s.consumer("frank")["tags"]?.arrayValue?.contains(.string(Marks.orphaned)) == true)
        #expect(try await s.plugins("carol").count == 1)
        // A refused token is a gateway error before any write.
        _ = s.dir.write("konnect-token", "kpat_wrong\n")
        let refused = try s.sync()
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("the configured token was refused"), "\(refused.stdout)")
    }

    /// decK strips tags it does not know by PUTting the consumer as its state file has it; our
    /// plugin (outside decK's select_tags) stays, and the next run puts our tags back.
    @Test func tagsStrippedTheWayDecKDoesComeBack() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        #expect(try s.sync().status == 0)
        let carol = try await s.consumer("carol")
        #expect(carol["tags"]?.arrayValue?.contains(.string(Marks.disabled)) == true)
        // `deck gateway sync`: PUT /consumers/{id} with the fields decK manages.
        let (status, _) = try await s.kong.kong(
            "PUT", "/consumers/\(s.consumers["carol"]!)",
            ["username": "carol", "custom_id": .string(DemoUsers.carol), "tags": ["idp-managed"]])
        #expect(status == 200)
        #expect(try s.sync().status == 0)
        let back = try await s.consumer("carol")["tags"]?.arrayValue ?? []
        #expect(back.contains(.string(Marks.disabled)) && back.contains(.string(Marks.orphaned)), "\(back)")
        #expect(try await s.plugins("carol").count == 1)
    }

    /// Tags and plugin both gone while the user is still gone: the journal shows we disabled it,
    /// so it is disabled again at once instead of getting a fresh grace period.
    @Test func aConsumerStrippedOfTagsAndBlockIsDisabledAgainAtOnce() async throws {
        let s = try Scenario(policy: ["grace_period": "24h", "disabled_grace_period": "1h"])
        try await s.seedDemo()
        // carol is deactivated and flagged long ago: the first run disables her.
        var tags = try await s.consumer("carol")["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        tags += [Marks.orphaned, Marks.missingSincePrefix + "1000", Marks.reasonPrefix + "deactivated"]
        _ = try await s.kong.kong("PATCH", "/consumers/\(s.consumers["carol"]!)", ["tags": JSONValue(tags)])
        #expect(try s.sync().status == 0)
        #expect(try await s.plugins("carol").count == 1)
        // Someone removes everything of ours.
        let plugin = try #require(try await s.plugins("carol").first?["id"]?.stringValue)
        _ = try await s.kong.kong("DELETE", "/consumers/\(s.consumers["carol"]!)/plugins/\(plugin)")
        _ = try await s.kong.kong("PATCH", "/consumers/\(s.consumers["carol"]!)", ["tags": ["idp-managed"]])
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let disable = try #require(try JSONParser.parse(r.stdout)["actions"]?.arrayValue?.first { $0["action"] == "disable" }, "\(r.stdout)")
        #expect((disable["reason"]?.stringValue ?? "").contains("the journal shows idp-sync disabled it"), "\(disable)")
        #expect(try await s.plugins("carol").count == 1)
    }
}

extension KongBreadthTests {
    /// A key the journal saw with a ttl, gone once the ttl ran out: `explain --key` says it expired
    /// instead of "another environment". The journal's expiry is real time, so the test waits for
    /// it (the ttl leaves room for a slow, loaded run between the seed and the read).
    @Test func explainTellsAnExpiredKeyFromAnUnknownOne() async throws {
        let s = try Scenario(policy: ["grace_period": "0s"])
        let seeded = try await s.kong.seed([
            "consumers": [
                ["username": "alice", "custom_id": .string(DemoUsers.alice), "tags": ["idp-managed"]],
                ["username": "frank", "custom_id": "11111111-2222-3333-4444-555555555555", "tags": ["idp-managed"],
                 "keys": [["key": "frank-short-lived-key", "ttl": 45]]],
            ]
        ])
        // The seed's answer may come back late on a loaded machine: the server's clock is set back to
        // when the key was made, so the run reads it with most of its ttl left.
        let created = try #require(
            seeded["consumers"]?.arrayValue?.compactMap { $0["keys"]?.arrayValue?.first?["created_at"]?.intValue }.first)
        _ = try await s.kong.control("POST", "/__test/clock", #"{"now": \#(created + 1)}"#)
        #expect(try s.sync().status == 0)
        let disable = try #require(try journalRecords(s).first { $0["event"] == "intent" && $0["action"] == "disable" })
        let expiry = try #require(
            disable["keys"]?.arrayValue?.first?["expires_at"]?.stringValue.flatMap(TimeFormat.parseRFC3339), "\(disable)")
        // Kong's clock moves past the ttl at once; ours is waited for (the journal's expiry is real time).
        _ = try await s.kong.control("POST", "/__test/clock", #"{"advance": 3600}"#)
        while Int64(Date().timeIntervalSince1970) <= expiry { try await Task.sleep(nanoseconds: 250_000_000) }
        let expired = try runProcess(Repo.binary, ["explain", "--config", s.config, "--key", "-", "--output", "json"], stdin: "frank-short-lived-key\n")
        #expect(try JSONParser.parse(expired.stdout)["cause"] == "key-expired", "\(expired.stdout)")
        let unknown = try runProcess(Repo.binary, ["explain", "--config", s.config, "--key", "-", "--output", "json"], stdin: "never-issued-key\n")
        #expect(try JSONParser.parse(unknown.stdout)["cause"] == "key-from-another-environment", "\(unknown.stdout)")
    }
}

/// The fingerprint the product writes (`sha256:` + 16 hex digits of SHA-256), computed independently.
enum KeyFingerprintForTests {
    static func of(_ key: String) -> String {
        let out = try! runProcess("/usr/bin/sha256sum", [], stdin: key)
        return "sha256:" + out.stdout.prefix(16)
    }
}
