import SyncCore
import SyncEngine
import Testing

@Suite("Explainer: each cause of the support article")
struct ExplainerTests {
    let user = DirectoryUser(id: UserID("u-1"), username: "alice")
    let now: Int64 = 1_796_000_000

    func evidence(
        consumerTags: [String]? = nil, ourPlugin: Bool = false, theirPlugin: Bool = false,
        directory: ExplainEvidence.Directory = .absent, history: [JournalEntry] = [], key: String? = nil
    ) -> ExplainEvidence {
        let consumer = consumerTags.map { Consumer(id: ConsumerID("c-1"), username: "alice", customID: "u-1", tags: $0) }
        let details = ConsumerDetails(
            keys: [], ourBlock: ourPlugin ? BlockID("p") : nil, foreign: theirPlugin ? .blocking("a person's block q") : nil)
        return ExplainEvidence(
            gateway: "prod", keyFingerprint: key, consumer: consumer,
            details: consumer == nil ? nil : details, linkField: "id",
            directory: directory, history: history, policy: Policy(gracePeriod: 86_400), protected: false, now: now)
    }

    let disabledTags = ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "1795900000", Marks.reasonPrefix + "missing", Marks.disabled]

    @Test func userDeleted() {
        let e = Explainer.explain(evidence(consumerTags: disabledTags, ourPlugin: true, directory: .absent))
        #expect(e.cause == .userDeleted)
        #expect(e.advice.contains { $0.contains("policy.protected") })
    }

    @Test func userOutsideTheFilterCountsAsAltered() {
        let e = Explainer.explain(evidence(consumerTags: disabledTags, ourPlugin: true, directory: .outsideFilter("uid=alice")))
        #expect(e.cause == .userDeleted)
        #expect(e.facts.contains { $0.contains("no longer matches source.filter") })
    }

    @Test func userDisabled() {
        var locked = user
        locked.state = .deactivated
        let e = Explainer.explain(evidence(consumerTags: disabledTags, ourPlugin: true, directory: .deactivated(locked)))
        #expect(e.cause == .userDisabled)
        #expect(e.advice.first?.contains("re-enable") == true)
    }

    @Test func syncDelay() {
        let e = Explainer.explain(evidence(consumerTags: disabledTags, ourPlugin: true, directory: .active(user)))
        #expect(e.cause == .syncDelay)
    }

    @Test func keyRevoked() throws {
        let deleted: JSONValue = [
            "event": "outcome", "seq": 7, "intent": 6, "outcome": "applied", "action": "delete-key", "run": "r-9",
            "time": "2026-11-29T00:00:00Z", "gateway": "prod", "situation": "missing",
            "consumer": ["id": "c-1", "username": "alice"], "reason": "on_missing: delete-keys",
        ]
        let entry = try #require(JournalEntry(record: deleted))
        let e = Explainer.explain(evidence(history: [entry], key: "sha256:abc"))
        #expect(e.cause == .keyRevoked)
        #expect(e.facts.contains { $0.contains("r-9") })
    }

    @Test func keyFromAnotherEnvironment() {
        let e = Explainer.explain(evidence(key: "sha256:abc"))
        #expect(e.cause == .otherEnvironment)
    }

    @Test func withinGraceAndBlockedByAPersonAndNotOurs() {
        let flagged = ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + String(now - 100), Marks.reasonPrefix + "missing"]
        let grace = Explainer.explain(evidence(consumerTags: flagged, directory: .absent))
        #expect(grace.cause == .withinGrace)
        #expect(grace.verdict.contains(TimeFormat.rfc3339(now - 100 + 86_400)))
        #expect(Explainer.explain(evidence(consumerTags: ["idp-managed"], theirPlugin: true)).cause == .blockedByPerson)
        #expect(Explainer.explain(evidence(consumerTags: ["idp-managed"], directory: .active(user))).cause == .notOurs)
    }
}
