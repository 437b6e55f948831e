import CurlHTTP
import Foundation
import KongGateway
import Logging
import SyncCore
import SyncEngine
import Testing

@Suite("Retries, backoff and timeouts against the Kong test server's faults")
struct ResilienceTests {
    func client(_ server: KongServer, retries: Int = 3, timeout: Int = 5) -> KongAdminClient {
        KongAdminClient(
            settings: KongSettings(
                name: "test", adminURL: server.url, selectTags: ["idp-managed"], timeoutSeconds: timeout, retries: retries),
            logger: Logger(label: "test"))
    }

    func faults(_ server: KongServer, _ json: String) async throws {
        try await server.control("POST", "/__test/faults", json)
    }

    @Test func a503BurstOnReadsIsRetried() async throws {
        let server = try KongServer()
        try await server.control("POST", "/__test/generate", #"{"count": 1500, "tags": ["idp-managed"]}"#)
        try await faults(server, #"{"rules": [{"method": "GET", "path_regex": "^/consumers$", "status": 503, "times": 2}]}"#)
        #expect(try await client(server).snapshot().consumers.count == 1500)
        #expect(try await server.stats()["by_status"]?["503"] == .int(2))
    }

    @Test func retriesEndAndTheErrorNamesTheGateway() async throws {
        let server = try KongServer()
        try await faults(server, #"{"rules": [{"method": "GET", "path_regex": "^/consumers$", "status": 503}]}"#)
        do {
            _ = try await client(server, retries: 2).snapshot()
            Issue.record("a gateway that always answers 503 was read")
        } catch let error as GatewayError {
            #expect(error.status == 503)
        }
        #expect(try await server.stats()["by_status"]?["503"] == .int(3))
    }

    @Test func a429IsRetriedAfterRetryAfterEvenForWrites() async throws {
        let server = try KongServer()
        let seeded = try await server.seed(["consumers": [["username": "a", "tags": ["idp-managed"]]]])
        let id = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        try await faults(server, #"{"rules": [{"method": "PATCH", "status": 429, "retry_after": 1, "times": 1}]}"#)
        let consumer = try await client(server).mark(id, with: [], keeping: ["idp-managed", "x"])
        #expect(consumer.tags == ["idp-managed", "x"])
        // What the server saw: the retry came at least Retry-After (1 s) after the 429 was sent.
        let gaps = try await server.stats()["retry_gaps"]?.arrayValue ?? []
        #expect(gaps.count == 1)
        #expect(gaps.first?["retry_after"] == "1")
        #expect((gaps.first?["gap_ms"]?.intValue ?? 0) >= 1000, "\(gaps)")
    }

    /// A Retry-After above the 30 s cap is waited for 30 s at most: with a 45 s value, the pause
    /// the client takes is capped (the computed delay, without waiting it out).
    @Test(arguments: [("45", 30.0), ("30", 30.0), ("2", 2.0), ("0", 0.0)])
    func retryAfterIsCappedAtThirtySeconds(_ header: String, _ expected: Double) {
        let policy = RetryPolicy(retries: 3)
        let delay = policy.delay(
            afterAttempt: 1, status: 429, retryAfter: RetryPolicy.retryAfterSeconds(header), transportCode: nil,
            repeatable: false)
        #expect(delay == expected)
    }

    @Test(arguments: ["nan", "-1", "1e3", "inf", "", " 5", "5s", "0x10", "9999999999", "Wed, 21 Oct 2015 07:28:00 GMT"])
    func onlyWholeSecondsAreARetryAfter(_ header: String) {
        #expect(RetryPolicy.retryAfterSeconds(header) == nil)
    }

    @Test func aDroppedConnectionIsRetriedForReadsButNotBlindlyForWrites() async throws {
        let server = try KongServer()
        let seeded = try await server.seed(["consumers": [["username": "a", "tags": ["idp-managed"]]]])
        let id = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        try await faults(server, #"{"rules": [{"method": "GET", "status": 500, "drop": true, "times": 1}]}"#)
        #expect(try await client(server).readConsumer(id)?.username == "a")
        try await faults(server, #"{"rules": [{"method": "PATCH", "status": 500, "drop": true, "times": 1}]}"#)
        await #expect(throws: GatewayError.self) { try await client(server).mark(id, with: [], keeping: ["idp-managed", "y"]) }
        #expect(try await server.stats()["by_route"]?["PATCH /consumers/{consumer}"] == .int(1))
    }

    @Test func aWriteThatTimedOutIsReadAgainBeforeItIsSentAgain() async throws {
        let server = try KongServer()
        let seeded = try await server.seed(["consumers": [["username": "a", "tags": ["idp-managed"]]]])
        let id = ConsumerID(seeded["consumers"]!.arrayValue![0]["id"]!.stringValue!)
        try await faults(server, #"{"rules": [{"method": "PATCH", "status": null, "delay_ms": 1800, "times": 1}]}"#)
        let consumer = try await client(server, timeout: 1).mark(id, with: [], keeping: ["idp-managed", "z"])
        #expect(consumer.tags == ["idp-managed", "z"])
        let routes = try await server.stats()["by_route"]
        #expect(routes?["GET /consumers/{consumer}"] == .int(1))
    }

    /// Writes answered 502, 503 or 504 three times in ten (seeded, one write at a time, so the same
    /// requests fail on every run) succeed through their retries: the run exits 0, pinned.
    @Test(arguments: [502, 503, 504])
    func writesSurviveBurstsOfGatewayErrors(_ status: Int) async throws {
        let s = try Scenario(concurrency: 1)
        try await s.seedDemo()
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"methods": ["PATCH", "POST"], "status": \#(status), "fraction": 0.3, "seed": 7}]}"#)
        let first = try s.sync()
        #expect(first.status == 0, "\(first.stderr)")
        let injected = try await s.kong.stats()["by_status"]?[String(status)]?.intValue ?? 0
        #expect(injected >= 2, "the fault never fired, so this proved nothing")
        try await s.kong.control("DELETE", "/__test/faults")
        try await s.kong.resetStats()
        #expect(try s.sync().status == 0)
        #expect(try await s.writes() == 0, "the faulted run left work for the next one")
        #expect(try runProcess(Repo.binary, ["journal", "verify", "--journal", s.journal]).status == 0)
        #expect(try await s.plugins("carol").count == 1)
        #expect(try await s.plugins("dave").count == 1)
    }
}

@Suite("HTTP client")
struct HTTPClientTests {
    @Test func responseHeadersAreRead() async throws {
        let server = try KongServer()
        let response = try await CurlHTTP.HTTPClient(options: .init()).send(.init(method: "GET", url: server.url + "/status"))
        #expect(response.header("Server") == "kong/3.9.1")
        #expect(response.header("content-type") == "application/json; charset=utf-8")
    }
}
