/// Turns snapshots into a plan (product.md §2–§3).
///
/// Pure and deterministic: the same directory snapshot, gateway snapshots, policy and `now`
/// give the same plan in the same order. It performs no I/O; the engine carries the plan out.
public struct Planner: Sendable {
    public var policy: Policy
    public var gateways: [GatewayPolicy]
    private let protectedGlobs: [Glob]

    public init(policy: Policy, gateways: [GatewayPolicy]) {
        self.policy = policy
        self.gateways = gateways
        self.protectedGlobs = policy.protected.map(Glob.init)
    }

    /// Plans every gateway. Consumers that would be disabled or restored without `details` in their
    /// snapshot are planned without keys and listed in `SyncPlan.detailsNeeded`; the engine reads
    /// those and plans again.
    public func plan(directory: DirectorySnapshot, snapshots: [GatewaySnapshot], now: Int64) -> SyncPlan {
        var actions: [SyncAction] = []
        var findings: [SyncFinding] = []
        var summaries: [GatewayPlanSummary] = []
        var needed: [String: Set<ConsumerID>] = [:]
        var indexes: [MatchRule.UserField: [String: [DirectoryUser]]] = [:]

        for snapshot in snapshots {
            let rule = gateways.first { $0.name == snapshot.name }?.match ?? .recommended
            if indexes[rule.user] == nil { indexes[rule.user] = Self.index(directory.users, by: rule.user) }
            var gateway = GatewayPlanner(
                planner: self, snapshot: snapshot, rule: rule, users: indexes[rule.user]!,
                scope: directory.scope, now: now)
            gateway.run()
            actions += gateway.actions
            findings += gateway.findings
            if !gateway.detailsNeeded.isEmpty { needed[snapshot.name] = gateway.detailsNeeded }
            summaries.append(
                GatewayPlanSummary(
                    name: snapshot.name, managed: snapshot.consumers.count, situations: gateway.situations))
        }
        return SyncPlan(actions: actions, findings: findings, gateways: summaries, detailsNeeded: needed)
    }

    static func index(_ users: [DirectoryUser], by field: MatchRule.UserField) -> [String: [DirectoryUser]] {
        var index: [String: [DirectoryUser]] = [:]
        index.reserveCapacity(users.count)
        for user in users {
            let value: String?
            switch field {
            case .id: value = user.id.rawValue
            case .username: value = user.username
            }
            guard let value, !value.isEmpty else { continue }
            index[MatchKey.normalize(value, as: field), default: []].append(user)
        }
        return index
    }

    func isProtected(_ consumer: Consumer) -> Bool {
        protectedGlobs.contains { glob in
            consumer.username.map(glob.matches) == true || consumer.customID.map(glob.matches) == true
        }
    }
}

/// The plan of one gateway, built consumer by consumer.
private struct GatewayPlanner {
    let planner: Planner
    let snapshot: GatewaySnapshot
    let rule: MatchRule
    let users: [String: [DirectoryUser]]
    let scope: String
    let now: Int64

    var actions: [SyncAction] = []
    var findings: [SyncFinding] = []
    var situations: [Situation: Int] = [:]
    var detailsNeeded: Set<ConsumerID> = []

