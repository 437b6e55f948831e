import Logging
import Synchronization
import SyncCore

/// `watch`'s knobs (the config's `watch:` section).
public struct WatchSettings: Sendable {
    /// How often grace periods that came due are applied.
    public var tickSeconds: Int64
    /// How often a full reconciliation runs (and `*_file` secrets are read again).
    public var resyncSeconds: Int64
    /// The brake as a rate: disables in any sliding hour, counted from the journal.
    public var maxDisablePerHour: Int

    public init(tickSeconds: Int64 = 60, resyncSeconds: Int64 = 3600, maxDisablePerHour: Int = 25) {
        self.tickSeconds = tickSeconds
        self.resyncSeconds = resyncSeconds
        self.maxDisablePerHour = maxDisablePerHour
    }
}

/// What `watch` reports to the outside between writes: its metrics and systemd notifications.
public struct WatchStatus: Sendable {
    public var events: Int64 = 0
    /// Events since the last status handed out (the metrics counter adds them).
    public var newEvents: Int64 = 0
    /// Reports whose outcomes the actions counter has not seen yet (full and targeted).
    public var uncounted: [RunReport] = []
    /// Seconds from the last directory change to its gateway write, when the directory dates it.
    public var lastLag: Double?
    public var connected = false
    /// The last full reconciliation's report (its metrics are written beside the watch's).
    public var lastFull: RunReport?

    public init() {}
}

/// The world `watch` needs from its caller: a source built afresh at each full reconciliation (so
/// secrets given as files are read again), run ids, systemd notifications and the metrics sink.
public struct WatchHooks: Sendable {
    /// Called at each full reconciliation (ticks reuse the last one).
    public var makeSource: @Sendable () -> any DirectorySource
    public var newRunID: @Sendable () -> String
    /// `READY=1`, `WATCHDOG=1`, `STATUS=…`, `STOPPING=1` (sd_notify(3)); no-op outside systemd.
    public var notify: @Sendable (String) -> Void
    /// Called with the current status at most every few seconds and after each full reconciliation.
    public var status: @Sendable (WatchStatus) -> Void

    public init(
        makeSource: @escaping @Sendable () -> any DirectorySource, newRunID: @escaping @Sendable () -> String,
        notify: @escaping @Sendable (String) -> Void = { _ in }, status: @escaping @Sendable (WatchStatus) -> Void = { _ in }
    ) {
        self.makeSource = makeSource
        self.newRunID = newRunID
        self.notify = notify
        self.status = status
    }
}

/// `idp-sync watch` (docs/operations.md): a full reconciliation, then the directory's changes acted
/// on for just the users they touch, with every rule of a scheduled run: the same planner and
/// executor, each write journaled as intent and outcome, nothing concluded from a partial view.
///
/// The session is a series of runs in the journal: `watch-start` (a full reconciliation), then
/// `watch` (the changes and grace periods that came due) until the next `watch-resync` (full, every
/// `resyncSeconds`, or when the feed cannot resume), and so on. The caller holds the lock for the
/// whole session.
public final class WatchSession: Sendable {
    let feed: any DirectoryFeed
    let sourceType: String
    let gateways: [any Gateway]
    let planner: Planner
    let journal: any JournalStore
    let template: JournalEvent.RunStarted
    let settings: WatchSettings
    let hooks: WatchHooks
    let logger: Logger
    let clock: @Sendable () -> Double
    let shouldStop: @Sendable () -> Bool
    private let state: Mutex<State>
    private let inbox = Box<[Item]>([])
    /// The source of the last full reconciliation: ticks look users up through it, so the config and
    /// its secrets are read again only at full reconciliations.
    private let source = Box<(any DirectorySource)?>(nil)

    /// A shared, locked value that closures can hold (a `Mutex` itself cannot be captured).
    final class Box<T: Sendable>: Sendable {
        let value: Mutex<T>
        init(_ initial: T) { value = Mutex(initial) }
        func withLock<R>(_ body: (inout T) -> R) -> R { value.withLock { body(&$0) } }
    }

