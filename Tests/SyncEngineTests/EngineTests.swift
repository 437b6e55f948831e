import Logging
import SyncCore
import SyncEngine
import SyncTesting
import Testing

/// The run engine against its in-memory twins: no server, deterministic.
@Suite("Engine: waves of writes, changes since the plan, a failing journal, stops, partial failure, restore")
struct EngineTests {
    static let now: Int64 = 1_796_000_000
    /// Five consumers whose users are gone (a sixth user keeps the directory non-empty).
    static let ids = (1...5).map { "c-\($0)" }

    func gateway(concurrency: Int = 8, writeNanoseconds: UInt64 = 0, failure: @escaping MemoryGateway.Failure = { _ in nil },
                 beforeReread: @escaping MemoryGateway.BeforeReread = { _, _ in }) -> MemoryGateway {
        let g = MemoryGateway(
            name: "mem", concurrency: concurrency, writeNanoseconds: writeNanoseconds, failure: failure,
            beforeReread: beforeReread)
        for id in Self.ids {
            g.add(Consumer(id: ConsumerID(id), username: "user-\(id)", customID: "gone-\(id)", tags: ["idp-managed", "team"]))
        }
        return g
    }

    func run(
        _ gateway: MemoryGateway, journal: MemoryJournal, shouldStop: @escaping @Sendable () -> Bool = { false }
    ) async -> RunReport {
        let policy = Policy(gracePeriod: 0, maxDisable: 100, maxDisablePercent: 100)
        let engine = SyncRun(
            source: MemoryDirectory(users: [DirectoryUser(id: UserID("still-here"), username: "here")]),
            sourceType: "memory", gateways: [gateway],
            planner: Planner(policy: policy, gateways: [GatewayPolicy(name: gateway.name, match: .recommended)]),
            journal: journal, runID: "r-test", logger: Logger(label: "test"), now: { Self.now }, shouldStop: shouldStop)
        return await engine.run(RunOptions(dryRun: false))
    }

