import SyncCore

/// The outcome of one action in a real run.
public enum ActionOutcome: Hashable, Sendable {
    case applied
    case failed(String)
}

/// What a run did or would do; printed as text or as the JSON report of docs/report.md.
public struct RunReport: Sendable {
    public var run: String?
    public var dryRun: Bool
    public var exitStatus: ExitStatus = .success
    public var planHash: String?
    public var sourceType: String
    public var users: Int?
    public var sourceComplete = false
    public var gateways: [(name: String, managed: Int)] = []
    public var plan: SyncPlan?
    /// The `now` the plan was made for: "disable at … (in …)" counts from it, not from whenever
    /// the report is printed.
    public var plannedAt: Int64?
    public var outcomes: [Int: ActionOutcome] = [:]
    public var refused: Refusal?
    public var errors: [String] = []
    /// Consumers a command chose not to touch, with why (restore: changed since the run).
    public var skipped: [String] = []

    public init(run: String?, dryRun: Bool, sourceType: String) {
        self.run = run
        self.dryRun = dryRun
        self.sourceType = sourceType
    }

    public var counts: [String: Int] { plan?.counts ?? [:] }

    /// The JSON report, on every exit path.
    public var json: JSONValue {
        var actions: [JSONValue] = []
        for (i, action) in (plan?.actions ?? []).enumerated() {
            var entry = action.reportFields
            entry["reason"] = .string(action.reason)
            if !dryRun, refused == nil {
                switch outcomes[i] {
                case .applied: entry["outcome"] = "applied"
                case .failed(let error):
                    entry["outcome"] = "failed"
                    entry["error"] = .string(error)
                case nil: entry["outcome"] = "skipped"
                }
            }
            actions.append(.object(entry))
        }
        let findings: [JSONValue] = (plan?.findings ?? []).map { finding in
            [
                "gateway": .string(finding.gateway), "situation": .string(finding.situation.rawValue),
                "consumer": finding.consumer.json, "user": finding.user?.json ?? .null,
                "reason": .string(finding.reason),
            ]
        }
        return [
            // A reader that meets a higher format_version than it knows says so instead of guessing.
            "format_version": "1",
            "run": JSONValue(run),
            "dry_run": .bool(dryRun),
            "exit_code": .int(Int64(exitStatus.rawValue)),
            "plan_hash": JSONValue(planHash),
            "source": [
                "type": .string(sourceType), "users": users.map { .int(Int64($0)) } ?? .null,
                "complete": .bool(sourceComplete),
            ],
            "gateways": .array(gateways.map { ["name": .string($0.name), "managed": JSONValue($0.managed)] }),
            "actions": .array(actions),
            "findings": .array(findings),
            "counts": .object(counts.mapValues { .int(Int64($0)) }),
            "refused": refused.map { ["cause": .string($0.cause.rawValue), "detail": .string($0.detail)] } ?? .null,
            "errors": JSONValue(errors),
            "skipped": JSONValue(skipped),
            "waiting": .array(
                (plan?.waiting ?? []).map { wait in
                    [
                        "gateway": .string(wait.gateway), "situation": .string(wait.situation.rawValue),
                        "consumer": wait.consumer.json, "user": wait.user?.json ?? .null,
                        "disable_at": .string(TimeFormat.rfc3339(wait.disableAt)),
                    ]
                }),
        ]
    }
}

extension Consumer {
    /// `{"id","username","custom_id"}` as journaled and reported.
    public var json: JSONValue {
        ["id": .string(id.rawValue), "username": JSONValue(username), "custom_id": JSONValue(customID)]
    }
}

extension DirectoryUser {
    public var json: JSONValue {
        ["id": .string(id.rawValue), "username": JSONValue(username), "state": .string(state.rawValue)]
    }
}

extension KeyRef {
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["id": .string(id.rawValue), "fingerprint": .string(fingerprint)]
        if let expiresAt { fields["expires_at"] = .string(TimeFormat.rfc3339(expiresAt)) }
        return .object(fields)
    }
}

extension CredentialRef {
    /// `{type, id, identity}`: never a secret (the adapter keeps only what names the credential).
    public var json: JSONValue { ["type": .string(type), "id": .string(id), "identity": .string(identity)] }
}

extension SyncAction {
    /// An action as the JSON report shows it (the journal has its own encoding: JournalEvent).
    public var reportFields: [String: JSONValue] {
        [
            "gateway": .string(gateway), "action": .string(kind.rawValue), "situation": .string(situation.rawValue),
            "consumer": consumer.json, "user": user?.json ?? .null, "keys": .array(keys.map(\.json)),
            "credentials": .array(credentials.map(\.json)),
        ]
    }
}
