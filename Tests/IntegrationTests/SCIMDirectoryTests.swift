import Logging
import SCIMDirectory
import SyncCore
import SyncEngine
import Testing

@Suite("SCIM source against scim2-server (PyPI) and a lying fake")
struct SCIMDirectoryTests {
    func source(_ url: String, token: String? = nil, idAttribute: String = "id", pageSize: Int = 100) -> SCIMDirectorySource {
        SCIMDirectorySource(
            settings: SCIMSettings(
                url: url, auth: token.map { .bearer($0) } ?? .none, pageSize: pageSize, idAttribute: idAttribute,
                timeoutSeconds: 5),
            logger: Logger(label: "test"))
    }

    @Test func readsEveryPageOfARealServer() async throws {
        let server = try PortFileServer(
            script: "scim/scim2_fixture.py", ["--users", "250", "--inactive-every", "10", "--token", "scim-tok-1"])
        let snapshot = try await source(server.url, token: "scim-tok-1", idAttribute: "externalId").snapshot()
        #expect(snapshot.users.count == 250)
        #expect(snapshot.users.filter { $0.state == .deactivated }.count == 25)
        #expect(snapshot.users.first { $0.username == "user000001" }?.id.rawValue == DemoUsers.user000001)
        let byID = try await source(server.url, token: "scim-tok-1").snapshot()
        #expect(Set(byID.users.map(\.id)).count == 250)
        do {
            _ = try await source(server.url, token: "wrong-scim-token").snapshot()
            Issue.record("a wrong token was accepted")
        } catch let error as SourceError {
            #expect(error.description.contains("401"))
            #expect(!error.description.contains("wrong-scim-token"))
        }
    }

    @Test(arguments: ["honest", "short-pages", "total-changes-once"])
    func honestServersAreReadWhole(_ mode: String) async throws {
        let server = try PortFileServer(script: "scim/scim_fake_server.py", ["--mode", mode, "--users", "10"])
        let snapshot = try await source(server.url, pageSize: 4).snapshot()
        #expect(snapshot.users.count == 10)
        #expect(snapshot.users.filter { $0.state == .deactivated }.count == 2)
    }

    @Test(arguments: [
        ("wrong-total", "empty after 10 of 15 users"), ("empty-page", "empty"), ("duplicate-ids", "twice"),
        ("invalid-json", "not valid JSON"), ("error-page2", "500"), ("items-mismatch", "itemsPerPage"),
        ("total-changes", "changed during the listing twice"), ("unauthorized", "401"),
    ])
    func lyingServersAreRefused(_ mode: String, _ detail: String) async throws {
        let server = try PortFileServer(script: "scim/scim_fake_server.py", ["--mode", mode, "--users", "10"])
        do {
            let snapshot = try await source(server.url, pageSize: 4).snapshot()
            Issue.record("\(mode): accepted \(snapshot.users.count) users")
        } catch let error as SourceError {
            #expect(error.description.contains(detail), "\(error)")
        }
    }
}

@Suite("End to end over SCIM")
struct SCIMEndToEndTests {
    func config(_ dir: TempDir, scim: String, kong: String, extra: String = "") -> String {
        _ = dir.write("token", "scim-e2e-token\n")
        return dir.write(
            "config.yaml",
            """
            version: 1
            source:
              type: scim
              url: \(scim)
              token_file: \(dir.path)/token
              page_size: 50
              id_attribute: externalId
            \(extra)
            gateways:
              - name: demo
                admin_url: \(kong)
                select_tags: [idp-managed]
            policy:
              max_disable: 100
              max_disable_percent: 100
            journal:
              path: \(dir.path)/journal.jsonl
            """)
    }

    @Test func aFullSyncFromScim2Server() async throws {
        let scim = try PortFileServer(
            script: "scim/scim2_fixture.py", ["--users", "120", "--inactive-every", "10", "--token", "scim-e2e-token"])
        let kong = try KongServer()
        try await kong.control("POST", "/__test/generate", #"{"count": 125, "tags": ["idp-managed"], "keys_per_consumer": 1}"#)
        let dir = TempDir()
        let path = config(dir, scim: scim.url, kong: kong.url)
        let dry = try runProcess(Repo.binary, ["sync", "--config", path, "--dry-run", "--output", "json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try JSONParser.parse(dry.stdout)
        #expect(plan["source"]?["type"] == "scim")
        #expect(plan["source"]?["users"] == .int(120))
        #expect(plan["counts"]?["deactivated"] == .int(12))
        #expect(plan["counts"]?["missing"] == .int(5))
        #expect(try await kong.stats()["writes"] == .int(0))
        let real = try runProcess(Repo.binary, ["sync", "--config", path])
        #expect(real.status == 0, "\(real.stderr)")
        #expect(try await kong.stats()["by_route"]?["POST /consumers/{consumer}/plugins"] == .int(12))
        #expect(!real.stderr.contains("scim-e2e-token") && !real.stdout.contains("scim-e2e-token"))
        try await kong.resetStats()
        #expect(try runProcess(Repo.binary, ["sync", "--config", path]).status == 0)
        #expect(try await kong.stats()["writes"] == .int(0))
    }

    @Test func aLyingScimServerStopsTheRunBeforeAnyWrite() async throws {
        let scim = try PortFileServer(script: "scim/scim_fake_server.py", ["--mode", "error-page2", "--users", "120"])
        let kong = try KongServer()
        try await kong.control("POST", "/__test/generate", #"{"count": 10, "tags": ["idp-managed"]}"#)
        let dir = TempDir()
        let path = config(dir, scim: scim.url, kong: kong.url).replacingOccurrences(of: "", with: "")
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "  id_attribute: externalId\n", with: "")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runProcess(Repo.binary, ["sync", "--config", path, "--output", "json"])
        #expect(r.status == 4)
        #expect(try JSONParser.parse(r.stdout)["refused"]?["cause"] == "source-error")
        #expect(try await kong.stats()["writes"] == .int(0))
    }
}
