import SyncCore

/// The evidence `explain` gathered about one key or consumer.
public struct ExplainEvidence: Sendable {
    public enum Directory: Sendable, Equatable {
        case notChecked(String)
        case active(DirectoryUser)
        case deactivated(DirectoryUser)
        case outsideFilter(String)
        case absent
        case unlinked
    }

    public var gateway: String
    /// Set when explaining a key read from stdin.
    public var keyFingerprint: String?
    /// The consumer as it is now; nil when neither the key nor the name was found on this gateway.
    public var consumer: Consumer?
    public var details: ConsumerDetails?
    public var linkField: String
    public var directory: Directory
    /// Journal records about this consumer (or key), oldest first.
    public var history: [JournalEntry]
    public var policy: Policy
    public var protected: Bool
    public var now: Int64
    /// The words that name the configuration in a suggested command (`--config PATH`), so every
    /// command the explanation suggests pastes as it is.
    public var configArguments: [String] = []

    public init(
        gateway: String, keyFingerprint: String?, consumer: Consumer?, details: ConsumerDetails?, linkField: String,
        directory: Directory, history: [JournalEntry], policy: Policy, protected: Bool, now: Int64
    ) {
        self.gateway = gateway
        self.keyFingerprint = keyFingerprint
        self.consumer = consumer
        self.details = details
        self.linkField = linkField
        self.directory = directory
        self.history = history
        self.policy = policy
        self.protected = protected
        self.now = now
    }
}

/// A plain-words answer to "why does this key fail?".
public struct Explanation: Sendable, Equatable {
    public enum Cause: String, Sendable {
        case userDeleted = "user-deleted-or-altered"
        case userDisabled = "user-disabled"
        case keyRevoked = "key-revoked"
        case keyExpired = "key-expired"
        case otherEnvironment = "key-from-another-environment"
        case syncDelay = "sync-delay"
        case withinGrace = "within-grace-period"
        case blockedByPerson = "blocked-by-a-person"
        case notOurs = "not-caused-by-idp-sync"
    }

    public var cause: Cause
    public var facts: [String]
    public var verdict: String
    public var advice: [String]

    public var text: String {
        var out = facts.map { "  \($0)" }
        out.insert("Evidence:", at: 0)
        out.append("")
        out.append("Why: \(verdict)")
        out.append("What to do:")
        out += advice.map { "  - \($0)" }
        return out.joined(separator: "\n") + "\n"
    }

    public var json: JSONValue {
        ["cause": .string(cause.rawValue), "facts": JSONValue(facts), "verdict": .string(verdict), "advice": JSONValue(advice)]
    }
}

