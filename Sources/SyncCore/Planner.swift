/// Turns snapshots into a plan (docs/report.md–§3).
///
/// Pure and deterministic: the same directory snapshot, gateway snapshots, policy and `now`
/// give the same plan in the same order. It performs no I/O; the engine carries the plan out.
public struct Planner: Sendable {
    public var policy: Policy
    public var gateways: [GatewayPolicy]
    private let protectedGlobs: [Glob]
    /// Runs `body(0..<n)` at once on several threads (the engine passes `DispatchQueue.concurrentPerform`);
    /// nil plans on the calling thread. The plan is the same either way.
    public var parallel: ParallelFor?

    public typealias ParallelFor = @Sendable (_ iterations: Int, _ body: @Sendable (Int) -> Void) -> Void

    public init(policy: Policy, gateways: [GatewayPolicy], parallel: ParallelFor? = nil) {
        self.policy = policy
        self.gateways = gateways
        self.protectedGlobs = policy.protected.map(Glob.init)
        self.parallel = parallel
    }

    /// Plans every gateway. Consumers that would be disabled or restored without `details` in their
    /// snapshot are planned without keys and listed in `SyncPlan.detailsNeeded`; the engine reads
    /// those and plans again.
    public func plan(directory: DirectorySnapshot, snapshots: [GatewaySnapshot], now: Int64) -> SyncPlan {
        var actions: [SyncAction] = []
        var findings: [SyncFinding] = []
        var waiting: [GraceWait] = []
        var summaries: [GatewayPlanSummary] = []
        var needed: [String: Set<ConsumerID>] = [:]
        var indexes: [MatchRule.UserField: UserIndex] = [:]

        for snapshot in snapshots {
            let rule = gateways.first { $0.name == snapshot.name }?.match ?? .recommended
            if indexes[rule.user] == nil { indexes[rule.user] = Self.index(directory.users, by: rule.user) }
            var gateway = GatewayPlanner(
                planner: self, snapshot: snapshot, rule: rule, users: indexes[rule.user]!,
                scope: directory.scope, now: now)
            gateway.run()
            actions += gateway.actions
            findings += gateway.findings
            waiting += gateway.waiting
            if !gateway.detailsNeeded.isEmpty { needed[snapshot.name] = gateway.detailsNeeded }
            summaries.append(
                GatewayPlanSummary(
                    name: snapshot.name, managed: snapshot.consumers.count, situations: gateway.situations))
        }
        var plan = SyncPlan(actions: actions, findings: findings, gateways: summaries, detailsNeeded: needed)
        plan.waiting = waiting
        return plan
    }

    /// Users by normalised match value (a `HashedIndex`); values shared by several users are
    /// kept apart as disputed.
    struct UserIndex {
        private let index: HashedIndex<UserValues>
        var users: [DirectoryUser] { index.values.users }
        var shared: [String: Int] { index.shared }

        init(_ users: [DirectoryUser], field: MatchRule.UserField) {
            index = HashedIndex(UserValues(users: users, field: field), field: field)
        }

        /// The one user with this value (normalised); `shared` says when there are several.
        /// `hash` is `MatchKey.hash(value)` when the caller has it already.
        func user(for value: CompactText, hash: UInt64?? = nil) -> DirectoryUser? {
            index.entry(for: value, hash: hash).map { index.values.users[$0] }
        }
    }

    static func index(_ users: [DirectoryUser], by field: MatchRule.UserField) -> UserIndex {
        UserIndex(users, field: field)
    }

    /// Whether `policy.protected` matches the consumer's username or custom_id (case-insensitive globs).
    public func isProtected(_ consumer: Consumer) -> Bool {
        !protectedGlobs.isEmpty && protectedGlobs.contains { glob in
            consumer.username.map(glob.matches) == true || consumer.customID.map(glob.matches) == true
        }
    }
}

/// The plan of one gateway, built consumer by consumer.
private struct GatewayPlanner {
    let planner: Planner
    let snapshot: GatewaySnapshot
    let rule: MatchRule
    let users: Planner.UserIndex
    let scope: String
    let now: Int64