    @Test func writesGoInWavesInPlanOrderWithAtMostConcurrencyInFlight() async throws {
        let g = gateway(concurrency: 2, writeNanoseconds: 5_000_000)
        let journal = MemoryJournal()
        let report = await run(g, journal: journal)
        #expect(report.exitStatus == .success, "\(report.errors)")
        let plan = try #require(report.plan)
        #expect(plan.actions.count == 10)  // flag and disable for each of five
        #expect(plan.actions.map { "\($0.kind.rawValue) \($0.consumer.id)" }.prefix(2) == ["flag c-1", "disable c-1"])
        // Waves of at most 4 × concurrency = 8 actions, taken in plan order, one action per
        // consumer, never ahead of an earlier action on the same consumer: the intents of a wave,
        // then its outcomes in plan order (worked out by hand for this plan of flag+disable × 5).
        let flags = Self.ids.map { "flag \($0)" }, disables = Self.ids.map { "disable \($0)" }
        let lines = journal.lines
        #expect(
            lines == ["run-started"] + flags.map { "intent " + $0 } + flags.map { "outcome \($0) applied" }
                + disables.map { "intent " + $0 } + disables.map { "outcome \($0) applied" } + ["run-finished"])
        let intents = lines.filter { $0.hasPrefix("intent ") }
        for id in Self.ids {
            let flag = try #require(intents.firstIndex(of: "intent flag \(id)"))
            let disable = try #require(intents.firstIndex(of: "intent disable \(id)"))
            #expect(flag < disable, "\(id) disabled before flagged")
        }
        let state = g.current
        #expect(state.maxInFlight <= 2)
        #expect(state.blocks.count == 5)
        #expect(state.consumers.values.allSatisfy { $0.tagList.contains(Marks.disabled) && $0.tagList.contains("team") })
    }

    @Test func aConsumerChangedSincePlanningIsNotWritten() async throws {
        // A person sets c-2's marks between our plan and our write.
        let g = gateway(concurrency: 1, beforeReread: { id, state in
            guard id == ConsumerID("c-2"), var c = state.consumers[id], !c.tagList.contains("idp-sync:orphaned") else { return }
            c.tags = c.tagList + ["idp-sync:orphaned"]
            state.consumers[id] = c
        })
        let journal = MemoryJournal()
        let report = await run(g, journal: journal)
        #expect(report.exitStatus == .error)
        let outcome = journal.all.first { $0["event"] == "outcome" && $0["consumer"]?["id"] == "c-2" }
        #expect(outcome?["outcome"] == "failed")
        #expect(outcome?["error"]?.stringValue?.hasPrefix("changed since plan: its idp-sync tags changed") == true)
        let writes = g.current.writes
        #expect(!writes.contains("mark c-2") && !writes.contains("block c-2"))
        #expect(writes.contains("block c-1") && writes.contains("block c-5"))
    }

    @Test func aJournalThatFailsMidRunStopsEveryLaterWrite() async throws {
        let g = gateway(concurrency: 1)
        // run-started, then the first wave (4 × concurrency): four intents, four outcomes. The
        // second wave's intents cannot be written, so none of its writes is made.
        let journal = MemoryJournal(failAfter: 9)
        let report = await run(g, journal: journal)
        #expect(report.exitStatus == .error)
        let first = ["c-1", "c-2", "c-3", "c-4"]
        #expect(g.current.writes == first.map { "mark \($0)" }, "a write was made without its intent on disk")
        #expect(
            journal.lines == ["run-started"] + first.map { "intent flag \($0)" } + first.map { "outcome flag \($0) applied" })
        #expect(report.errors.contains { $0.contains("cannot write the journal") })
    }

    @Test func aWaveWhoseIntentsCannotAllBeWrittenMakesNoWrite() async throws {
        let g = gateway(concurrency: 1)
        // run-started and three of the first wave's four intents would fit: the group is refused
        // whole, and run-finished still fits.
        let journal = MemoryJournal(failAfter: 4)
        let report = await run(g, journal: journal)
        #expect(report.exitStatus == .error)
        #expect(g.current.writes.isEmpty)
        #expect(journal.lines == ["run-started", "run-finished"])
    }

    @Test func aStopRequestBetweenWritesEndsTheRunAfterTheWriteInFlight() async throws {
        let g = gateway(concurrency: 1)
        let journal = MemoryJournal()
        let report = await run(g, journal: journal, shouldStop: { g.current.writes.count >= 1 })
        #expect(report.exitStatus == .error)
        #expect(g.current.writes == ["mark c-1"])
        let last = try #require(journal.all.last)
        #expect(last["event"] == "run-finished")
        #expect(last["stopped"] == true)
        // The first wave's intents were durable before its writes; the three that had not started
        // are answered as not attempted, so no intent is left without its outcome.
        let waiting = ["c-2", "c-3", "c-4"]
        #expect(
            journal.lines == ["run-started"] + (["c-1"] + waiting).map { "intent flag \($0)" } + ["outcome flag c-1 applied"]
                + waiting.map { "outcome flag \($0) failed" } + ["run-finished"])
        let notAttempted = journal.all.filter { $0["event"] == "outcome" && $0["outcome"] == "failed" }
        #expect(notAttempted.allSatisfy { $0["error"] == "not attempted: stopped by a signal" })
        #expect(report.errors.contains("stopped by a signal before 9 remaining actions"), "\(report.errors)")
        #expect(!report.errors.contains { $0.contains("failed: not attempted") })
    }

    @Test func aFailedWriteSkipsThatConsumersLaterActionsAndTheRestApply() async throws {
        let g = gateway(concurrency: 3, failure: { what in what == "mark c-2" ? GatewayError("mem: 500", status: 500) : nil })
        let journal = MemoryJournal()
        let report = await run(g, journal: journal)
        #expect(report.exitStatus == .error)
        let outcomes = journal.all.filter { $0["event"] == "outcome" && $0["consumer"]?["id"] == "c-2" }
        #expect(outcomes.map { $0["outcome"]?.stringValue ?? "" } == ["failed", "failed"])
        #expect(outcomes.last?["error"] == "skipped: an earlier action on this consumer failed")
        let state = g.current
        #expect(state.blocks[ConsumerID("c-2")] == nil)
        #expect(Set(state.blocks.keys) == Set(["c-1", "c-3", "c-4", "c-5"].map(ConsumerID.init)))
        #expect(!state.writes.contains("block c-2"))
    }

    @Test func restoreUndoesOneRunAndSkipsWhatAPersonChangedSince() async throws {
        let g = gateway()
        let journal = MemoryJournal()
        let first = await run(g, journal: journal)
        #expect(first.exitStatus == .success)
        let entries = journal.entries.filter { $0.event.run == "r-test" }
        // A person edits c-3's marks after the run.
        _ = try await g.mark(ConsumerID("c-3"), with: [Marks.orphaned], keeping: ["idp-managed", "team"])

        let restoreJournal = MemoryJournal()
        let restore = RestoreRun(
            gateways: [g], journal: restoreJournal, runID: "r-restore",
            started: .init(run: nil, version: "test", host: "h", uid: 1), logger: Logger(label: "test"))
        let report = await restore.run(undoing: "r-test", entries: entries, dryRun: false)
        #expect(report.exitStatus == .success, "\(report.errors)")
        #expect(report.skipped.count == 1)
        #expect(report.skipped.first?.contains("user-c-3") == true, "\(report.skipped)")
        let state = g.current
        for id in ["c-1", "c-2", "c-4", "c-5"] {
            #expect(state.blocks[ConsumerID(id)] == nil, "\(id) still blocked")
            #expect(state.consumers[ConsumerID(id)]?.tags == ["idp-managed", "team"])
        }
        #expect(state.blocks[ConsumerID("c-3")] != nil, "the changed consumer was touched")
        let started = try #require(restoreJournal.all.first)
        #expect(started["event"] == "run-started" && started["restore_of"] == "r-test")
        #expect(restoreJournal.lines.filter { $0.hasPrefix("outcome restore") }.count == 4)
    }
}
