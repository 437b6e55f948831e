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

        let updated = try await gateway.mark(consumerID, with: [Marks.orphaned], keeping: ["idp-managed", "mine"])
        #expect(updated.tags == ["idp-managed", "mine", Marks.orphaned])

        guard case .created(let blockID) = try await gateway.block(consumerID) else {
            Issue.record("block not created")
            return
        }
        // Kong allows one request-termination per consumer: the second add finds ours (409 → applied).
        #expect(try await gateway.block(consumerID) == .alreadyOurs(blockID))

        let snapshot = try await gateway.snapshot()
        #expect(snapshot.ourBlocks[consumerID] == blockID)
        // Our block is a request-termination plugin on the consumer alone, 403, tagged idp-sync.
        let (_, plugin) = try await server.kong("GET", "/plugins/\(blockID.rawValue)")
        #expect(plugin["name"] == "request-termination")
        #expect(plugin["config"]?["status_code"] == .int(403))
        #expect(plugin["tags"] == ["idp-sync"])
        #expect(plugin["route"] == .null && plugin["service"] == .null)

        let details = try await gateway.details(for: [consumerID])
        #expect(details[consumerID]?.keys.count == 1)
        #expect(details[consumerID]?.keys.first?.fingerprint == KeyFingerprint.of("alice-secret-value"))

        #expect(details[consumerID]?.ourBlock == blockID)
        #expect(details[consumerID]?.foreign == nil)
        try await gateway.unblock(blockID, of: consumerID)
        try await gateway.unblock(blockID, of: consumerID)  // already gone: fine
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
        await #expect(throws: GatewayError.self) { try await client(server).block(id) }
        #expect(try await client(server).snapshot().ourBlocks.isEmpty)
    }

    /// The adapter classifies a person's request-termination on the consumer (Kong allows one per
    /// consumer, so it keeps ours out): enabled, without a trigger and with a status of at least 400
    /// it blocks; otherwise it conflicts. One scoped to nothing else than the consumer only.
    @Test(arguments: [
        (true, nil as String?, 403, "blocking"), (false, nil, 403, "conflicting"), (true, "x-test", 403, "conflicting"),
        (true, nil, 200, "conflicting"), (true, nil, 503, "blocking"),
    ])
    func aPersonsRequestTerminationIsClassified(_ enabled: Bool, _ trigger: String?, _ status: Int, _ expected: String) async throws {
        let server = try KongServer()
        var config: [String: JSONValue] = ["status_code": .int(Int64(status))]
        if let trigger { config["trigger"] = .string(trigger) }
        let seeded = try await server.seed([
            "consumers": [
                ["username": "pat", "tags": ["idp-managed"],
                 "plugins": [["name": "request-termination", "config": .object(config), "enabled": .bool(enabled)]]]
            ]
        ])
        let id = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        let details = try await client(server).details(for: [id])[id]
        #expect(details?.ourBlock == nil)
        switch details?.foreign {
        case .blocking(let what)?:
            #expect(expected == "blocking")
            #expect(what.hasPrefix("request-termination plugin "))
        case .conflicting(let what)?:
            #expect(expected == "conflicting")
            #expect(what.hasPrefix("request-termination plugin "))
        case nil:
            Issue.record("the person's plugin was not reported")
        }
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
            _ = try await client(server).mark(id, with: ["bad/tag"], keeping: [])
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