    var actions: [SyncAction] = []
    var findings: [SyncFinding] = []
    var waiting: [GraceWait] = []
    var situations: [Situation: Int] = [:]
    var detailsNeeded: Set<ConsumerID> = []

    init(
        planner: Planner, snapshot: GatewaySnapshot, rule: MatchRule, users: Planner.UserIndex,
        scope: String, now: Int64
    ) {
        self.planner = planner
        self.snapshot = snapshot
        self.rule = rule
        self.users = users
        self.scope = scope
        self.now = now
    }

    var policy: Policy { planner.policy }
    var gateway: String { snapshot.name }

    func matchValue(_ consumer: Consumer) -> CompactText? { MatchKey.value(of: consumer, rule.consumer) }

    mutating func run() {
        // Values claimed by more than one consumer (the same index as the users', over consumers).
        let index = HashedIndex(ConsumerValues(consumers: snapshot.consumers, field: rule.consumer), field: rule.user)
        let claims = index.shared, hashes = index.hashes
        let n = snapshot.consumers.count
        let chunks = planner.parallel != nil && n >= 20_000 ? 4 : 1
        if chunks == 1 {
            for i in 0..<n { planConsumer(snapshot.consumers[i], hash: hashes[i], claims: claims) }
        } else {
            // Consumers are independent once claims are known: plan slices at once, then merge.
            let template = self, parts = Slots<GatewayPlanner>(count: chunks)
            planner.parallel!(chunks) { c in
                var part = template
                for i in stride(from: c * n / chunks, to: (c + 1) * n / chunks, by: 1) {
                    part.planConsumer(template.snapshot.consumers[i], hash: hashes[i], claims: claims)
                }
                parts.set(c, part)
            }
            for part in parts.values {
                actions += part.actions
                findings += part.findings
                waiting += part.waiting
                situations.merge(part.situations, uniquingKeysWith: +)
                detailsNeeded.formUnion(part.detailsNeeded)
            }
        }
        // A stable order whatever order the gateway listed consumers in: by name, id, then action.
        func name(_ c: Consumer) -> String { c.username ?? c.customID ?? "" }
        actions.sort { a, b in
            let na = name(a.consumer), nb = name(b.consumer)
            if na != nb { return na < nb }
            if a.consumer.id != b.consumer.id { return a.consumer.id < b.consumer.id }
            if a.kind != b.kind { return a.kind < b.kind }
            if a.keys.first?.id != b.keys.first?.id { return (a.keys.first?.id.rawValue ?? "") < (b.keys.first?.id.rawValue ?? "") }
            return (a.credentials.first?.qualifiedID ?? "") < (b.credentials.first?.qualifiedID ?? "")
        }
        findings.sort { a, b in
            let na = name(a.consumer), nb = name(b.consumer)
            return na != nb ? na < nb : a.consumer.id < b.consumer.id
        }
        // Soonest first: what a reviewer wants to know is what goes dark next.
        waiting.sort { a, b in
            if a.disableAt != b.disableAt { return a.disableAt < b.disableAt }
            let na = name(a.consumer), nb = name(b.consumer)
            return na != nb ? na < nb : a.consumer.id < b.consumer.id
        }
    }

    mutating func report(_ situation: Situation, _ consumer: Consumer, user: DirectoryUser?, _ reason: String) {
        situations[situation, default: 0] += 1
        findings.append(
            SyncFinding(gateway: gateway, situation: situation, consumer: consumer, user: user, reason: reason))
    }

    mutating func act(
        _ kind: ActionKind, _ situation: Situation, _ consumer: Consumer, user: DirectoryUser?, keys: [KeyRef] = [],
        credentials: [CredentialRef] = [], tagsAfter: [String]? = nil, block: BlockID? = nil, reason: String
    ) {
        var action = SyncAction(
            gateway: gateway, kind: kind, situation: situation, consumer: consumer, user: user, keys: keys,
            tagsAfter: tagsAfter, block: block, reason: reason)
        action.credentials = credentials
        actions.append(action)
    }

