import Logging
import Synchronization
import SyncCore
import SyncEngine
import SyncTesting
import Testing

/// `watch` against the memory twins: a scripted feed, a directory the test changes, a clock the
/// test moves. Each test waits for what it expects with a bounded poll, never a fixed sleep.
@Suite("Watch: changes for just the users they touch, grace by tick, the hourly brake, resyncs")
struct WatchTests {
    static let start = 1_796_000_000.0

    /// The world of one session.
    final class World: Sendable {
        let users = Mutex<[DirectoryUser]>([])
        let clock = Mutex<Double>(WatchTests.start)
        let stop = Atomic<Bool>(false)
        let feed = MemoryFeed()
        let gateway = MemoryGateway(name: "mem")
        let journal = MemoryJournal()
        let runs = Atomic<Int>(0)
        let notes = Mutex<[String]>([])

        init(users: [DirectoryUser], consumers: [Consumer]) {
            self.users.withLock { $0 = users }
            for consumer in consumers { gateway.add(consumer) }
        }

        func session(
            policy: Policy = Policy(gracePeriod: 3600, disabledGracePeriod: 0, maxDisable: 100, maxDisablePercent: 100),
            settings: WatchSettings = WatchSettings(tickSeconds: 60, resyncSeconds: 86_400, maxDisablePerHour: 10),
            recentDisables: [Int64] = []
        ) -> WatchSession {
            let planner = Planner(policy: policy, gateways: [GatewayPolicy(name: "mem", match: .recommended)])
            return WatchSession(
                feed: feed, sourceType: "memory", gateways: [gateway], planner: planner, journal: journal,
                started: .init(run: nil, version: "test", host: "h", uid: 0), lastGoodUsers: nil, disabledByUs: [:],
                recentDisables: recentDisables, settings: settings,
                hooks: WatchHooks(
                    makeSource: { [self] in LiveDirectory(world: self) },
                    newRunID: { [self] in "r-\(self.runs.add(1, ordering: .relaxed).newValue)" },
                    notify: { [self] note in self.notes.withLock { $0.append(note) } }),
                logger: Logger(label: "watch-test"), clock: { [self] in self.clock.withLock { $0 } },
                shouldStop: { [self] in self.stop.load(ordering: .relaxed) })
        }

        /// Starts the session on its own task; `finish` stops it and returns its exit status.
        func start(_ session: WatchSession) -> Task<SyncCore.ExitStatus, Never> { Task { await session.run() } }

        func finish(_ task: Task<SyncCore.ExitStatus, Never>) async -> SyncCore.ExitStatus {
            stop.store(true, ordering: .relaxed)
            return await task.value
        }

        func advance(_ seconds: Double) { clock.withLock { $0 += seconds } }

        /// Waits (bounded) until `condition` holds.
        func until(_ what: String, _ condition: () -> Bool) async throws {
            for _ in 0..<1000 {
                if condition() { return }
                try await Task.sleep(nanoseconds: 5_000_000)
            }
            Issue.record("timed out waiting for \(what); journal: \(journal.lines)")
        }

        var blocked: Set<ConsumerID> { Set(gateway.current.blocks.keys) }
        func tags(_ id: String) -> [String] { gateway.current.consumers[ConsumerID(id)]?.tags ?? [] }
    }

    /// The world's directory as it is at each read (a real source reads the server each time).
    struct LiveDirectory: DirectorySource {
        let world: World
        func snapshot() async throws -> DirectorySnapshot {
            try await MemoryDirectory(users: world.users.withLock { $0 }).snapshot()
        }
        func checkConnection() async throws -> String { "live memory directory" }
    }

    static let alice = DirectoryUser(id: UserID("u-alice"), username: "alice")
    static let bob = DirectoryUser(id: UserID("u-bob"), username: "bob")
    static func consumer(_ name: String) -> Consumer {
        Consumer(id: ConsumerID("c-\(name)"), username: name, customID: "u-\(name)", tags: ["idp-managed"])
    }

    func world() -> World {
        World(users: [Self.alice, Self.bob], consumers: [Self.consumer("alice"), Self.consumer("bob")])
    }

    @Test func aDeactivationBlocksJustThatUsersConsumer() async throws {
        let w = world()
        let task = w.start(w.session())
        try await w.until("READY") { w.notes.withLock { $0.contains("READY=1") } }
        #expect(w.gateway.current.writes.isEmpty, "a quiet start writes nothing")
        var locked = Self.alice
        locked.state = .deactivated
        w.users.withLock { $0 = [locked, Self.bob] }
        w.feed.change("e-alice", before: Self.alice, now: locked)
        try await w.until("alice blocked") { w.blocked.contains(ConsumerID("c-alice")) }
        #expect(w.tags("c-alice").contains(Marks.disabled))
        #expect(w.tags("c-bob") == ["idp-managed"])
        #expect(await w.finish(task) == .success)
        // The session is runs in the journal: watch-start (full), then watch (the change).
        let records = w.journal.all
        let triggers = records.filter { $0["event"] == "run-started" }.compactMap { $0["trigger"]?.stringValue }
        #expect(triggers == ["watch-start", "watch"])
        let watchRun = records.last { $0["event"] == "run-started" }?["run"]
        #expect(records.filter { $0["event"] == "intent" }.allSatisfy { $0["run"] == watchRun })
        #expect(w.journal.lines.suffix(5) == ["intent flag c-alice", "outcome flag c-alice applied", "intent disable c-alice", "outcome disable c-alice applied", "run-finished"])
    }

