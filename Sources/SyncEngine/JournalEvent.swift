import SyncCore

/// One record of the audit journal (docs/journal.md), typed. This file is the journal format's one
/// encoding and decoding: `fields` writes a record (the store adds `seq`, `time`, `prev`, `hash`),
/// `JournalEntry(record:)` reads one. The JSON report has its own type (`RunReport.json`), so a
/// change here never changes the report by accident.
public enum JournalEvent: Sendable, Equatable {
    case runStarted(RunStarted)
    case intent(ActionRecord)
    case outcome(ActionRecord, intent: Int64, result: ActionOutcome)
    case runFinished(RunFinished)
    case runRefused(RunRefused)
    case journalStarted(JournalStarted)
    /// A record this version does not know (a newer writer); kept as read, never rewritten.
    case unknown(String)

    /// The journal format these records follow (`run-started.journal_format`).
    public static let format: Int64 = 1

    public struct RunStarted: Sendable, Equatable {
        public var run: String?
        public var dryRun = false
        public var version: String
        public var host: String
        public var uid: Int64
        public var configSHA256: String?
        public var journalFormat: Int64? = JournalEvent.format
        /// Set when opening the journal truncated a torn last line.
        public var repaired: String?
        /// The run before, killed before its last record, and its intents without an outcome.
        public var previousRunInterrupted: (run: String, intentsWithoutOutcome: [Int64])?
        /// Set on a restore: the run it undoes.
        public var restoreOf: String?
        /// What started the run when it was not `sync`: `watch-start`, `watch`, `watch-resync`.
        public var trigger: String?
        /// The plan hash an operator accepted (`sync --accept-plan`): its disables pass the brakes,
        /// so `watch`'s hourly rate does not count them.
        public var acceptedPlan: String?

        public init(
            run: String?, version: String, host: String, uid: Int64, configSHA256: String? = nil,
            repaired: String? = nil, previousRunInterrupted: (run: String, intentsWithoutOutcome: [Int64])? = nil,
            restoreOf: String? = nil
        ) {
            self.run = run
            self.version = version
            self.host = host
            self.uid = uid
            self.configSHA256 = configSHA256
            self.repaired = repaired
            self.previousRunInterrupted = previousRunInterrupted
            self.restoreOf = restoreOf
        }

        public static func == (a: RunStarted, b: RunStarted) -> Bool {
            a.run == b.run && a.dryRun == b.dryRun && a.version == b.version && a.host == b.host && a.uid == b.uid
                && a.configSHA256 == b.configSHA256 && a.journalFormat == b.journalFormat && a.repaired == b.repaired
                && a.previousRunInterrupted?.run == b.previousRunInterrupted?.run
                && a.previousRunInterrupted?.intentsWithoutOutcome == b.previousRunInterrupted?.intentsWithoutOutcome
                && a.restoreOf == b.restoreOf && a.trigger == b.trigger && a.acceptedPlan == b.acceptedPlan
        }
    }

    /// What an intent and its outcome say about one action.
    public struct ActionRecord: Sendable, Equatable {
        public var run: String?
        public var gateway: String
        public var action: ActionKind
        public var situation: Situation
        public var consumer: Consumer
        public var user: DirectoryUser?
        public var keys: [KeyRef]
        /// Every credential the action concerns, of every type (key-auth too); `keys` keeps its
        /// meaning (key-auth) for readers that know only it.
        public var credentials: [CredentialRef]
        public var before: [String]
        public var after: [String]
        public var reason: String

        public init(
            run: String?, gateway: String, action: ActionKind, situation: Situation, consumer: Consumer,
            user: DirectoryUser?, keys: [KeyRef], credentials: [CredentialRef] = [], before: [String], after: [String],
            reason: String
        ) {
            self.credentials = credentials
            self.run = run
            self.gateway = gateway
            self.action = action
            self.situation = situation
            self.consumer = consumer
            self.user = user
            self.keys = keys
            self.before = before
            self.after = after
            self.reason = reason
        }
    }