    mutating func planConsumer(_ consumer: Consumer, hash: UInt64?, claims: [String: Int]) {
        if planner.isProtected(consumer) {
            report(.protected, consumer, user: nil, "matches policy.protected")
            return
        }
        guard let value = matchValue(consumer) else {
            report(.unlinked, consumer, user: nil, "consumer has no \(rule.consumer.rawValue)")
            return
        }
        if !claims.isEmpty, let n = claims[MatchKey.normalize(value.string, as: rule.user)] {
            report(.disputed, consumer, user: nil, "\(n) consumers claim \(rule.user.rawValue) \(value)")
            return
        }
        if !users.shared.isEmpty, let shared = users.shared[MatchKey.normalize(value.string, as: rule.user)] {
            report(.disputed, consumer, user: nil, "\(shared) users have \(rule.user.rawValue) \(value)")
            return
        }
        let match = users.user(for: value, hash: .some(hash))
        let marks = ConsumerMarks(tags: consumer.tagList)
        let ourBlock = snapshot.ourBlocks.isEmpty ? nil : snapshot.ourBlocks[consumer.id]
        guard let user = match else {
            planGone(
                consumer, user: nil, reason: .missing, marks: marks, ourBlock: ourBlock,
                why: "no user with \(rule.user.rawValue) \(value) in \(scope)")
            return
        }
        if user.state == .deactivated {
            let detail = user.deactivationReason.map { " (\($0))" } ?? ""
            planGone(
                consumer, user: user, reason: .deactivated, marks: marks, ourBlock: ourBlock,
                why: "user \(user.username ?? user.id.rawValue) is deactivated in the IdP\(detail)")
            return
        }
        planLinked(consumer, user: user, marks: marks, ourBlock: ourBlock)
    }

    mutating func planLinked(_ consumer: Consumer, user: DirectoryUser, marks: ConsumerMarks, ourBlock: BlockID?) {
        situations[.linked, default: 0] += 1
        guard ourBlock != nil || marks.hasAny else { return }
        let name = user.username ?? user.id.rawValue
        let foreign = Marks.foreign(consumer.tagList)
        if ourBlock != nil || marks.disabled {
            let details = snapshot.details[consumer.id]
            if details == nil { detailsNeeded.insert(consumer.id) }
            act(
                .restore, .linked, consumer, user: user, keys: details?.keys ?? [], credentials: details?.credentials ?? [],
                tagsAfter: foreign, block: ourBlock, reason: "user \(name) is active again")
        } else if marks.hasAny {
            act(.unflag, .linked, consumer, user: user, tagsAfter: foreign, reason: "user \(name) is active again")
        }
    }

