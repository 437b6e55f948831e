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

    mutating func apply(_ plan: SyncPlan, shouldStop: () -> Bool) async -> Result {
        var result = Result()
        let byName = Dictionary(gateways.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, action) in plan.actions.enumerated() {
            if shouldStop() {
                result.stopped = true
                result.errors.append("stopped by a signal before \(plan.actions.count - index) remaining actions")
                break
            }
            guard let gateway = byName[action.gateway] else { continue }
            let consumerKey = "\(action.gateway)\u{0}\(action.consumer.id.rawValue)"
            let before = expectedTags[action.gateway]?[action.consumer.id] ?? action.consumer.tagList
            let after = action.tagsAfter ?? before
            var fields = action.journalFields
            fields["run"] = JSONValue(runID)
            fields["before"] = JSONValue(before)
            fields["after"] = JSONValue(after)
            fields["reason"] = .string(action.reason)
            var intent = fields
            intent["event"] = "intent"
            let intentSeq: Int64
            do {
                intentSeq = try journal.append(intent)
            } catch {
                result.errors.append("cannot write the journal (\(error)); stopped before writing to gateway \(action.gateway)")
                result.stopped = true
                break
            }

            var outcome: ActionOutcome
            if failedConsumers.contains(consumerKey) {
                outcome = .failed("skipped: an earlier action on this consumer failed")
            } else {
                do {
                    try await perform(action, on: gateway, before: before, after: after)
                    outcome = .applied
                    expectedTags[action.gateway, default: [:]][action.consumer.id] = after
                } catch let error as ChangedSincePlan {
                    outcome = .failed("changed since plan: \(error.detail)")
                } catch {
                    outcome = .failed("\(error)")
                }
            }
            if case .failed(let error) = outcome {
                failedConsumers.insert(consumerKey)
                result.errors.append(
                    "gateway \(action.gateway): \(action.kind.rawValue) \(RunReport.name(action.consumer)) failed: \(error)")
                logger.warning(
                    "action failed",
                    metadata: [
                        "sync.gateway": "\(action.gateway)", "sync.action": "\(action.kind.rawValue)",
                        "sync.consumer": "\(action.consumer.id)", "sync.error": "\(error)",
                    ])
            } else {
                logger.info(
                    "action applied",
                    metadata: [
                        "sync.gateway": "\(action.gateway)", "sync.action": "\(action.kind.rawValue)",
                        "sync.consumer": "\(action.consumer.id)",
                    ])
            }
            result.outcomes[index] = outcome

            var record = fields
            record["event"] = "outcome"
            record["intent"] = .int(intentSeq)
            switch outcome {
            case .applied: record["outcome"] = "applied"
            case .failed(let error):
                record["outcome"] = "failed"
                record["error"] = .string(error)
            }
            do {
                try journal.append(record)
            } catch {
                result.errors.append("cannot write the journal (\(error)); stopped after one write")
                result.stopped = true
                break
            }
        }
        return result
    }

    struct ChangedSincePlan: Error {
        var detail: String
    }

    private func perform(_ action: SyncAction, on gateway: any Gateway, before: [String], after: [String]) async throws {
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
        let newTags = Marks.foreign(current.tagList) + after.filter(Marks.isOurs)
        switch action.kind {
        case .flag, .unflag:
            _ = try await gateway.setTags(current.id, newTags)
        case .disable:
            _ = try await gateway.addBlockPlugin(current.id)
            _ = try await gateway.setTags(current.id, newTags)
        case .restore:
            if let plugin = action.plugin { try await gateway.removePlugin(plugin, of: current.id) }
            _ = try await gateway.setTags(current.id, newTags)
        case .deleteKey:
            for key in action.keys { try await gateway.deleteKey(key.id, of: current.id) }
        }
    }
}