    public struct RunFinished: Sendable, Equatable {
        public var run: String?
        /// `ok` or `failed`.
        public var outcome: String
        public var exitCode: Int64
        public var planHash: String?
        /// A sync's: the directory's users, the plan's counts, whether a signal stopped it.
        public var users: Int64?
        public var counts: [String: Int64]?
        public var stopped: Bool?
        /// A restore's: the run it undid, and the consumers it left alone.
        public var restoreOf: String?
        public var skipped: [String]?

        public init(
            run: String?, outcome: String, exitCode: Int64, planHash: String?, users: Int64? = nil,
            counts: [String: Int64]? = nil, stopped: Bool? = nil, restoreOf: String? = nil, skipped: [String]? = nil
        ) {
            self.run = run
            self.outcome = outcome
            self.exitCode = exitCode
            self.planHash = planHash
            self.users = users
            self.counts = counts
            self.stopped = stopped
            self.restoreOf = restoreOf
            self.skipped = skipped
        }
    }

    public struct RunRefused: Sendable, Equatable {
        public var run: String?
        public var cause: String
        public var detail: String
        public var planHash: String?

        public init(run: String?, cause: String, detail: String, planHash: String?) {
            self.run = run
            self.cause = cause
            self.detail = detail
            self.planHash = planHash
        }
    }

    /// The first record of a file started by `journal rotate` or `journal acknowledge`.
    public struct JournalStarted: Sendable, Equatable {
        public var version: String
        public var host: String
        public var uid: Int64
        public var previousFile: String
        public var previousSeq: Int64
        public var previousHash: String
        /// Set by acknowledge: why a person accepted the old file, and what was wrong with it.
        public var acknowledgedReason: String?
        public var acknowledgedProblem: String?
        /// The shrink brake's baseline, carried over.
        public var lastGoodUsers: Int64?

        public init(
            version: String, host: String, uid: Int64, previousFile: String, previousSeq: Int64, previousHash: String,
            acknowledgedReason: String? = nil, acknowledgedProblem: String? = nil, lastGoodUsers: Int64? = nil
        ) {
            self.version = version
            self.host = host
            self.uid = uid
            self.previousFile = previousFile
            self.previousSeq = previousSeq
            self.previousHash = previousHash
            self.acknowledgedReason = acknowledgedReason
            self.acknowledgedProblem = acknowledgedProblem
            self.lastGoodUsers = lastGoodUsers
        }
    }

    /// The record's `event`.
    public var name: String {
        switch self {
        case .runStarted: return "run-started"
        case .intent: return "intent"
        case .outcome: return "outcome"
        case .runFinished: return "run-finished"
        case .runRefused: return "run-refused"
        case .journalStarted: return "journal-started"
        case .unknown(let name): return name
        }
    }

    /// The run the record belongs to (nil for journal-started and unknown records).
    public var run: String? {
        switch self {
        case .runStarted(let r): return r.run
        case .intent(let a), .outcome(let a, _, _): return a.run
        case .runFinished(let r): return r.run
        case .runRefused(let r): return r.run
        case .journalStarted, .unknown: return nil
        }
    }

    // MARK: Encoding