    /// A change delivered while the startup reconciliation still runs is applied after it.
    @Test func aChangeDuringTheStartupReconciliationIsNotLost() async throws {
        let w = world()
        w.users.withLock { $0 = [Self.alice, Self.bob] }
        // Sent before the session starts, so it arrives right behind `.live`, before the full run ends.
        w.feed.change("e-bob", before: Self.bob, now: nil)
        let task = w.start(w.session())
        try await w.until("bob flagged") { w.tags("c-bob").contains(Marks.orphaned) }
        #expect(!w.blocked.contains(ConsumerID("c-bob")), "missing: flagged, with the grace clock running")
        #expect(await w.finish(task) == .success)
    }

    @Test func aDeletedUserWaitsOutTheGraceThenATickDisablesIt() async throws {
        let w = world()
        let task = w.start(w.session())
        try await w.until("READY") { w.notes.withLock { $0.contains("READY=1") } }
        w.users.withLock { $0 = [Self.alice] }
        w.feed.change("e-bob", before: Self.bob, now: nil)
        try await w.until("bob flagged") { w.tags("c-bob").contains(Marks.orphaned) }
        #expect(w.blocked.isEmpty)
        w.advance(3601)  // past the grace period and a tick
        try await w.until("bob disabled by a tick") { w.blocked.contains(ConsumerID("c-bob")) }
        // The user comes back: restored at once.
        w.users.withLock { $0 = [Self.alice, Self.bob] }
        w.feed.change("e-bob", before: nil, now: Self.bob)
        try await w.until("bob restored") { !w.blocked.contains(ConsumerID("c-bob")) && w.tags("c-bob") == ["idp-managed"] }
        #expect(await w.finish(task) == .success)
    }

    /// A dropped feed concludes nothing: no consumer is flagged.
    @Test func aDroppedFeedFlagsNobody() async throws {
        let w = world()
        let task = w.start(w.session())
        try await w.until("READY") { w.notes.withLock { $0.contains("READY=1") } }
        w.feed.send(.disconnected("connection reset"))
        w.feed.send(.live(resumed: true))
        w.advance(120)
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(w.gateway.current.writes.isEmpty, "\(w.gateway.current.writes)")
        #expect(await w.finish(task) == .success)
    }

    /// A feed that cannot resume means a full reconciliation (`watch-resync`), which sees what the
    /// feed missed.
    @Test func aFeedThatCannotResumeTriggersAFullReconciliation() async throws {
        let w = world()
        let task = w.start(w.session())
        try await w.until("READY") { w.notes.withLock { $0.contains("READY=1") } }
        var locked = Self.bob
        locked.state = .deactivated
        w.users.withLock { $0 = [Self.alice, locked] }  // changed while the feed was away
        w.feed.send(.refreshRequired("e-syncRefreshRequired"))
        try await w.until("bob blocked by the resync") { w.blocked.contains(ConsumerID("c-bob")) }
        #expect(await w.finish(task) == .success)
        let triggers = w.journal.all.filter { $0["event"] == "run-started" }.compactMap { $0["trigger"]?.stringValue }
        #expect(triggers == ["watch-start", "watch", "watch-resync", "watch"], "\(triggers)")
    }

    /// The brake is a rate counted from the journal: disables of the last hour (before this session
    /// started too) plus these would exceed it, so the watch refuses and stops with 3.
    @Test func theHourlyBrakeStopsTheWatch() async throws {
        let w = world()
        let t = Int64(Self.start)
        let session = w.session(
            settings: WatchSettings(tickSeconds: 60, resyncSeconds: 86_400, maxDisablePerHour: 2),
            recentDisables: [t - 600, t - 300])
        let task = w.start(session)
        try await w.until("READY") { w.notes.withLock { $0.contains("READY=1") } }
        var locked = Self.alice
        locked.state = .deactivated
        w.feed.change("e-alice", before: Self.alice, now: locked)
        #expect(await task.value == .refused)
        #expect(w.blocked.isEmpty)
        let refused = try #require(w.journal.all.last)
        #expect(refused["event"] == "run-refused" && refused["cause"] == "brake-rate", "\(refused)")
    }

    @Test func aFeedThatCannotStartExitsOne() async {
        let w = World(users: [Self.alice], consumers: [])
        let planner = Planner(policy: Policy(), gateways: [GatewayPolicy(name: "mem", match: .recommended)])
        let session = WatchSession(
            feed: MemoryFeed(failure: "the server does not support RFC 4533"), sourceType: "memory", gateways: [w.gateway],
            planner: planner, journal: w.journal, started: .init(run: nil, version: "t", host: "h", uid: 0),
            lastGoodUsers: nil, disabledByUs: [:], recentDisables: [], settings: WatchSettings(),
            hooks: WatchHooks(makeSource: { MemoryDirectory(users: []) }, newRunID: { "r" }), logger: Logger(label: "t"),
            clock: { 0 }, shouldStop: { false })
        #expect(await session.run() == .error)
        #expect(w.journal.all.isEmpty, "nothing journaled without a feed")
    }
}
