import Logging
import SyncCore

/// Carries out a plan: for each action a durable intent, the gateway write, then the outcome.
///
/// Right before each write the consumer is read again; if it changed so that the action no longer
/// applies, the action is journaled `failed` with `changed since plan`. If the journal cannot take
/// an intent, that write is not made and nothing after it either.
struct PlanExecutor {
    let gateways: [any Gateway]
    let journal: any JournalStore
    let runID: String?
    let logger: Logger

    struct Result {
        var outcomes: [Int: ActionOutcome] = [:]
        var errors: [String] = []
        var stopped = false
    }

    /// Our tags as we expect them on each consumer, advanced as actions apply.
    private var expectedTags: [String: [ConsumerID: [String]]] = [:]
    private var failedConsumers: Set<ConsumerKey> = []

    init(gateways: [any Gateway], journal: any JournalStore, runID: String?, logger: Logger) {
        self.gateways = gateways
        self.journal = journal
        self.runID = runID
        self.logger = logger
    }

    /// One journaled action of a batch.
    struct Pending {
        var index: Int
        var action: SyncAction
        var record: JournalEvent.ActionRecord
        var intentSeq: Int64
        var before: [String]
        var after: [String]
    }

    /// Actions per gateway in one wave, as a multiple of its `concurrency`.
    static let waveFactor = 4

    /// The next wave: in plan order, at most `limit` actions per gateway, one per consumer, and
    /// never an action ahead of an earlier one on the same consumer. Deterministic.
    static func nextWave(_ remaining: [Int], _ actions: [SyncAction], limit: [String: Int]) -> [Int] {
        var wave: [Int] = []
        var consumers: Set<ConsumerKey> = []
        var perGateway: [String: Int] = [:]
        var full = 0
        for i in remaining {
            let action = actions[i]
            let key = Self.key(action)
            let cap = max(1, limit[action.gateway] ?? 1)
            if perGateway[action.gateway, default: 0] < cap && !consumers.contains(key) {
                wave.append(i)
                perGateway[action.gateway, default: 0] += 1
                // Every gateway's share taken: nothing further down can join this wave.
                if perGateway[action.gateway] == cap {
                    full += 1
                    if full == limit.count { break }
                }
            }
            consumers.insert(key)  // later actions of this consumer wait for a later wave
        }
        return wave
    }