    /// The record's fields, without `seq`, `time`, `prev` and `hash`.
    public var fields: [String: JSONValue] {
        var f: [String: JSONValue] = ["event": .string(name)]
        switch self {
        case .runStarted(let r):
            f["run"] = JSONValue(r.run)
            f["dry_run"] = .bool(r.dryRun)
            f["version"] = .string(r.version)
            f["host"] = .string(r.host)
            f["uid"] = .int(r.uid)
            if let sha = r.configSHA256 { f["config_sha256"] = .string(sha) }
            if let format = r.journalFormat { f["journal_format"] = .int(format) }
            if let repaired = r.repaired { f["repaired"] = .string(repaired) }
            if let previous = r.previousRunInterrupted {
                f["previous_run_interrupted"] = [
                    "run": .string(previous.run), "intents_without_outcome": .array(previous.intentsWithoutOutcome.map { .int($0) }),
                ]
            }
            if let restoreOf = r.restoreOf { f["restore_of"] = .string(restoreOf) }
            if let trigger = r.trigger { f["trigger"] = .string(trigger) }
            if let accepted = r.acceptedPlan { f["accepted_plan"] = .string(accepted) }
        case .intent(let a):
            f.merge(Self.actionFields(a)) { _, new in new }
        case .outcome(let a, let intent, let result):
            f.merge(Self.actionFields(a)) { _, new in new }
            f["intent"] = .int(intent)
            switch result {
            case .applied: f["outcome"] = "applied"
            case .failed(let error):
                f["outcome"] = "failed"
                f["error"] = .string(error)
            }
        case .runFinished(let r):
            f["run"] = JSONValue(r.run)
            f["outcome"] = .string(r.outcome)
            f["exit_code"] = .int(r.exitCode)
            f["plan_hash"] = JSONValue(r.planHash)
            if let users = r.users { f["users"] = .int(users) }
            if let counts = r.counts { f["counts"] = .object(counts.mapValues(JSONValue.int)) }
            if let stopped = r.stopped { f["stopped"] = .bool(stopped) }
            if let restoreOf = r.restoreOf { f["restore_of"] = .string(restoreOf) }
            if let skipped = r.skipped { f["skipped"] = JSONValue(skipped) }
        case .runRefused(let r):
            f["run"] = JSONValue(r.run)
            f["cause"] = .string(r.cause)
            f["detail"] = .string(r.detail)
            f["plan_hash"] = JSONValue(r.planHash)
        case .journalStarted(let r):
            f["run"] = .null
            f["version"] = .string(r.version)
            f["host"] = .string(r.host)
            f["uid"] = .int(r.uid)
            f["journal_format"] = .int(JournalEvent.format)
            f["previous"] = ["file": .string(r.previousFile), "seq": .int(r.previousSeq), "hash": .string(r.previousHash)]
            if let reason = r.acknowledgedReason {
                f["acknowledged"] = ["reason": .string(reason), "problem": JSONValue(r.acknowledgedProblem)]
            }
            if let users = r.lastGoodUsers { f["last_good_users"] = .int(users) }
        case .unknown:
            break
        }
        return f
    }

    static func actionFields(_ a: ActionRecord) -> [String: JSONValue] {
        [
            "run": JSONValue(a.run), "gateway": .string(a.gateway), "action": .string(a.action.rawValue),
            "situation": .string(a.situation.rawValue), "consumer": a.consumer.json, "user": a.user?.json ?? .null,
            "keys": .array(a.keys.map(\.json)), "credentials": .array(a.credentials.map(\.json)),
            "before": JSONValue(a.before), "after": JSONValue(a.after), "reason": .string(a.reason),
        ]
    }
}

/// A record as read back: where it sits in the chain, when it was written, and what it says.
public struct JournalEntry: Sendable {
    public var seq: Int64
    public var time: String
    public var event: JournalEvent
    /// The record as stored, for output that shows it verbatim (`--output jsonl`).
    public var record: JSONValue

    /// Decodes a stored record; nil when it is no journal record at all (no `event`, no `seq`).
    /// A known event whose fields do not decode becomes `.unknown`, so nothing is guessed.
    public init?(record: JSONValue) {
        guard let event = record["event"]?.stringValue, let seq = record["seq"]?.intValue else { return nil }
        self.seq = seq
        self.time = record["time"]?.stringValue ?? "?"
        self.record = record
        self.event = Self.decode(event, record) ?? .unknown(event)
    }

