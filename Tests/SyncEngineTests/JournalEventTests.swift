import SyncCore
import SyncEngine
import Testing

/// The journal's one encoding: fields written out by hand, and every event read back as written.
@Suite("Journal events: encoding and decoding")
struct JournalEventTests {
    static let consumer = Consumer(id: ConsumerID("c-1"), username: "alice", customID: "u-1", tags: nil)
    static let action = JournalEvent.ActionRecord(
        run: "r-1", gateway: "prod", action: .disable, situation: .missing, consumer: consumer, user: nil,
        keys: [KeyRef(id: KeyID("k-1"), fingerprint: "sha256:0011223344556677", expiresAt: 1_796_000_000)],
        credentials: [
            CredentialRef(type: "key-auth", id: "k-1", identity: "sha256:0011223344556677"),
            CredentialRef(type: "jwt", id: "j-1", identity: "key=issuer-1"),
        ], before: ["idp-managed"], after: ["idp-managed", "idp-sync:disabled"], reason: "gone")

    @Test func anOutcomeHasTheDocumentedFields() {
        let fields = JournalEvent.outcome(Self.action, intent: 41, result: .failed("boom")).fields
        let expected: [String: JSONValue] = [
            "event": "outcome", "run": "r-1", "gateway": "prod", "action": "disable", "situation": "missing",
            "consumer": ["id": "c-1", "username": "alice", "custom_id": "u-1"], "user": .null,
            "keys": [["id": "k-1", "fingerprint": "sha256:0011223344556677", "expires_at": "2026-11-30T00:53:20Z"]],
            "credentials": [
                ["type": "key-auth", "id": "k-1", "identity": "sha256:0011223344556677"],
                ["type": "jwt", "id": "j-1", "identity": "key=issuer-1"],
            ],
            "before": ["idp-managed"],
            "after": ["idp-managed", "idp-sync:disabled"], "reason": "gone", "intent": 41, "outcome": "failed",
            "error": "boom",
        ]
        #expect(JSONValue.object(fields) == JSONValue.object(expected))
    }

    @Test func aRunStartedHasTheDocumentedFields() {
        var started = JournalEvent.RunStarted(
            run: "r-2", version: "1.1.0", host: "h", uid: 998, configSHA256: "abc", repaired: "cut 3 bytes",
            previousRunInterrupted: ("r-1", [42]))
        started.restoreOf = "r-0"
        let expected: JSONValue = [
            "event": "run-started", "run": "r-2", "dry_run": false, "version": "1.1.0", "host": "h", "uid": 998,
            "config_sha256": "abc", "journal_format": 1, "repaired": "cut 3 bytes",
            "previous_run_interrupted": ["run": "r-1", "intents_without_outcome": [42]], "restore_of": "r-0",
        ]
        #expect(JSONValue.object(JournalEvent.runStarted(started).fields) == expected)
    }

    static let events: [JournalEvent] = [
        .runStarted(JournalEvent.RunStarted(run: "r-2", version: "1.1.0", host: "h", uid: 998, configSHA256: "abc")),
        .intent(action),
        .outcome(action, intent: 41, result: .applied),
        .outcome(action, intent: 41, result: .failed("boom")),
        .runFinished(.init(run: "r-2", outcome: "ok", exitCode: 0, planHash: "ff", users: 12, counts: ["flag": 1], stopped: false)),
        .runFinished(.init(run: "r-3", outcome: "ok", exitCode: 0, planHash: "ee", restoreOf: "r-2", skipped: ["x"])),
        .runRefused(.init(run: "r-4", cause: "shrink", detail: "12 → 1", planHash: nil)),
        .journalStarted(
            .init(
                version: "1.1.0", host: "h", uid: 0, previousFile: "journal.jsonl.20261207T000000Z", previousSeq: 9,
                previousHash: String(repeating: "a", count: 64), acknowledgedReason: "ops", acknowledgedProblem: "cut",
                lastGoodUsers: 12)),
    ]

    @Test(arguments: events)
    func readsBackAsWritten(_ event: JournalEvent) throws {
        var record = event.fields
        record["seq"] = 5
        record["time"] = "2026-12-07T00:00:00Z"
        let entry = try #require(JournalEntry(record: .object(record)))
        #expect(entry.event == event)
        #expect(entry.seq == 5 && entry.time == "2026-12-07T00:00:00Z")
    }

    @Test func aNewerOrBrokenRecordIsNamedNotGuessed() throws {
        let newer = try #require(JournalEntry(record: ["event": "credential-rotated", "seq": 3]))
        #expect(newer.event == .unknown("credential-rotated"))
        let broken = try #require(JournalEntry(record: ["event": "intent", "seq": 4, "gateway": "g"]))
        #expect(broken.event == .unknown("intent"))
        #expect(JournalEntry(record: ["seq": 1]) == nil)
    }
}

extension JournalEvent: CustomTestStringConvertible {
    public var testDescription: String { name }
}
