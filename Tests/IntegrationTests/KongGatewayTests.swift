import KongGateway
import Logging
import SyncCore
import SyncEngine
import Testing

@Suite("Kong client against the Kong test server")
struct KongGatewayTests {
    func client(_ server: KongServer, token: String? = nil, tags: [String] = ["idp-managed"]) -> KongAdminClient {
        KongAdminClient(
            settings: KongSettings(name: "test", adminURL: server.url + "/", token: token, selectTags: tags, timeoutSeconds: 5),
            logger: Logger(label: "test"))
    }

    @Test func snapshotReadsEveryManagedConsumerInAFewRequests() async throws {
        let server = try KongServer()
        try await server.control("POST", "/__test/generate", #"{"count": 2500, "tags": ["idp-managed", "team"], "keys_per_consumer": 1}"#)
        try await server.control(
            "POST", "/__test/generate", #"{"count": 30, "tags": ["other"], "username_prefix": "x", "custom_id": "none"}"#)
        try await server.resetStats()
        let snapshot = try await client(server, tags: ["idp-managed", "team"]).snapshot()
        #expect(snapshot.consumers.count == 2500)
        #expect(Set(snapshot.consumers.map(\.id)).count == 2500)
        #expect(snapshot.consumers.allSatisfy { $0.tagList.contains("idp-managed") })
        let stats = try await server.stats()
        // GET / + 3 consumer pages of 1000 + 1 page of our plugins; no key or per-consumer reads.
        #expect(stats["total"] == .int(5))
        #expect(stats["writes"] == .int(0))
        #expect(stats["by_route"]?["GET /consumers"] == .int(3))
    }

    @Test func writesFollowKongsRules() async throws {
        let server = try KongServer()
        let seeded = try await server.seed([
            "consumers": [
                [
                    "username": "alice", "custom_id": "u-1", "tags": ["idp-managed", "mine"],
                    "keys": [["key": "alice-secret-value"]],
                ]
            ]
        ])
        let consumerID = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        let gateway = client(server)

        let updated = try await gateway.setTags(consumerID, ["idp-managed", "mine", Marks.orphaned])
        #expect(updated.tags == ["idp-managed", "mine", Marks.orphaned])

        guard case .created(let pluginID) = try await gateway.addBlockPlugin(consumerID) else {
            Issue.record("plugin not created")
            return
        }
        // Kong allows one request-termination per consumer: the second add finds ours (409 → applied).
        #expect(try await gateway.addBlockPlugin(consumerID) == .alreadyOurs(pluginID))

        let snapshot = try await gateway.snapshot()
        #expect(snapshot.ourPlugins[consumerID]?.id == pluginID)
        #expect(snapshot.ourPlugins[consumerID]?.statusCode == 403)

        let details = try await gateway.details(for: [consumerID])
        #expect(details[consumerID]?.keys.count == 1)
        #expect(details[consumerID]?.keys.first?.fingerprint == KeyFingerprint.of("alice-secret-value"))

        try await gateway.removePlugin(pluginID, of: consumerID)
        try await gateway.removePlugin(pluginID, of: consumerID)  // already gone: fine
        let key = details[consumerID]!.keys[0].id
        try await gateway.deleteKey(key, of: consumerID)
        try await gateway.deleteKey(key, of: consumerID)  // already gone: fine
        #expect(try await gateway.details(for: [consumerID])[consumerID]?.keys.isEmpty == true)
        #expect(try await gateway.readConsumer(ConsumerID("00000000-0000-4000-8000-000000000000")) == nil)
    }

    @Test func aPersonsPluginIsAConflictNotOurs() async throws {
        let server = try KongServer()
        let seeded = try await server.seed([
            "consumers": [
                [
                    "username": "bob", "tags": ["idp-managed"],
                    "plugins": [["name": "request-termination", "config": ["status_code": 503], "enabled": false]],
                ]
            ]
        ])
        let id = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        await #expect(throws: GatewayError.self) { try await client(server).addBlockPlugin(id) }
        #expect(try await client(server).snapshot().ourPlugins.isEmpty)
    }

    @Test func dbLessKongIsRefused() async throws {
        let server = try KongServer(arguments: ["--dbless"])
        do {
            _ = try await client(server).snapshot()
            Issue.record("DB-less snapshot accepted")
        } catch let error as GatewayError {
            #expect(error.description.contains("DB-less"))
            #expect(error.description.contains("gateway test"))
        }
    }

    @Test func theAdminTokenIsSentAndNeverShown() async throws {
        let server = try KongServer(arguments: ["--token", "tok-4711-secret"])
        do {
            _ = try await client(server).snapshot()
            Issue.record("no token accepted")
        } catch let error as GatewayError {
            #expect(error.status == 401)
            #expect(error.description.contains("token_file"))
        }
        do {
            _ = try await client(server, token: "wrong-token-0815").snapshot()
            Issue.record("a wrong token was accepted")
        } catch let error as GatewayError {
            #expect(error.status == 401)
            #expect(error.description.contains("check token_file"))
            #expect(!error.description.contains("wrong-token-0815"))
        }
        #expect(try await client(server, token: "tok-4711-secret").snapshot().consumers.isEmpty)
    }

    @Test func kongErrorBodiesSurfaceInOneLine() async throws {
        let server = try KongServer()
        let seeded = try await server.seed(["consumers": [["username": "carl", "tags": ["idp-managed"]]]])
        let id = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        do {
            _ = try await client(server).setTags(id, ["bad/tag"])
            Issue.record("invalid tag accepted")
        } catch let error as GatewayError {
            #expect(error.status == 400)
            #expect(error.description.hasPrefix("gateway test: PATCH /consumers/"))
            #expect(error.description.contains("schema violation"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func anUnreachableGatewayNamesItself() async throws {
        let gateway = KongAdminClient(
            settings: KongSettings(name: "gone", adminURL: "http://127.0.0.1:9", selectTags: ["x"], timeoutSeconds: 2),
            logger: Logger(label: "test"))
        do {
            _ = try await gateway.snapshot()
            Issue.record("unreachable gateway read")
        } catch let error as GatewayError {
            #expect(error.description.contains("gateway gone"))
            #expect(error.description.contains("127.0.0.1:9"))
        }
    }
}
