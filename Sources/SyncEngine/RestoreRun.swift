import Logging
import SyncCore

/// `restore --run ID`: undoes what one run flagged and disabled, and nothing a person did.
///
/// A consumer is restored only if our marks on it are still exactly what that run left; otherwise
/// it is skipped as changed since (a later run or a person acted on it). Journaled as its own run.
public struct RestoreRun: Sendable {
    public var gateways: [any Gateway]
    public var journal: (any JournalStore)?
    public var runID: String?
    /// The `run-started` record (its `run` and `restore_of` are set here).
    public var started: JournalEvent.RunStarted
    public var logger: Logger

    public init(
        gateways: [any Gateway], journal: (any JournalStore)?, runID: String?, started: JournalEvent.RunStarted,
        logger: Logger
    ) {
        self.gateways = gateways
        self.journal = journal
        self.runID = runID
        self.started = started
        self.logger = logger
    }

    /// What one run did to one consumer, from its applied outcomes.
    struct Undo {
        var gateway: String
        var consumer: Consumer
        var situation: Situation
        var tagsLeft: [String]
        var disabled: Bool
    }

    static func undos(of entries: [JournalEntry]) -> [Undo] {
        var byKey: [String: Undo] = [:]
        var order: [String] = []
        for entry in entries {
            guard case .outcome(let record, _, .applied) = entry.event, record.action == .flag || record.action == .disable
            else { continue }
            let key = record.gateway + "\u{0}" + record.consumer.id.rawValue
            var consumer = record.consumer
            consumer.tags = record.after
            if byKey[key] == nil { order.append(key) }
            let disabled = (byKey[key]?.disabled ?? false) || record.action == .disable
            byKey[key] = Undo(
                gateway: record.gateway, consumer: consumer, situation: record.situation, tagsLeft: record.after,
                disabled: disabled)
        }
        return order.map { byKey[$0]! }
    }

    public func run(undoing target: String, entries: [JournalEntry], dryRun: Bool) async -> RunReport {
        var report = RunReport(run: dryRun ? nil : runID, dryRun: dryRun, sourceType: "journal")
        let journal = dryRun ? nil : self.journal
        if let journal {
            var start = started
            start.run = runID
            start.restoreOf = target
            guard journal.startRun(start, report: &report) else { return report }
        }
        let byName = Dictionary(gateways.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var actions: [SyncAction] = []
        for undo in Self.undos(of: entries) {
            let name = RunReport.name(undo.consumer)
            guard let gateway = byName[undo.gateway] else {
                report.skipped.append("gateway \(undo.gateway): \(name): that gateway is not in this config")
                continue
            }
            do {
                guard let current = try await gateway.readConsumer(undo.consumer.id) else {
                    report.skipped.append("gateway \(undo.gateway): \(name): the consumer no longer exists")
                    continue
                }
                let ours = current.tagList.filter(Marks.isOurs)
                guard Set(ours) == Set(undo.tagsLeft.filter(Marks.isOurs)) else {
                    report.skipped.append(
                        "gateway \(undo.gateway): \(name): changed since run \(target) (its idp-sync marks are not what that run left)")
                    continue
                }
                if ours.isEmpty && !undo.disabled { continue }
                let details = try await gateway.details(for: [current.id])[current.id]
                let block = details?.ourBlock
                let kind: ActionKind = undo.disabled || block != nil ? .restore : .unflag
                actions.append(
                    SyncAction(
                        gateway: undo.gateway, kind: kind, situation: undo.situation, consumer: current, user: nil,
                        keys: kind == .restore ? details?.keys ?? [] : [], tagsAfter: Marks.foreign(current.tagList),
                        block: block, reason: "restore of run \(target), requested by an operator"))
            } catch {
                report.errors.append("\(error)")
            }
        }
        let plan = SyncPlan(actions: actions, findings: [], gateways: [])
        report.plan = plan
        report.planHash = plan.hash
        guard let journal else {
            report.exitStatus = report.errors.isEmpty ? .success : .error
            return report
        }
        var executor = PlanExecutor(gateways: gateways, journal: journal, runID: runID, logger: logger)
        let applied = await executor.apply(plan, shouldStop: { false })
        report.outcomes = applied.outcomes
        report.errors += applied.errors
        report.exitStatus = report.errors.isEmpty ? .success : .error
        do {
            try journal.append(
                .runFinished(
                    .init(
                        run: runID, outcome: report.errors.isEmpty ? "ok" : "failed",
                        exitCode: Int64(report.exitStatus.rawValue), planHash: plan.hash, restoreOf: target,
                        skipped: report.skipped)))
        } catch {
            report.errors.append("cannot write run-finished to the journal: \(error)")
            report.exitStatus = .error
        }
        return report
    }
}
