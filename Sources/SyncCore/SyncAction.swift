/// One planned change to one consumer. The planner returns these; the engine carries them out.
public struct SyncAction: Hashable, Sendable {
    public var gateway: String
    public var kind: ActionKind
    public var situation: Situation
    public var consumer: Consumer
    public var user: DirectoryUser?
    /// `disable` and `restore`: the consumer's keys; `delete-key`: the one key; otherwise may be empty.
    public var keys: [KeyRef]
    /// `disable` and `restore`: every credential of the consumer; `delete-credential`: the one.
    public var credentials: [CredentialRef] = []
    /// The consumer's tags after this action, given the tags before it in this run.
    public var tagsAfter: [String]?
    /// Our block to remove (`restore`).
    public var block: BlockID?
    public var reason: String

    public init(
        gateway: String, kind: ActionKind, situation: Situation, consumer: Consumer, user: DirectoryUser?,
        keys: [KeyRef] = [], tagsAfter: [String]? = nil, block: BlockID? = nil, reason: String
    ) {
        self.gateway = gateway
        self.kind = kind
        self.situation = situation
        self.consumer = consumer
        self.user = user
        self.keys = keys
        self.tagsAfter = tagsAfter
        self.block = block
        self.reason = reason
    }

    /// The line this action contributes to the plan hash (docs/operations.md).
    public var hashLine: String {
        let keyIDs =
            kind == .deleteCredential
            ? credentials.map(\.qualifiedID).sorted().joined(separator: ",")
            : keys.map(\.id.rawValue).sorted().joined(separator: ",")
        return [gateway, kind.rawValue, situation.rawValue, consumer.id.rawValue, user?.id.rawValue ?? "", keyIDs]
            .joined(separator: "|")
    }
}

/// A consumer that is reported but not acted on (unlinked, disputed, protected, blocked, conflict).
public struct SyncFinding: Hashable, Sendable {
    public var gateway: String
    public var situation: Situation
    public var consumer: Consumer
    public var user: DirectoryUser?
    public var reason: String

    public init(gateway: String, situation: Situation, consumer: Consumer, user: DirectoryUser?, reason: String) {
        self.gateway = gateway
        self.situation = situation
        self.consumer = consumer
        self.user = user
        self.reason = reason
    }
}

/// A flagged consumer whose keys still work: the first run at or after `disableAt` disables it.
public struct GraceWait: Hashable, Sendable {
    public var gateway: String
    public var situation: Situation
    public var consumer: Consumer
    public var user: DirectoryUser?
    public var disableAt: Int64

    public init(gateway: String, situation: Situation, consumer: Consumer, user: DirectoryUser?, disableAt: Int64) {
        self.gateway = gateway
        self.situation = situation
        self.consumer = consumer
        self.user = user
        self.disableAt = disableAt
    }
}

/// Per-gateway figures of a plan.
public struct GatewayPlanSummary: Hashable, Sendable {
    public var name: String
    public var managed: Int
    public var situations: [Situation: Int]

    public init(name: String, managed: Int, situations: [Situation: Int]) {
        self.name = name
        self.managed = managed
        self.situations = situations
    }
}

/// The whole plan of a run: a pure value, in a stable order.
public struct SyncPlan: Hashable, Sendable {
    public var actions: [SyncAction]
    public var findings: [SyncFinding]
    public var gateways: [GatewayPlanSummary]
    /// Flagged consumers still inside their grace period, soonest first, with when a run will disable them.
    public var waiting: [GraceWait] = []
    /// Consumers planned without their keys and blocks; the engine reads them and plans again.
    public var detailsNeeded: [String: Set<ConsumerID>]

    public init(
        actions: [SyncAction], findings: [SyncFinding], gateways: [GatewayPlanSummary],
        detailsNeeded: [String: Set<ConsumerID>] = [:]
    ) {
        self.actions = actions
        self.findings = findings
        self.gateways = gateways
        self.detailsNeeded = detailsNeeded
    }

    /// The lines hashed into the plan hash, sorted bytewise (docs/operations.md).
    public var hashLines: [String] {
        actions.map(\.hashLine).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Counts by action and by situation, merged (the report's `counts`).
    public var counts: [String: Int] {
        var counts: [String: Int] = [:]
        for action in actions { counts[action.kind.rawValue, default: 0] += 1 }
        for gateway in gateways {
            for (situation, n) in gateway.situations where n > 0 { counts[situation.rawValue, default: 0] += n }
        }
        return counts
    }

    public var hasConflict: Bool { findings.contains { $0.situation == .conflict } }
}