    mutating func planGone(
        _ consumer: Consumer, user: DirectoryUser?, reason: GoneReason, marks: ConsumerMarks,
        ourBlock: BlockID?, why: String
    ) {
        let situation: Situation = reason == .missing ? .missing : .deactivated
        var since = now
        var clockValid = false
        if case .some(.some(let s)) = marks.missingSince, s <= now {
            since = s
            clockValid = true
        }
        let grace = reason == .missing ? policy.gracePeriod : policy.disabledGracePeriod
        let hasBlock = ourBlock != nil
        // Our marks and our block both gone (decK, a person) while the user is still gone, yet the
        // journal says we disabled it: a fresh clock would give the keys another grace period, so
        // it is disabled again at once, from the time of that disable.
        var strippedAt: Int64? = nil
        if !marks.hasAny && !hasBlock && policy.onMissing != .flag, !snapshot.disabledEarlier.isEmpty,
            let at = snapshot.disabledEarlier[consumer.id]
        {
            strippedAt = at
            if !clockValid, at > 0, at <= now {
                since = at
                clockValid = true
            }
        }
        let graceOver = now >= TimeFormat.adding(since, grace) || strippedAt != nil
        // Our disabled tag without our block while the user is still gone gets the block back.
        let wantsBlock = (policy.onMissing != .flag && graceOver) || marks.disabled
        let foreign = Marks.foreign(consumer.tagList)

        var details: ConsumerDetails? = nil
        if (wantsBlock && !hasBlock) || (hasBlock || wantsBlock) && policy.onMissing == .deleteKeys {
            details = snapshot.details[consumer.id]
            if details == nil { detailsNeeded.insert(consumer.id) }
        }

        // A person's block on the consumer decides blocked / conflict, and only where the plan
        // would disable (the adapter classifies what it found).
        if wantsBlock && !hasBlock, let theirs = details?.foreign {
            switch theirs {
            case .blocking(let what): report(.blocked, consumer, user: user, "already blocked by \(what)")
            case .conflicting(let what): report(.conflict, consumer, user: user, "\(what) blocks nothing and prevents ours")
            }
            return
        }

        situations[situation, default: 0] += 1
        let disabledAfterFlag = hasBlock || marks.disabled
        let flaggedTags = foreign + Marks.orphanTags(since: since, reason: reason, disabled: disabledAfterFlag)
        let needsFlag =
            !marks.orphaned || !clockValid || marks.reason != .some(.some(reason)) || (hasBlock && !marks.disabled)
        if needsFlag {
            let flagWhy: String
            if !marks.hasAny && !hasBlock {
                flagWhy = why
            } else if marks.missingSince != nil && !clockValid {
                flagWhy = "\(why); unreadable or future missing-since rewritten to now"
            } else if hasBlock && !marks.disabled {
                flagWhy = "\(why); our block had lost its tags"
            } else {
                flagWhy = why
            }
            act(.flag, situation, consumer, user: user, tagsAfter: flaggedTags, reason: flagWhy)
        }
        if policy.onMissing != .flag && !wantsBlock && !hasBlock {
            waiting.append(
                GraceWait(gateway: gateway, situation: situation, consumer: consumer, user: user, disableAt: TimeFormat.adding(since, grace)))
        }
        let disabledTags = foreign + Marks.orphanTags(since: since, reason: reason, disabled: true)
        if wantsBlock && !hasBlock {
            let disableWhy =
                if let strippedAt {
                    "\(why); the journal shows idp-sync disabled it at \(TimeFormat.rfc3339(strippedAt)) and its marks and block were removed since (decK or a person?): disabled again at once; add it to policy.protected if it must work"
                } else if marks.disabled && !graceOver {
                    "\(why); our disabled tag was on it without our block"
                } else {
                    "\(reason == .missing ? "missing" : "deactivated") since \(TimeFormat.rfc3339(since)), grace \(TimeFormat.duration(grace))"
                }
            act(
                .disable, situation, consumer, user: user, keys: details?.keys ?? [], credentials: details?.credentials ?? [],
                tagsAfter: disabledTags, reason: disableWhy)
        }
        if policy.onMissing == .deleteKeys && (hasBlock || wantsBlock), let details {
            let why = "on_missing: delete-keys; \(reason == .missing ? "missing" : "deactivated") since \(TimeFormat.rfc3339(since))"
            if policy.deleteCredentials.contains("key-auth") {
                for key in details.keys.sorted() { act(.deleteKey, situation, consumer, user: user, keys: [key], reason: why) }
            }
            for credential in details.credentials.sorted()
            where credential.type != "key-auth" && policy.deleteCredentials.contains(credential.type) {
                act(.deleteCredential, situation, consumer, user: user, credentials: [credential], reason: why)
            }
        }
    }
}

/// One slot per parallel worker; each worker writes only its own slot, and the caller reads them
/// after every worker has finished.
private final class Slots<T>: @unchecked Sendable {
    private var storage: UnsafeMutableBufferPointer<T?>

    init(count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }

    deinit {
        _ = storage.deinitialize()
        storage.deallocate()
    }

    func set(_ index: Int, _ value: T) { storage[index] = value }

    var values: [T] { storage.compactMap { $0 } }
}