    static func decode(_ event: String, _ r: JSONValue) -> JournalEvent? {
        func string(_ key: String) -> String? { r[key]?.stringValue }
        switch event {
        case "run-started":
            var started = JournalEvent.RunStarted(
                run: string("run"), version: string("version") ?? "?", host: string("host") ?? "?",
                uid: r["uid"]?.intValue ?? -1, configSHA256: string("config_sha256"), repaired: string("repaired"),
                restoreOf: string("restore_of"))
            started.dryRun = r["dry_run"]?.boolValue ?? false
            started.journalFormat = r["journal_format"]?.intValue
            started.trigger = string("trigger")
            started.acceptedPlan = string("accepted_plan")
            if let previous = r["previous_run_interrupted"], let run = previous["run"]?.stringValue {
                started.previousRunInterrupted = (
                    run, previous["intents_without_outcome"]?.arrayValue?.compactMap(\.intValue) ?? []
                )
            }
            return .runStarted(started)
        case "intent":
            return action(r).map(JournalEvent.intent)
        case "outcome":
            guard let a = action(r), let intent = r["intent"]?.intValue, let outcome = string("outcome") else { return nil }
            return .outcome(a, intent: intent, result: outcome == "applied" ? .applied : .failed(string("error") ?? outcome))
        case "run-finished":
            let counts = r["counts"]?.objectValue.map { $0.mapValues { $0.intValue ?? 0 } }
            return .runFinished(
                JournalEvent.RunFinished(
                    run: string("run"), outcome: string("outcome") ?? "?", exitCode: r["exit_code"]?.intValue ?? -1,
                    planHash: string("plan_hash"), users: r["users"]?.intValue, counts: counts,
                    stopped: r["stopped"]?.boolValue, restoreOf: string("restore_of"),
                    skipped: r["skipped"]?.arrayValue?.compactMap(\.stringValue)))
        case "run-refused":
            return .runRefused(
                JournalEvent.RunRefused(
                    run: string("run"), cause: string("cause") ?? "?", detail: string("detail") ?? "",
                    planHash: string("plan_hash")))
        case "journal-started":
            guard let previous = r["previous"], let file = previous["file"]?.stringValue,
                let seq = previous["seq"]?.intValue, let hash = previous["hash"]?.stringValue
            else { return nil }
            return .journalStarted(
                JournalEvent.JournalStarted(
                    version: string("version") ?? "?", host: string("host") ?? "?", uid: r["uid"]?.intValue ?? -1,
                    previousFile: file, previousSeq: seq, previousHash: hash,
                    acknowledgedReason: r["acknowledged"]?["reason"]?.stringValue,
                    acknowledgedProblem: r["acknowledged"]?["problem"]?.stringValue,
                    lastGoodUsers: r["last_good_users"]?.intValue))
        default:
            return nil
        }
    }

    static func action(_ r: JSONValue) -> JournalEvent.ActionRecord? {
        guard let gateway = r["gateway"]?.stringValue, let kind = r["action"]?.stringValue.flatMap(ActionKind.init),
            let situation = r["situation"]?.stringValue.flatMap(Situation.init), let id = r["consumer"]?["id"]?.stringValue
        else { return nil }
        let consumer = Consumer(
            id: ConsumerID(id), username: r["consumer"]?["username"]?.stringValue,
            customID: r["consumer"]?["custom_id"]?.stringValue, tags: nil)
        var user: DirectoryUser? = nil
        if let uid = r["user"]?["id"]?.stringValue {
            user = DirectoryUser(
                id: UserID(uid), username: r["user"]?["username"]?.stringValue,
                state: r["user"]?["state"]?.stringValue.flatMap(DirectoryUser.State.init) ?? .active)
        }
        let keys: [KeyRef] = (r["keys"]?.arrayValue ?? []).compactMap { k in
            guard let id = k["id"]?.stringValue, let fingerprint = k["fingerprint"]?.stringValue else { return nil }
            return KeyRef(
                id: KeyID(id), fingerprint: fingerprint, expiresAt: k["expires_at"]?.stringValue.flatMap(TimeFormat.parseRFC3339))
        }
        let credentials: [CredentialRef] = (r["credentials"]?.arrayValue ?? []).compactMap { c in
            guard let type = c["type"]?.stringValue, let id = c["id"]?.stringValue, let identity = c["identity"]?.stringValue
            else { return nil }
            return CredentialRef(type: type, id: id, identity: identity)
        }
        func tags(_ key: String) -> [String] { r[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        return JournalEvent.ActionRecord(
            run: r["run"]?.stringValue, gateway: gateway, action: kind, situation: situation, consumer: consumer, user: user,
            keys: keys, credentials: credentials, before: tags("before"), after: tags("after"),
            reason: r["reason"]?.stringValue ?? "")
    }
}
