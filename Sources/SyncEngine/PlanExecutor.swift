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
    private var failedConsumers: Set<String> = []

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

    /// The next batch: in plan order, at most `concurrency` actions per gateway, one per consumer,
    /// and never an action ahead of an earlier one on the same consumer. Deterministic.
    static func nextBatch(_ remaining: [Int], _ actions: [SyncAction], concurrency: [String: Int]) -> [Int] {
        var batch: [Int] = []
        var consumers: Set<String> = []
        var perGateway: [String: Int] = [:]
        for i in remaining {
            let action = actions[i]
            let key = "\(action.gateway)\u{0}\(action.consumer.id.rawValue)"
            let room = perGateway[action.gateway, default: 0] < max(1, concurrency[action.gateway] ?? 1)
            if room && !consumers.contains(key) { batch.append(i) }
            consumers.insert(key)  // later actions of this consumer wait for a later batch
            if batch.last == i { perGateway[action.gateway, default: 0] += 1 }
        }
        return batch
    }

    mutating func apply(_ plan: SyncPlan, shouldStop: () -> Bool) async -> Result {
        var result = Result()
        let byName = Dictionary(gateways.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let concurrency = Dictionary(gateways.map { ($0.name, $0.concurrency) }, uniquingKeysWith: { first, _ in first })
        var remaining = Array(plan.actions.indices).filter { byName[plan.actions[$0].gateway] != nil }
        while !remaining.isEmpty {
            if shouldStop() {
                result.stopped = true
                result.errors.append("stopped by a signal before \(remaining.count) remaining actions")
                break
            }
            let batch = Self.nextBatch(remaining, plan.actions, concurrency: concurrency)
            remaining.removeAll { batch.contains($0) }

            // 1. Durable intents, in plan order. A write whose intent is not on disk is not made.
            var pending: [Pending] = []
            var journalBroken = false
            for index in batch {
                let action = plan.actions[index]
                let before = expectedTags[action.gateway]?[action.consumer.id] ?? action.consumer.tagList
                let after = action.tagsAfter ?? before
                let record = JournalEvent.ActionRecord(
                    run: runID, gateway: action.gateway, action: action.kind, situation: action.situation,
                    consumer: action.consumer, user: action.user, keys: action.keys, credentials: action.credentials,
                    before: before, after: after, reason: action.reason)
                do {
                    let seq = try journal.append(.intent(record))
                    pending.append(Pending(index: index, action: action, record: record, intentSeq: seq, before: before, after: after))
                } catch {
                    result.errors.append("cannot write the journal (\(error)); stopped before writing to gateway \(action.gateway)")
                    journalBroken = true
                    break
                }
            }

            // 2. The writes of the batch, at the same time (each consumer at most once).
            let skipped = Set(pending.filter { failedConsumers.contains(Self.key($0.action)) }.map(\.index))
            let outcomes: [Int: ActionOutcome] = await withTaskGroup(of: (Int, ActionOutcome).self) { group in
                for item in pending where !skipped.contains(item.index) {
                    guard let gateway = byName[item.action.gateway] else { continue }
                    group.addTask {
                        do {
                            try await Self.perform(item.action, on: gateway, before: item.before, after: item.after)
                            return (item.index, .applied)
                        } catch let error as ChangedSincePlan {
                            return (item.index, .failed("changed since plan: \(error.detail)"))
                        } catch {
                            return (item.index, .failed("\(error)"))
                        }
                    }
                }
                var collected: [Int: ActionOutcome] = [:]
                for await (index, outcome) in group { collected[index] = outcome }
                return collected
            }

            // 3. Outcomes, in plan order.
            for item in pending {
                let action = item.action
                let outcome = skipped.contains(item.index)
                    ? ActionOutcome.failed("skipped: an earlier action on this consumer failed") : outcomes[item.index]!
                switch outcome {
                case .applied:
                    expectedTags[action.gateway, default: [:]][action.consumer.id] = item.after
                    logger.info(
                        "action applied",
                        metadata: [
                            "sync.gateway": "\(action.gateway)", "sync.action": "\(action.kind.rawValue)",
                            "sync.consumer": "\(action.consumer.id)",
                        ])
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
                do {
                    try journal.append(.outcome(item.record, intent: item.intentSeq, result: outcome))
                } catch {
                    result.errors.append("cannot write the journal (\(error)); stopped")
                    journalBroken = true
                    break
                }
            }
            if journalBroken {
                result.stopped = true
                break
            }
        }
        return result
    }

    static func key(_ action: SyncAction) -> String { "\(action.gateway)\u{0}\(action.consumer.id.rawValue)" }

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