    /// What the feed delivered, in order.
    enum Item: Sendable {
        case event(FeedEvent)
        case failed(String)
    }

    struct State: Sendable {
        var lastGoodUsers: Int?
        var disabledByUs: [String: [String: Int64]]
        var recentDisables: [Int64]
        /// Managed consumers by gateway, then by normalised match value (from the last full read).
        var index: [String: [CompactText: ConsumerMatches]] = [:]
        /// Flagged consumers waiting out their grace period.
        var waiting: [GraceWait] = []
        /// Consumers whose gateway could not be read or written: the next tick tries them again.
        var retry: [String: Set<ConsumerID>] = [:]
        var status = WatchStatus()
        /// The current `watch` run: its id, counts, and whether it failed.
        var run: String?
        var counts: [String: Int64] = [:]
        var failed = false
    }

    public init(
        feed: any DirectoryFeed, sourceType: String, gateways: [any Gateway], planner: Planner, journal: any JournalStore,
        started: JournalEvent.RunStarted, lastGoodUsers: Int?, disabledByUs: [String: [String: Int64]],
        recentDisables: [Int64], settings: WatchSettings, hooks: WatchHooks, logger: Logger,
        clock: @escaping @Sendable () -> Double, shouldStop: @escaping @Sendable () -> Bool
    ) {
        self.feed = feed
        self.sourceType = sourceType
        self.gateways = gateways
        self.planner = planner
        self.journal = journal
        self.template = started
        self.settings = settings
        self.hooks = hooks
        self.logger = logger
        self.clock = clock
        self.shouldStop = shouldStop
        self.state = Mutex(
            State(lastGoodUsers: lastGoodUsers, disabledByUs: disabledByUs, recentDisables: recentDisables))
    }

    var now: Int64 { Int64(clock()) }

