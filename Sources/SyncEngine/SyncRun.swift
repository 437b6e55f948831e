import Logging
import SyncCore

/// Options of one `sync` invocation.
public struct RunOptions: Sendable {
    public var dryRun: Bool
    public var acceptPlan: String?
    public var acceptUsers: Int?
    /// `users` of the last good run, read from the journal by the caller.
    public var lastGoodUsers: Int?
    /// Exit 2 when changes were planned or made; otherwise such a run exits 0.
    public var detailedExitCode: Bool
    /// Consumers the journal says idp-sync disabled and has not restored, by gateway (the caller reads it).
    public var disabledByUs: [String: [String: Int64]] = [:]
    /// One more brake after the regular ones (`watch`'s hourly rate); skipped for an accepted plan.
    public var extraBrake: (@Sendable (SyncPlan) -> Refusal?)?

    public init(
        dryRun: Bool, acceptPlan: String? = nil, acceptUsers: Int? = nil, lastGoodUsers: Int? = nil,
        detailedExitCode: Bool = false
    ) {
        self.dryRun = dryRun
        self.detailedExitCode = detailedExitCode
        self.acceptPlan = acceptPlan
        self.acceptUsers = acceptUsers
        self.lastGoodUsers = lastGoodUsers
    }
}

/// One reconciliation run (docs/operations.md): snapshots, plan, safety checks, then journaled writes.
///
/// No gateway is written before the directory and every gateway are read completely and the
/// plan passed every check. Each write is preceded by a durable intent and followed by its outcome.
public struct SyncRun: Sendable {
    public var source: any DirectorySource
    public var sourceType: String
    public var gateways: [any Gateway]
    public var planner: Planner
    /// Required for real runs; dry runs write nothing.
    public var journal: (any JournalStore)?
    public var runID: String?
    /// The `run-started` record (its `run` is set from `runID`).
    public var started: JournalEvent.RunStarted
    public var logger: Logger
    public var now: @Sendable () -> Int64
    /// Polled between writes: true after SIGTERM, so the write in flight finishes and the run stops.
    public var shouldStop: @Sendable () -> Bool
    /// Sees the gateway snapshots the final plan was made from (`watch` indexes their consumers).
    public var observeSnapshots: (@Sendable ([GatewaySnapshot]) -> Void)?

    public init(
        source: any DirectorySource, sourceType: String, gateways: [any Gateway], planner: Planner,
        journal: (any JournalStore)?, runID: String?,
        started: JournalEvent.RunStarted = .init(run: nil, version: "?", host: "?", uid: -1), logger: Logger,
        now: @escaping @Sendable () -> Int64, shouldStop: @escaping @Sendable () -> Bool = { false }
    ) {
        self.source = source
        self.sourceType = sourceType
        self.gateways = gateways
        self.planner = planner
        self.journal = journal
        self.runID = runID
        self.started = started
        self.logger = logger
        self.now = now
        self.shouldStop = shouldStop
    }