    /// Applies the plan in waves. A wave's intents are made durable together (one fsync), before
    /// any of its writes; its writes run at most `concurrency` at a time per gateway, the next
    /// starting as soon as one ends; its outcomes are journaled together, in plan order. A stop
    /// request lets the writes in flight finish; a write of the wave not yet started is journaled
    /// as not attempted.
    mutating func apply(_ plan: SyncPlan, shouldStop: () -> Bool) async -> Result {
        var result = Result()
        let byName = Dictionary(gateways.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let concurrency = Dictionary(gateways.map { ($0.name, max(1, $0.concurrency)) }, uniquingKeysWith: { first, _ in first })
        let limit = concurrency.mapValues { $0.multipliedReportingOverflow(by: Self.waveFactor).partialValue }
        var remaining = Array(plan.actions.indices).filter { byName[plan.actions[$0].gateway] != nil }
        var notAttempted = 0
        var signalled = false
        while !remaining.isEmpty {
            if shouldStop() {
                signalled = true
                break
            }
            let wave = Self.nextWave(remaining, plan.actions, limit: limit)
            let inWave = Set(wave)
            remaining.removeAll { inWave.contains($0) }

            // 1. Durable intents, in plan order. A write whose intent is not on disk is not made.
            var pending: [Pending] = wave.map { index in
                let action = plan.actions[index]
                let before = expectedTags[action.gateway]?[action.consumer.id] ?? action.consumer.tagList
                let after = action.tagsAfter ?? before
                let record = JournalEvent.ActionRecord(
                    run: runID, gateway: action.gateway, action: action.kind, situation: action.situation,
                    consumer: action.consumer, user: action.user, keys: action.keys, credentials: action.credentials,
                    before: before, after: after, reason: action.reason)
                return Pending(index: index, action: action, record: record, intentSeq: 0, before: before, after: after)
            }
            do {
                let seqs = try journal.append(contentsOf: pending.map { .intent($0.record) })
                for i in pending.indices { pending[i].intentSeq = seqs[i] }
            } catch {
                result.errors.append("cannot write the journal (\(error)); stopped before writing to the gateways")
                result.stopped = true
                break
            }

            // 2. The writes, at most `concurrency` in flight per gateway.
            let skipped = Set(pending.filter { failedConsumers.contains(Self.key($0.action)) }.map(\.index))
            var queues: [String: ArraySlice<Pending>] = [:]
            for item in pending where !skipped.contains(item.index) { queues[item.action.gateway, default: []].append(item) }
            var outcomes: [Int: ActionOutcome] = [:]
            var stopping = false
            await withTaskGroup(of: (Int, String, ActionOutcome).self) { group in
                func startNext(_ name: String) {
                    guard !stopping, let gateway = byName[name], let item = queues[name]?.popFirst() else { return }
                    if shouldStop() {
                        stopping = true
                        return
                    }
                    group.addTask {
                        do {
                            try await Self.perform(item.action, on: gateway, before: item.before, after: item.after)
                            return (item.index, name, .applied)
                        } catch let error as ChangedSincePlan {
                            return (item.index, name, .failed("changed since plan: \(error.detail)"))
                        } catch {
                            return (item.index, name, .failed("\(error)"))
                        }
                    }
                }
                for name in queues.keys.sorted() {
                    for _ in 0..<(concurrency[name] ?? 1) { startNext(name) }
                }
                for await (index, name, outcome) in group {
                    outcomes[index] = outcome
                    startNext(name)
                }
            }
            if stopping { signalled = true }

            // 3. Outcomes, in plan order, durable together.
            var records: [JournalEvent] = []
            for item in pending {
                let action = item.action
                let outcome: ActionOutcome
                if skipped.contains(item.index) {
                    outcome = .failed("skipped: an earlier action on this consumer failed")
                } else if let done = outcomes[item.index] {
                    outcome = done
                } else {
                    outcome = .failed(Self.notAttempted)
                    notAttempted += 1
                }
                switch outcome {
                case .applied:
                    expectedTags[action.gateway, default: [:]][action.consumer.id] = item.after
                    logger.info(
                        "action applied",
                        metadata: [
                            "sync.gateway": "\(action.gateway)", "sync.action": "\(action.kind.rawValue)",
                            "sync.consumer": "\(action.consumer.id)",
                        ])
                case .failed(let error) where error == Self.notAttempted:
                    break
                case .failed(let error):
                    failedConsumers.insert(Self.key(action))
                    result.errors.append(
                        "gateway \(action.gateway): \(action.kind.rawValue) \(RunReport.name(action.consumer)) failed: \(error)")
                    logger.warning(
                        "action failed",
                        metadata: [
                            "sync.gateway": "\(action.gateway)", "sync.action": "\(action.kind.rawValue)",
                            "sync.consumer": "\(action.consumer.id)", "sync.error": "\(error)",
                        ])
                }
                result.outcomes[item.index] = outcome
                records.append(.outcome(item.record, intent: item.intentSeq, result: outcome))
            }
            do {
                try journal.append(contentsOf: records)
            } catch {
                result.errors.append("cannot write the journal (\(error)); stopped")
                result.stopped = true
                break
            }
            if stopping { break }
        }
        if signalled {
            result.stopped = true
            result.errors.append("stopped by a signal before \(notAttempted + remaining.count) remaining actions")
        }
        return result
    }

    /// The outcome of a write that a stop request kept from starting.
    static let notAttempted = "not attempted: stopped by a signal"

    /// A consumer of a gateway (no String is made: waves are built by scanning what remains).
    struct ConsumerKey: Hashable {
        var gateway: String
        var consumer: ConsumerID
    }

    static func key(_ action: SyncAction) -> ConsumerKey { ConsumerKey(gateway: action.gateway, consumer: action.consumer.id) }

    struct ChangedSincePlan: Error {
        var detail: String
    }

    private static func perform(_ action: SyncAction, on gateway: any Gateway, before: [String], after: [String]) async throws {
        guard let current = try await gateway.readConsumer(action.consumer.id) else {
            throw ChangedSincePlan(detail: "the consumer no longer exists")
        }
        if current.username != action.consumer.username || current.customID != action.consumer.customID {
            throw ChangedSincePlan(detail: "its username or custom_id changed")
        }
        let ours = current.tagList.filter(Marks.isOurs)
        if Set(ours) != Set(before.filter(Marks.isOurs)) {
            throw ChangedSincePlan(detail: "its idp-sync tags changed")
        }
        // Keep every tag that is not ours as it is now; set ours as planned.
        let foreign = Marks.foreign(current.tagList)
        let marks = after.filter(Marks.isOurs)
        switch action.kind {
        case .flag, .unflag:
            _ = try await gateway.mark(current.id, with: marks, keeping: foreign)
        case .disable:
            _ = try await gateway.block(current.id)
            _ = try await gateway.mark(current.id, with: marks, keeping: foreign)
        case .restore:
            if let block = action.block { try await gateway.unblock(block, of: current.id) }
            _ = try await gateway.mark(current.id, with: marks, keeping: foreign)
        case .deleteKey:
            for key in action.keys { try await gateway.deleteKey(key.id, of: current.id) }
        case .deleteCredential:
            for credential in action.credentials { try await gateway.deleteCredential(credential, of: current.id) }
        }
    }
}