    init(
        planner: Planner, snapshot: GatewaySnapshot, rule: MatchRule, users: [String: [DirectoryUser]],
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

    func matchValue(_ consumer: Consumer) -> String? {
        let value = rule.consumer == .customID ? consumer.customID : consumer.username
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    mutating func run() {
        var claims: [String: Int] = [:]
        for consumer in snapshot.consumers {
            if let value = matchValue(consumer) { claims[MatchKey.normalize(value, as: rule.user), default: 0] += 1 }
        }
        let ordered = snapshot.consumers.sorted { a, b in
            let ka = a.username ?? a.customID ?? "", kb = b.username ?? b.customID ?? ""
            return ka != kb ? ka < kb : a.id < b.id
        }
        for consumer in ordered { planConsumer(consumer, claims: claims) }
    }

    mutating func report(_ situation: Situation, _ consumer: Consumer, user: DirectoryUser?, _ reason: String) {
        situations[situation, default: 0] += 1
        findings.append(
            SyncFinding(gateway: gateway, situation: situation, consumer: consumer, user: user, reason: reason))
    }

    mutating func act(
        _ kind: ActionKind, _ situation: Situation, _ consumer: Consumer, user: DirectoryUser?, keys: [KeyRef] = [],
        tagsAfter: [String]? = nil, plugin: PluginID? = nil, reason: String
    ) {
        actions.append(
            SyncAction(
                gateway: gateway, kind: kind, situation: situation, consumer: consumer, user: user, keys: keys,
                tagsAfter: tagsAfter, plugin: plugin, reason: reason))
    }

    mutating func planConsumer(_ consumer: Consumer, claims: [String: Int]) {
        if planner.isProtected(consumer) {
            report(.protected, consumer, user: nil, "matches policy.protected")
            return
        }
        guard let value = matchValue(consumer) else {
            report(.unlinked, consumer, user: nil, "consumer has no \(rule.consumer.rawValue)")
            return
        }
        let key = MatchKey.normalize(value, as: rule.user)
        if claims[key, default: 0] > 1 {
            report(
                .disputed, consumer, user: nil,
                "\(claims[key]!) consumers claim \(rule.user.rawValue) \(value)")
            return
        }
        let matches = users[key] ?? []
        if matches.count > 1 {
            report(.disputed, consumer, user: nil, "\(matches.count) users have \(rule.user.rawValue) \(value)")
            return
        }
        let marks = ConsumerMarks(tags: consumer.tagList)
        let ourPlugin = snapshot.ourPlugins[consumer.id]
        guard let user = matches.first else {
            planGone(
                consumer, user: nil, reason: .missing, marks: marks, ourPlugin: ourPlugin,
                why: "no user with \(rule.user.rawValue) \(value) in \(scope)")
            return
        }
        if user.state == .deactivated {
            let detail = user.deactivationReason.map { " (\($0))" } ?? ""
            planGone(
                consumer, user: user, reason: .deactivated, marks: marks, ourPlugin: ourPlugin,
                why: "user \(user.username ?? user.id.rawValue) is deactivated in the IdP\(detail)")
            return
        }
        planLinked(consumer, user: user, marks: marks, ourPlugin: ourPlugin)
    }

    mutating func planLinked(_ consumer: Consumer, user: DirectoryUser, marks: ConsumerMarks, ourPlugin: ConsumerPlugin?) {
        situations[.linked, default: 0] += 1
        let name = user.username ?? user.id.rawValue
        let foreign = Marks.foreign(consumer.tagList)
        if ourPlugin != nil || marks.disabled {
            let details = snapshot.details[consumer.id]
            if details == nil { detailsNeeded.insert(consumer.id) }
            act(
                .restore, .linked, consumer, user: user, keys: details?.keys ?? [], tagsAfter: foreign,
                plugin: ourPlugin?.id, reason: "user \(name) is active again")
        } else if marks.hasAny {
            act(.unflag, .linked, consumer, user: user, tagsAfter: foreign, reason: "user \(name) is active again")
        }
    }

    mutating func planGone(
        _ consumer: Consumer, user: DirectoryUser?, reason: GoneReason, marks: ConsumerMarks,
        ourPlugin: ConsumerPlugin?, why: String
    ) {
        let situation: Situation = reason == .missing ? .missing : .deactivated
        var since = now
        var clockValid = false
        if case .some(.some(let s)) = marks.missingSince, s <= now {
            since = s
            clockValid = true
        }
        let grace = reason == .missing ? policy.gracePeriod : policy.disabledGracePeriod
        let hasPlugin = ourPlugin != nil
        let graceOver = now >= since &+ grace
        // Our disabled tag without our plugin while the user is still gone gets the plugin back.
        let wantsPlugin = (policy.onMissing != .flag && graceOver) || marks.disabled
        let foreign = Marks.foreign(consumer.tagList)

        var details: ConsumerDetails? = nil
        if (wantsPlugin && !hasPlugin) || (hasPlugin || wantsPlugin) && policy.onMissing == .deleteKeys {
            details = snapshot.details[consumer.id]
            if details == nil { detailsNeeded.insert(consumer.id) }
        }

        // A person's request-termination on the consumer alone decides blocked / conflict,
        // and only where the plan would disable.
        if wantsPlugin && !hasPlugin, let details {
            if let theirs = details.plugins.first(where: {
                $0.name == Marks.pluginName && $0.isConsumerOnly && !$0.isOurs
            }) {
                if theirs.enabled && theirs.trigger == nil && (theirs.statusCode ?? 503) >= 400 {
                    report(.blocked, consumer, user: user, "already blocked by request-termination plugin \(theirs.id)")
                } else {
                    let state = !theirs.enabled ? "disabled" : theirs.trigger != nil ? "has a trigger" : "status \(theirs.statusCode ?? 503)"
                    report(
                        .conflict, consumer, user: user,
                        "request-termination plugin \(theirs.id) (\(state)) blocks nothing and prevents ours")
                }
                return
            }
        }

        situations[situation, default: 0] += 1
        let disabledAfterFlag = hasPlugin || marks.disabled
        let flaggedTags = foreign + Marks.orphanTags(since: since, reason: reason, disabled: disabledAfterFlag)
        let needsFlag =
            !marks.orphaned || !clockValid || marks.reason != .some(.some(reason)) || (hasPlugin && !marks.disabled)
        if needsFlag {
            let flagWhy: String
            if !marks.hasAny && !hasPlugin {
                flagWhy = why
            } else if marks.missingSince != nil && !clockValid {
                flagWhy = "\(why); unreadable or future missing-since rewritten to now"
            } else if hasPlugin && !marks.disabled {
                flagWhy = "\(why); our plugin had lost its tags"
            } else {
                flagWhy = why
            }
            act(.flag, situation, consumer, user: user, tagsAfter: flaggedTags, reason: flagWhy)
        }
        let disabledTags = foreign + Marks.orphanTags(since: since, reason: reason, disabled: true)
        if wantsPlugin && !hasPlugin {
            let disableWhy =
                marks.disabled && !graceOver
                ? "\(why); our disabled tag was on it without our plugin"
                : "\(reason == .missing ? "missing" : "deactivated") since \(TimeFormat.rfc3339(since)), grace \(TimeFormat.duration(grace))"
            act(
                .disable, situation, consumer, user: user, keys: details?.keys ?? [], tagsAfter: disabledTags,
                reason: disableWhy)
        }
        if policy.onMissing == .deleteKeys && (hasPlugin || wantsPlugin), let details {
            for key in details.keys.sorted() {
                act(
                    .deleteKey, situation, consumer, user: user, keys: [key],
                    reason: "on_missing: delete-keys; \(reason == .missing ? "missing" : "deactivated") since \(TimeFormat.rfc3339(since))")
            }
        }
    }
}