    /// Runs once and returns the report. Never throws: every failure becomes part of the report.
    public func run(_ options: RunOptions) async -> RunReport {
        var report = RunReport(run: options.dryRun ? nil : runID, dryRun: options.dryRun, sourceType: sourceType)
        var logger = self.logger
        if let runID, !options.dryRun { logger[metadataKey: "sync.run"] = "\(runID)" }
        let journal = options.dryRun ? nil : self.journal

        var start = started
        start.run = runID
        if let accepted = options.acceptPlan { start.acceptedPlan = accepted.lowercased() }
        if let journal, !journal.startRun(start, report: &report) { return report }

        // 1. Snapshots, all at once; no write before every one is complete.
        let started = ContinuousClock.now
        async let directoryRead = readDirectory()
        let gatewayReads = await readGateways()
        let directoryResult = await directoryRead
        let directory: DirectorySnapshot
        switch directoryResult {
        case .success(let snapshot):
            directory = snapshot
            report.users = snapshot.users.count
            report.sourceComplete = true
            logger.info(
                "directory read",
                metadata: [
                    "sync.users": .stringConvertible(snapshot.users.count),
                    "sync.deactivated": .stringConvertible(snapshot.users.filter { $0.state == .deactivated }.count),
                    "sync.duration_seconds": Self.seconds(since: started),
                ])
        case .failure(let error):
            return refuse(&report, Refusal(cause: .sourceError, detail: error.description), journal: journal, logger: logger)
        }
        var snapshots: [GatewaySnapshot] = []
        for (gateway, result) in zip(gateways, gatewayReads) {
            switch result {
            case .success(let snapshot):
                snapshots.append(snapshot)
                report.gateways.append((gateway.name, snapshot.consumers.count))
                logger.info(
                    "gateway read",
                    metadata: [
                        "sync.gateway": "\(gateway.name)", "sync.managed": .stringConvertible(snapshot.consumers.count),
                        "sync.disabled_by_us": .stringConvertible(snapshot.ourBlocks.count), "sync.duration_seconds": Self.seconds(since: started),
                    ])
            case .failure(let error):
                report.errors.append(error.description)
                return refuse(
                    &report, Refusal(cause: .gatewayError, detail: error.description), journal: journal, logger: logger)
            }
        }

        // 2. Is the directory believable?
        if let refusal = SafetyChecks.checkSource(
            users: directory.users.count, lastGoodUsers: options.lastGoodUsers, policy: planner.policy,
            acceptUsers: options.acceptUsers)
        {
            return refuse(&report, refusal, journal: journal, logger: logger)
        }

        // 3. Plan; read keys and blocks of the consumers acted on; plan again with them.
        for index in snapshots.indices {
            if let earlier = options.disabledByUs[snapshots[index].name] {
                snapshots[index].disabledEarlier = Dictionary(
                    uniqueKeysWithValues: earlier.map { (ConsumerID($0.key), $0.value) })
            }
        }
        let now = self.now()
        report.plannedAt = now
        var plan = planner.plan(directory: directory, snapshots: snapshots, now: now)
        if !plan.detailsNeeded.isEmpty {
            for (index, gateway) in gateways.enumerated() {
                guard let ids = plan.detailsNeeded[gateway.name], !ids.isEmpty else { continue }
                do {
                    snapshots[index].details = try await gateway.details(for: ids.sorted())
                } catch {
                    let detail = "\(error)"
                    report.errors.append(detail)
                    return refuse(&report, Refusal(cause: .gatewayError, detail: detail), journal: journal, logger: logger)
                }
            }
            plan = planner.plan(directory: directory, snapshots: snapshots, now: now)
        }
        observeSnapshots?(snapshots)
        report.plan = plan
        report.planHash = plan.hash
        var planMetadata: Logger.Metadata = [
            "sync.actions": .stringConvertible(plan.actions.count), "sync.plan_hash": "\(plan.hash)",
            "sync.duration_seconds": Self.seconds(since: started),
        ]
        for (key, n) in plan.counts { planMetadata["sync.count.\(key)"] = .stringConvertible(n) }
        logger.info("plan ready", metadata: planMetadata)

        // 4. Brakes, unless the operator accepted exactly this plan.
        if let accepted = options.acceptPlan {
            if accepted.lowercased() != plan.hash {
                return refuse(
                    &report,
                    Refusal(cause: .planMismatch, detail: "the plan's hash is now \(plan.hash), not the accepted \(accepted)"),
                    journal: journal, logger: logger)
            }
        } else if let refusal = SafetyChecks.checkBrakes(plan: plan, policy: planner.policy) ?? options.extraBrake?(plan) {
            return refuse(&report, refusal, journal: journal, logger: logger)
        }

        var statuses: [ExitStatus] = []
        if plan.hasConflict {
            statuses.append(.error)
            for finding in plan.findings where finding.situation == .conflict {
                report.errors.append("gateway \(finding.gateway): consumer \(RunReport.name(finding.consumer)): \(finding.reason)")
            }
        }
        if plan.hasChanges && options.detailedExitCode { statuses.append(.changes) }

        guard let journal else {
            report.exitStatus = ExitStatus.combine(statuses)
            return report
        }

        // 5. Apply, one journaled action at a time.
        var executor = PlanExecutor(gateways: gateways, journal: journal, runID: runID, logger: logger)
        let writesStarted = ContinuousClock.now
        let applied = await executor.apply(plan, shouldStop: shouldStop)
        report.outcomes = applied.outcomes
        let failures = applied.outcomes.values.filter { if case .failed = $0 { return true } else { return false } }.count
        logger.info(
            "writes done",
            metadata: [
                "sync.applied": .stringConvertible(applied.outcomes.count - failures), "sync.failed": .stringConvertible(failures),
                "sync.stopped": .stringConvertible(applied.stopped), "sync.duration_seconds": Self.seconds(since: writesStarted),
            ])
        report.errors += applied.errors
        if !applied.errors.isEmpty { statuses.append(.error) }
        report.exitStatus = ExitStatus.combine(statuses)

        let finished = JournalEvent.runFinished(
            .init(
                run: runID, outcome: applied.errors.isEmpty && !plan.hasConflict ? "ok" : "failed",
                exitCode: Int64(report.exitStatus.rawValue), planHash: plan.hash, users: Int64(directory.users.count),
                counts: report.counts.mapValues { Int64($0) }, stopped: applied.stopped))
        do {
            try journal.append(finished)
        } catch {
            report.errors.append("cannot write run-finished to the journal: \(error)")
            report.exitStatus = ExitStatus.combine([report.exitStatus, .error])
        }
        return report
    }

    /// Seconds since `start`, to the millisecond, as a number (JSON logs keep it one).
    static func seconds(since start: ContinuousClock.Instant) -> Logger.Metadata.Value {
        let d = ContinuousClock.now - start
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return .stringConvertible(Double(ms) / 1000)
    }

    private func readDirectory() async -> Result<DirectorySnapshot, SourceError> {
        do {
            return .success(try await source.snapshot())
        } catch let error as SourceError {
            return .failure(error)
        } catch {
            return .failure(SourceError("\(error)"))
        }
    }

    private func readGateways() async -> [Result<GatewaySnapshot, GatewayError>] {
        await withTaskGroup(of: (Int, Result<GatewaySnapshot, GatewayError>).self) { group in
            for (index, gateway) in gateways.enumerated() {
                group.addTask {
                    do {
                        return (index, .success(try await gateway.snapshot()))
                    } catch let error as GatewayError {
                        return (index, .failure(error))
                    } catch {
                        return (index, .failure(GatewayError("gateway \(gateway.name): \(error)")))
                    }
                }
            }
            var results = [Result<GatewaySnapshot, GatewayError>?](repeating: nil, count: gateways.count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    private func refuse(_ report: inout RunReport, _ refusal: Refusal, journal: (any JournalStore)?, logger: Logger)
        -> RunReport
    {
        report.refused = refusal
        report.exitStatus = refusal.exitCode
        logger.error("run refused", metadata: ["sync.cause": "\(refusal.cause.rawValue)", "sync.detail": "\(refusal.detail)"])
        if let journal {
            do {
                try journal.append(
                    .runRefused(
                        .init(run: runID, cause: refusal.cause.rawValue, detail: refusal.detail, planHash: report.planHash)))
            } catch {
                report.errors.append("cannot write run-refused to the journal: \(error)")
            }
        }
        return report
    }
}

extension SyncPlan {
    public var hasChanges: Bool { !actions.isEmpty }
}