    /// Runs until SIGTERM (exit 0), a brake (3), an untrustworthy directory at a full
    /// reconciliation (4), or a feed that cannot work (1).
    public func run() async -> ExitStatus {
        let stopFeed = Atomic<Bool>(false)
        let feed = self.feed, shouldStop = self.shouldStop
        let feedTask = Task.detached { [inbox] in
            do {
                try await feed.follow(
                    { event in inbox.withLock { $0.append(.event(event)) } },
                    shouldStop: { shouldStop() || stopFeed.load(ordering: .relaxed) })
            } catch {
                inbox.withLock { $0.append(.failed("\(error)")) }
            }
        }
        defer {
            stopFeed.store(true, ordering: .relaxed)
            feedTask.cancel()
        }

        // 1. The feed first, so no change falls between the full read and the feed: anything that
        // changes after `.live` is delivered, and is applied after the reconciliation below.
        var buffered: [Item] = []
        while true {
            if shouldStop() { return .success }
            let items = inbox.withLock { items in
                defer { items.removeAll() }
                return items
            }
            if let failure = items.first(where: { if case .failed = $0 { return true } else { return false } }),
                case .failed(let reason) = failure
            {
                logger.error("the change feed cannot start", metadata: ["watch.error": "\(reason)"])
                return .error
            }
            if let live = items.firstIndex(where: { if case .event(.live) = $0 { return true } else { return false } }) {
                buffered = Array(items[items.index(after: live)...])
                break
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        state.withLock { $0.status.connected = true }
        logger.info("watch: the change feed is live; reconciling everything once")

        // 2. The startup reconciliation, the same as `sync`.
        let startup = await fullRun(trigger: "watch-start")
        if let code = stopCode(startup) { return code }
        hooks.notify("READY=1")
        hooks.notify("STATUS=watching")
        startEventsRun()
        inbox.withLock { $0.insert(contentsOf: buffered, at: 0) }

        // 3. Changes, ticks and resyncs until stopped.
        var lastTick = clock(), lastResync = clock(), lastStatus = 0.0
        var lastPing = ContinuousClock.now - .seconds(2)
        while !shouldStop() {
            // The watchdog hears from the loop that consumes the feed, once a second at most.
            if ContinuousClock.now - lastPing >= .seconds(1) {
                lastPing = ContinuousClock.now
                hooks.notify("WATCHDOG=1")
            }
            let items = inbox.withLock { items in
                defer { items.removeAll() }
                return items
            }
            var changes: [(before: DirectoryUser?, now: DirectoryUser?, at: Double?)] = []
            var resync = false
            for item in items {
                switch item {
                case .failed(let reason):
                    logger.error("the change feed failed", metadata: ["watch.error": "\(reason)"])
                    finishEventsRun()
                    return .error
                case .event(.live(let resumed)):
                    state.withLock { $0.status.connected = true }
                    logger.info("watch: the change feed is live again", metadata: ["watch.resumed": .stringConvertible(resumed)])
                    // A feed that could not resume started over: what changed meanwhile is read in full.
                    if !resumed { resync = true }
                case .event(.disconnected(let reason)):
                    state.withLock { $0.status.connected = false }
                    logger.warning("watch: the change feed dropped; reconnecting", metadata: ["watch.reason": "\(reason)"])
                case .event(.refreshRequired(let reason)):
                    logger.warning("watch: the feed cannot resume; a full reconciliation follows", metadata: ["watch.reason": "\(reason)"])
                    resync = true
                case .event(.changed(_, let before, let now, let at)):
                    changes.append((before, now, at))
                }
            }
            if !changes.isEmpty {
                if let code = await apply(changes) { return code }
            }
            let t = clock()
            if resync || t - lastResync >= Double(settings.resyncSeconds) {
                finishEventsRun()
                let report = await fullRun(trigger: "watch-resync")
                if let code = stopCode(report) { return code }
                startEventsRun()
                lastResync = clock()
                lastTick = lastResync
            } else if t - lastTick >= Double(settings.tickSeconds) {
                lastTick = t
                if let code = await applyDue() { return code }
            }
            if t - lastStatus >= 2 {
                lastStatus = t
                publish()
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        hooks.notify("STOPPING=1")
        finishEventsRun()
        publish()
        return .success
    }

    // MARK: Full reconciliations

    /// A full run: `SyncRun` with the regular brakes, then the consumer index and the waiting list
    /// are rebuilt from what it read.
    func fullRun(trigger: String) async -> RunReport {
        var started = template
        started.trigger = trigger
        let index = Box<[String: [CompactText: ConsumerMatches]]>([:])
        let rules = Dictionary(planner.gateways.map { ($0.name, $0.match) }, uniquingKeysWith: { a, _ in a })
        let current = hooks.makeSource()
        source.withLock { $0 = current }
        var run = SyncRun(
            source: current, sourceType: sourceType, gateways: gateways, planner: planner, journal: journal,
            runID: hooks.newRunID(), started: started, logger: logger, now: { [clock] in Int64(clock()) },
            shouldStop: shouldStop)
        run.observeSnapshots = { snapshots in
            var built: [String: [CompactText: ConsumerMatches]] = [:]
            for snapshot in snapshots {
                let rule = rules[snapshot.name] ?? .recommended
                for consumer in snapshot.consumers {
                    guard let value = MatchKey.value(of: consumer, rule.consumer) else { continue }
                    let key = MatchKey.key(value, as: rule.user)
                    if built[snapshot.name]?[key] != nil {
                        built[snapshot.name]?[key]?.add(consumer.id)
                    } else {
                        built[snapshot.name, default: [:]][key] = .one(consumer.id)
                    }
                }
            }
            index.withLock { $0 = built }
        }
        let (lastGood, disabled) = state.withLock { ($0.lastGoodUsers, $0.disabledByUs) }
        var options = RunOptions(dryRun: false, lastGoodUsers: lastGood)
        options.disabledByUs = disabled
        // The hourly brake holds for full runs too: a restart after exit 3 cannot apply unreviewed
        // what the brake held back.
        options.extraBrake = { [self] plan in rateRefusal(plan, at: now) }
        let report = await run.run(options)
        state.withLock { s in
            s.index = index.withLock { $0 }
            if report.refused == nil, let plan = report.plan {
                s.waiting = plan.waiting
                if report.exitStatus == .success || report.exitStatus == .changes, let users = report.users { s.lastGoodUsers = users }
            }
            record(report.plan, report.outcomes, into: &s, at: Int64(clock()))
            s.status.lastFull = report
            s.status.uncounted.append(report)
        }
        publish()
        return report
    }

    /// The exit code that ends the session after a full run, or nil to go on. Failed writes do not
    /// end it (the next resync retries them); a refusal or an untrustworthy directory does.
    func stopCode(_ report: RunReport) -> ExitStatus? {
        guard let refused = report.refused else { return nil }
        logger.error("watch stops: a full reconciliation was refused", metadata: ["watch.cause": "\(refused.cause.rawValue)"])
        return refused.exitCode
    }

    // MARK: Targeted reconciliations

    /// The consumers a change touches: those whose match value is the user's before or now.
    func apply(_ changes: [(before: DirectoryUser?, now: DirectoryUser?, at: Double?)]) async -> ExitStatus? {
        var targets: [String: Set<ConsumerID>] = [:]
        var users: [DirectoryUser] = []
        let index = state.withLock { $0.index }
        for change in changes {
            if let now = change.now { users.append(now) }
            for gateway in planner.gateways {
                for user in [change.before, change.now].compactMap({ $0 }) {
                    guard let value = MatchKey.value(of: user, gateway.match.user) else { continue }
                    for id in index[gateway.name]?[MatchKey.key(value, as: gateway.match.user)]?.ids ?? [] {
                        targets[gateway.name, default: []].insert(id)
                    }
                }
            }
        }
        // The latest state of each user wins (a user changed twice in one batch).
        var latest: [String: DirectoryUser] = [:]
        for user in users { latest[user.id.rawValue] = user }
        let code = await reconcile(targets, directory: Array(latest.values), reason: "change")
        let t = clock()
        state.withLock { s in
            s.status.events += Int64(changes.count)
            s.status.newEvents += Int64(changes.count)
            if let at = changes.compactMap(\.at).max() { s.status.lastLag = max(0, t - at) }
        }
        return code
    }

    /// Grace periods that came due: their consumers, with their users looked up in the directory
    /// (an error there postpones them to the next tick; it never makes a user missing).
    func applyDue() async -> ExitStatus? {
        let t = now
        let (due, retry) = state.withLock { s in
            defer { s.retry = [:] }
            return (s.waiting.filter { $0.disableAt <= t }.map { ($0.gateway, $0.consumer) }, s.retry)
        }
        var candidates = due
        for gateway in gateways {
            for id in (retry[gateway.name] ?? []).sorted() {
                if let consumer = try? await gateway.readConsumer(id) { candidates.append((gateway.name, consumer)) }
            }
        }
        guard !candidates.isEmpty, let source = source.withLock({ $0 }) else { return nil }
        var targets: [String: Set<ConsumerID>] = [:]
        var users: [DirectoryUser] = []
        for (gateway, consumer) in candidates {
            guard let rule = planner.gateways.first(where: { $0.name == gateway })?.match,
                let value = MatchKey.value(of: consumer, rule.consumer)
            else { continue }
            do {
                if case .present(let user) = try await source.lookup(value.string, by: rule.user) { users.append(user) }
                targets[gateway, default: []].insert(consumer.id)
            } catch {
                // Never "missing" because a lookup failed: the consumer waits for the next tick.
                logger.warning("watch: a user could not be looked up; next tick", metadata: ["watch.error": "\(error)"])
                state.withLock { $0.retry[gateway, default: []].insert(consumer.id) }
            }
        }
        return await reconcile(targets, directory: users, reason: "tick")
    }

    /// Plans and applies for just these consumers, read again from their gateways, against a
    /// directory of just these users (a consumer whose user is not among them is missing: every
    /// caller includes each affected consumer's user when it exists).
    func reconcile(_ targets: [String: Set<ConsumerID>], directory users: [DirectoryUser], reason: String) async -> ExitStatus? {
        guard !targets.isEmpty else { return nil }
        var snapshots: [GatewaySnapshot] = []
        let disabled = state.withLock { $0.disabledByUs }
        for gateway in gateways {
            guard let ids = targets[gateway.name], !ids.isEmpty else { continue }
            do {
                var consumers: [Consumer] = []
                for id in ids.sorted() { if let consumer = try await gateway.readConsumer(id) { consumers.append(consumer) } }
                let details = try await gateway.details(for: consumers.map(\.id))
                var snapshot = GatewaySnapshot(
                    name: gateway.name, consumers: consumers, ourBlocks: details.compactMapValues(\.ourBlock), details: details)
                snapshot.disabledEarlier = Dictionary(
                    uniqueKeysWithValues: (disabled[gateway.name] ?? [:]).map { (ConsumerID($0.key), $0.value) })
                snapshots.append(snapshot)
            } catch {
                // The gateway is down: nothing is planned against it; the next change, tick or resync retries.
                logger.warning("watch: gateway read failed; retried on the next tick", metadata: ["sync.gateway": "\(gateway.name)", "watch.error": "\(error)"])
                state.withLock { s in
                    s.failed = true
                    s.retry[gateway.name, default: []].formUnion(ids)
                }
            }
        }
        let t = now
        let directory = DirectorySnapshot(sourceType: sourceType, scope: "the directory", users: users)
        let plan = planner.plan(directory: directory, snapshots: snapshots, now: t)
        // The waiting list follows what this plan saw of these consumers.
        state.withLock { s in
            let touched = Set(snapshots.flatMap { snapshot in snapshot.consumers.map { "\(snapshot.name)\u{0}\($0.id)" } })
            s.waiting.removeAll { touched.contains("\($0.gateway)\u{0}\($0.consumer.id)") }
            s.waiting += plan.waiting
        }
        guard !plan.actions.isEmpty else { return nil }

        if let refusal = rateRefusal(plan, at: t) {
            let detail = refusal.detail
            logger.error("run refused", metadata: ["sync.cause": "brake-rate", "sync.detail": "\(detail)"])
            let run = state.withLock { $0.run }
            journalRun(.runRefused(.init(run: run, cause: Refusal.Cause.brakeRate.rawValue, detail: detail, planHash: plan.hash)))
            state.withLock { s in
                s.run = nil
                var report = RunReport(run: run, dryRun: false, sourceType: sourceType)
                report.plan = plan
                report.refused = Refusal(cause: .brakeRate, detail: detail)
                report.exitStatus = .refused
                s.status.lastFull = report
            }
            publish()
            return .refused
        }

        let run = state.withLock { $0.run }
        var executor = PlanExecutor(gateways: gateways, journal: journal, runID: run, logger: logger)
        let applied = await executor.apply(plan, shouldStop: shouldStop)
        logger.info(
            "watch: applied", metadata: ["watch.reason": "\(reason)", "sync.actions": .stringConvertible(plan.actions.count),
                                          "sync.failed": .stringConvertible(applied.errors.count)])
        state.withLock { s in
            var report = RunReport(run: s.run, dryRun: false, sourceType: sourceType)
            report.plan = plan
            report.outcomes = applied.outcomes
            s.status.uncounted.append(report)
            record(plan, applied.outcomes, into: &s, at: t)
            // A failed write is tried again on the next tick (re-read, re-planned, journaled again).
            for (i, action) in plan.actions.enumerated() {
                if case .failed? = applied.outcomes[i] { s.retry[action.gateway, default: []].insert(action.consumer.id) }
            }
            for (key, n) in plan.counts { s.counts[key, default: 0] += Int64(n) }
            if !applied.errors.isEmpty { s.failed = true }
        }
        return nil
    }

    /// The brake as a rate: disables in the last hour (from the journal and this session) plus the
    /// plan's would exceed `maxDisablePerHour`.
    func rateRefusal(_ plan: SyncPlan, at t: Int64) -> Refusal? {
        let disabling = Set(plan.actions.filter(\.kind.isDisabling).map { "\($0.gateway)\u{0}\($0.consumer.id)" }).count
        let inLastHour = state.withLock { s in s.recentDisables.filter { $0 > t - 3600 }.count }
        guard disabling > 0 && inLastHour + disabling > settings.maxDisablePerHour else { return nil }
        return Refusal(
            cause: .brakeRate,
            detail:
                "\(inLastHour) disables in the last hour and \(disabling) more now would exceed watch.max_disable_per_hour \(settings.maxDisablePerHour); review with `idp-sync sync --dry-run` and apply with `idp-sync sync --accept-plan`, then start the watch again")
    }

    /// Applied disables and restores update what the session remembers (the rate window, the
    /// consumers we disabled).
    private func record(_ plan: SyncPlan?, _ outcomes: [Int: ActionOutcome], into s: inout State, at t: Int64) {
        guard let plan else { return }
        for (i, action) in plan.actions.enumerated() where outcomes[i] == .applied {
            switch action.kind {
            case .disable:
                s.recentDisables.append(t)
                s.disabledByUs[action.gateway, default: [:]][action.consumer.id.rawValue] = t
            case .restore:
                s.disabledByUs[action.gateway]?[action.consumer.id.rawValue] = nil
            default: break
            }
        }
        s.recentDisables.removeAll { $0 <= t - 3600 }
    }

    /// Hands the status out once: what it carried as new is then counted.
    func publish() {
        let status = state.withLock { s in
            defer {
                s.status.newEvents = 0
                s.status.uncounted = []
            }
            return s.status
        }
        hooks.status(status)
    }

    // MARK: The `watch` runs in the journal

    func startEventsRun() {
        var started = template
        let id = hooks.newRunID()
        started.run = id
        started.trigger = "watch"
        guard journalRun(.runStarted(started)) else { return }
        state.withLock { s in
            s.run = id
            s.counts = [:]
            s.failed = false
        }
    }

    /// Appends a run record; a journal that cannot take it is logged (the writes that would follow
    /// fail on their own intents, so nothing is written unjournaled).
    @discardableResult
    func journalRun(_ event: JournalEvent) -> Bool {
        do {
            try journal.append(event)
            return true
        } catch {
            logger.error("cannot write the journal", metadata: ["watch.record": "\(event.name)", "watch.error": "\(error)"])
            return false
        }
    }

    func finishEventsRun() {
        let (run, counts, failed) = state.withLock { s in
            defer { s.run = nil }
            return (s.run, s.counts, s.failed)
        }
        guard let run else { return }
        journalRun(
            .runFinished(
                .init(
                    run: run, outcome: failed ? "failed" : "ok", exitCode: failed ? 1 : 0, planHash: nil,
                    counts: counts, stopped: shouldStop() ? true : nil)))
    }

}

/// The managed consumers of one match value in the watch's index: almost always one, held inline
/// (the index has an entry per consumer for as long as the watch runs).
enum ConsumerMatches: Sendable {
    case one(ConsumerID)
    case many([ConsumerID])

    mutating func add(_ id: ConsumerID) {
        switch self {
        case .one(let first): self = .many([first, id])
        case .many(let list): self = .many(list + [id])
        }
    }

    var ids: [ConsumerID] {
        switch self {
        case .one(let id): return [id]
        case .many(let list): return list
        }
    }
}