/// Turns evidence into an explanation. Pure.
public enum Explainer {
    public static func explain(_ e: ExplainEvidence) -> Explanation {
        var facts: [String] = []
        // What idp-sync did, from the journal: applied outcomes, with when and in which run.
        let actions: [(record: JournalEvent.ActionRecord, time: String)] = e.history.compactMap { entry in
            if case .outcome(let record, _, .applied) = entry.event { return (record, entry.time) }
            return nil
        }
        func when(_ a: (record: JournalEvent.ActionRecord, time: String)) -> String { "\(a.time) (run \(a.record.run ?? "?"))" }

        guard let consumer = e.consumer else {
            if let fingerprint = e.keyFingerprint {
                facts.append("key \(fingerprint) is not on gateway \(e.gateway)")
                if let deleted = actions.last(where: { $0.record.action == .deleteKey }) {
                    let name = deleted.record.consumer.username ?? deleted.record.consumer.id.rawValue
                    facts.append("idp-sync deleted it from consumer \(name) at \(when(deleted)): \(deleted.record.reason)")
                    return Explanation(
                        cause: .keyRevoked, facts: facts,
                        verdict: "the key was revoked: idp-sync deleted it because its user was gone (on_missing: delete-keys)",
                        advice: [
                            "deleted keys cannot be restored; once the user is active again, issue a new key for the consumer",
                            "if the consumer must work without a directory user, add it to policy.protected",
                        ])
                }
                // The journal saw the key with a ttl that has run out since: Kong expired it by itself.
                let seen = e.history.compactMap { entry -> (KeyRef, JournalEvent.ActionRecord)? in
                    let record: JournalEvent.ActionRecord
                    switch entry.event {
                    case .intent(let r), .outcome(let r, _, _): record = r
                    default: return nil
                    }
                    return record.keys.first { $0.fingerprint == fingerprint && $0.expiresAt != nil }.map { ($0, record) }
                }
                if let (key, record) = seen.last, let expiry = key.expiresAt, expiry <= e.now {
                    let owner = record.consumer.username ?? record.consumer.id.rawValue
                    facts.append(
                        "the journal saw it on consumer \(owner) with a ttl: it expired at \(TimeFormat.rfc3339(expiry))")
                    return Explanation(
                        cause: .keyExpired, facts: facts,
                        verdict: "the key expired: the gateway deleted it when its ttl ran out; idp-sync did not remove it",
                        advice: ["issue a new key for consumer \(owner) (with a longer ttl, or none)"])
                }
                facts.append("the journal has no record of this key")
                return Explanation(
                    cause: .otherEnvironment, facts: facts,
                    verdict: "this gateway does not know the key: it belongs to another environment, or it expired or was deleted by a person",
                    advice: [
                        "check the gateway of the environment the key was issued for (run explain with that environment's config)",
                        "if it should exist here, look for a key ttl or a person's deletion in the gateway's own audit trail",
                    ])
            }
            facts.append("no consumer with that id, username or custom_id on gateway \(e.gateway)")
            return Explanation(
                cause: .otherEnvironment, facts: facts, verdict: "the consumer does not exist on this gateway",
                advice: ["check the name, or the gateway of another environment"])
        }

        let name = RunReport.name(consumer)
        let marks = ConsumerMarks(tags: consumer.tagList)
        let ours = e.details?.ourBlock
        let theirs = e.details?.foreign
        if let fingerprint = e.keyFingerprint { facts.append("key \(fingerprint) belongs to consumer \(name) on gateway \(e.gateway)") }
        facts.append("consumer \(name): tags \(consumer.tagList)")
        if let details = e.details {
            let credentials = details.credentials.map { "\($0.type) \($0.identity)" }
            facts.append("credentials: " + (credentials.isEmpty ? "none" : credentials.joined(separator: ", ")))
            for restriction in details.restrictions { facts.append("restriction: \(restriction)") }
        }
        if let ours { facts.append("idp-sync's block \(ours) stops every key of it (status \(Marks.blockStatus))") }
        if let theirs {
            let effect: String
            switch theirs {
            case .blocking: effect = "it blocks the consumer"
            case .conflicting: effect = "it blocks nothing"
            }
            facts.append("\(theirs.description), which idp-sync did not add, is on it (\(effect))")
        }
        if e.protected { facts.append("it matches policy.protected: idp-sync never touches it") }
        switch e.directory {
        case .notChecked(let why): facts.append("directory: not checked (\(why))")
        case .active(let u): facts.append("directory: user \(u.username ?? u.id.rawValue) (\(u.id)) is present and active")
        case .deactivated(let u):
            facts.append("directory: user \(u.username ?? u.id.rawValue) is deactivated (\(u.deactivationReason ?? "disabled"))")
        case .outsideFilter(let dn): facts.append("directory: \(dn) exists but no longer matches source.filter")
        case .absent: facts.append("directory: no user with that \(e.linkField) under base_dn")
        case .unlinked: facts.append("directory: the consumer has no \(e.linkField), so it is linked to no user")
        }
        for a in actions {
            facts.append("journal: \(a.record.action.rawValue) at \(when(a)): \(a.record.reason)")
        }
        let lastRun = actions.last?.record.run

        if ours == nil && !marks.disabled {
            if case .blocking(let what)? = theirs {
                return Explanation(
                    cause: .blockedByPerson, facts: facts,
                    verdict: "a person's block (\(what)) stops this consumer; idp-sync did not do this",
                    advice: ["ask whoever added \(what) (the gateway's audit log), or remove it if it is stale"])
            }
            if marks.orphaned, case .some(.some(let since)) = marks.missingSince {
                let grace = marks.reason == .some(.some(.deactivated)) ? e.policy.disabledGracePeriod : e.policy.gracePeriod
                let due = TimeFormat.rfc3339(TimeFormat.adding(since, grace))
                if case .active = e.directory {
                    return Explanation(
                        cause: .syncDelay, facts: facts,
                        verdict: "flagged while its user was gone; the user is back and the next sync removes the flag",
                        advice: ["nothing to do: run `\(ShellWords.command(["sync"] + e.configArguments))` now to clear the flag early"])
                }
                return Explanation(
                    cause: .withinGrace, facts: facts,
                    verdict: "flagged since \(TimeFormat.rfc3339(since)); its keys still work and will be disabled at \(due) unless the user returns",
                    advice: [
                        "if the user should keep access, restore or re-enable them in the IdP before \(due)",
                        "if the key fails now, the cause is elsewhere (ACL, rate limit, key ttl, another plugin)",
                    ])
            }
            let restrictions = e.details?.restrictions ?? []
            return Explanation(
                cause: .notOurs, facts: facts, verdict: "idp-sync has not disabled this consumer",
                advice: restrictions.isEmpty
                    ? ["the failure has another cause: a key ttl, an ACL, a rate limit or another plugin"]
                    : [
                        "the failure has another cause: check the restrictions above (\(restrictions.joined(separator: "; "))) against the route that failed",
                        "or a key ttl, a rate limit or a plugin on the route or service",
                    ])
        }

        let restoreHint = lastRun.map { "to undo that run: \(ShellWords.command(["restore"] + e.configArguments + ["--run", $0]))" }
        switch e.directory {
        case .active:
            return Explanation(
                cause: .syncDelay, facts: facts,
                verdict: "disabled by idp-sync while its user was gone; the user is active again and the next sync restores it",
                advice: ["run `\(ShellWords.command(["sync"] + e.configArguments))` now (or wait for the timer) to restore the consumer"])
        case .deactivated(let u):
            return Explanation(
                cause: .userDisabled, facts: facts,
                verdict: "disabled by idp-sync because user \(u.username ?? u.id.rawValue) is disabled in the identity provider",
                advice: [
                    "if the user should have access, re-enable them in the IdP; the next sync restores the consumer",
                    "if the consumer must work without an active user, add it to policy.protected, then restore it",
                ] + (restoreHint.map { [$0] } ?? []))
        case .outsideFilter, .absent, .unlinked, .notChecked:
            return Explanation(
                cause: .userDeleted, facts: facts,
                verdict: "disabled by idp-sync because its user was deleted or altered so that it no longer matches",
                advice: [
                    "if the user should have access, restore them in the IdP (or fix the attribute that changed); the next sync restores the consumer",
                    "if the consumer must work without a directory user, add it to policy.protected, then restore it",
                ] + (restoreHint.map { [$0] } ?? []))
        }
    }
}
