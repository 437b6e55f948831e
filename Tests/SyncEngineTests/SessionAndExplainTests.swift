import Logging
import SyncCore
import SyncEngine
import SyncTesting
import Testing

@Suite("Engine: the run session and explain's evidence")
struct SessionAndExplainTests {
    @Test func everyRunRecordsWhatOpeningTheJournalFound() async throws {
        let journal = MemoryJournal()
        let session = try RunSession.open(
            MemoryJournalOpening(
                journal: journal, repaired: "truncated a torn last line", interrupted: ("r-killed", [7, 9]), lastGoodUsers: 40),
            started: .init(run: nil, version: "t", host: "h", uid: 1, configSHA256: "abc"), logger: Logger(label: "test"))
        #expect(session.lastGoodUsers == 40)
        let g = MemoryGateway(name: "mem")
        let run = SyncRun(
            source: MemoryDirectory(users: [DirectoryUser(id: UserID("u-1"), username: "a")]), sourceType: "memory",
            gateways: [g], planner: Planner(policy: Policy(), gateways: [GatewayPolicy(name: "mem", match: .recommended)]),
            journal: session.journal, runID: "r-now", started: session.started, logger: Logger(label: "test"), now: { 1 })
        _ = await run.run(RunOptions(dryRun: false))
        let started = try #require(journal.all.first)
        #expect(started["event"] == "run-started" && started["run"] == "r-now")
        #expect(started["repaired"] == "truncated a torn last line")
        #expect(started["previous_run_interrupted"] == ["run": "r-killed", "intents_without_outcome": [7, 9]])
        #expect(started["config_sha256"] == "abc" && started["journal_format"] == 1)
    }

    func gatherer(_ g: MemoryGateway, users: [DirectoryUser], history: [JournalEntry] = []) -> EvidenceGatherer {
        EvidenceGatherer(
            gateways: [g], source: MemoryDirectory(users: users), rules: ["mem": .recommended], policy: Policy(),
            isProtected: { $0.username == "svc" }, history: { _, _ in history }, now: 1)
    }

    @Test func aKeyLeadsToItsConsumerAndTheConsumerToItsUser() async throws {
        let g = MemoryGateway(name: "mem")
        g.add(
            Consumer(id: ConsumerID("c-1"), username: "alice", customID: "u-1", tags: ["idp-managed"]),
            keys: [KeyRef(id: KeyID("k-1"), fingerprint: "sha256:aaaa")], foreign: .blocking("a person's block"))
        let gathered = await gatherer(g, users: [DirectoryUser(id: UserID("u-1"), username: "alice")])
            .gather(fingerprint: "sha256:aaaa", consumer: nil)
        #expect(gathered.found)
        #expect(gathered.problems.isEmpty)
        #expect(gathered.evidence.consumer?.id == ConsumerID("c-1"))
        #expect(gathered.evidence.details?.foreign == .blocking("a person's block"))
        #expect(gathered.evidence.directory == .active(DirectoryUser(id: UserID("u-1"), username: "alice")))
        #expect(Explainer.explain(gathered.evidence).cause == .blockedByPerson)
    }

    @Test func aConsumerThatExistsNowhereIsNotFound() async throws {
        let g = MemoryGateway(name: "mem")
        let gathered = await gatherer(g, users: []).gather(fingerprint: nil, consumer: "nobody")
        #expect(!gathered.found)
        #expect(gathered.evidence.directory == .notChecked("no consumer found"))
    }

    @Test func anUnlinkedConsumerSaysSo() async throws {
        let g = MemoryGateway(name: "mem")
        g.add(Consumer(id: ConsumerID("c-2"), username: "svc", customID: nil, tags: ["idp-managed"]))
        let gathered = await gatherer(g, users: []).gather(fingerprint: nil, consumer: "svc")
        #expect(gathered.found && gathered.evidence.directory == .unlinked && gathered.evidence.protected)
    }
}
