import SyncCore
import Testing

/// One row of the planner's table: a consumer's state on the gateway and its user in the directory.
struct PlannerCase: CustomTestStringConvertible, Sendable {
    enum UserState: Sendable { case active, deactivated, absent }

    var name: String
    var user: UserState = .active
    var tags: [String] = ["idp-managed"]
    var ourBlock = false
    /// A person's block as the gateway adapter classified it (the Kong rules are tested with the adapter).
    var theirBlock: ForeignBlock? = nil
    var onMissing: OnMissing = .disable
    var grace: Int64 = 86_400
    var keys = 1
    var expected: [ActionKind]
    var situation: Situation
    var expectedTags: [String]? = nil

    var testDescription: String { name }
}

let now: Int64 = 1_796_000_000
let userID = "5aca05f7-1e30-5a6b-82b9-64f1787ab26a"

func since(_ seconds: Int64) -> String { Marks.missingSincePrefix + String(seconds) }

let plannerCases: [PlannerCase] = [
    PlannerCase(name: "linked, no marks: nothing", expected: [], situation: .linked),
    PlannerCase(
        name: "linked, flagged: unflag keeps foreign tags",
        tags: ["idp-managed", "team:a", Marks.orphaned, since(now - 10), Marks.reasonPrefix + "missing"],
        expected: [.unflag], situation: .linked, expectedTags: ["idp-managed", "team:a"]),
    PlannerCase(
        name: "linked, disabled: restore",
        tags: ["idp-managed", Marks.orphaned, since(now - 10), Marks.reasonPrefix + "missing", Marks.disabled],
        ourBlock: true, expected: [.restore], situation: .linked, expectedTags: ["idp-managed"]),
    PlannerCase(
        name: "linked, our plugin without tags: restore", ourBlock: true, expected: [.restore], situation: .linked),
    PlannerCase(
        name: "linked, person's blocking plugin never stops restore",
        tags: ["idp-managed", Marks.disabled], ourBlock: true, theirBlock: .blocking("a person's block"), expected: [.restore],
        situation: .linked),
    PlannerCase(
        name: "missing, first seen: flag with the clock at now", user: .absent, expected: [.flag], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing"]),
    PlannerCase(
        name: "missing, within grace: nothing", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 3600), Marks.reasonPrefix + "missing"], expected: [],
        situation: .missing),
    PlannerCase(
        name: "missing, grace over: disable", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 86_400), Marks.reasonPrefix + "missing"],
        expected: [.disable], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now - 86_400), Marks.reasonPrefix + "missing", Marks.disabled]),
    PlannerCase(
        name: "missing, grace 0: flag then disable in one run", user: .absent, grace: 0, expected: [.flag, .disable],
        situation: .missing),
    PlannerCase(
        name: "missing, already disabled: nothing", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 90_000), Marks.reasonPrefix + "missing", Marks.disabled],
        ourBlock: true, expected: [], situation: .missing),
    PlannerCase(
        name: "on_missing flag: never disables", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 900_000), Marks.reasonPrefix + "missing"], onMissing: .flag,
        expected: [], situation: .missing),
    PlannerCase(
        name: "on_missing delete-keys: disable then one delete-key per key", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 90_000), Marks.reasonPrefix + "missing"],
        onMissing: .deleteKeys, keys: 2, expected: [.disable, .deleteKey, .deleteKey], situation: .missing),
    PlannerCase(
        name: "on_missing delete-keys, already disabled, keys left: delete them", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 90_000), Marks.reasonPrefix + "missing", Marks.disabled],
        ourBlock: true, onMissing: .deleteKeys, keys: 1, expected: [.deleteKey], situation: .missing),
    PlannerCase(
        name: "on_missing delete-keys, disabled, no keys left: nothing", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 90_000), Marks.reasonPrefix + "missing", Marks.disabled],
        ourBlock: true, onMissing: .deleteKeys, keys: 0, expected: [], situation: .missing),
    PlannerCase(
        name: "deactivated: flag and disable at once (disabled_grace_period 0)", user: .deactivated,
        expected: [.flag, .disable], situation: .deactivated),
    PlannerCase(
        name: "deactivated → missing keeps the clock and updates the reason", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 100), Marks.reasonPrefix + "deactivated"], expected: [.flag],
        situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now - 100), Marks.reasonPrefix + "missing"]),
    PlannerCase(
        name: "missing-since in the future is rewritten to now", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now + 9999), Marks.reasonPrefix + "missing"], expected: [.flag],
        situation: .missing, expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing"]),
    PlannerCase(
        name: "unreadable missing-since is rewritten to now", user: .absent,
        tags: ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "yesterday", Marks.reasonPrefix + "missing"],
        expected: [.flag], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing"]),
    // Hostile clocks (issue 10.3): one crafted tag must not trap the planner and stop every run.
    PlannerCase(
        name: "missing-since of Int64.min is unreadable and rewritten to now", user: .absent,
        tags: ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "-9223372036854775808", Marks.reasonPrefix + "missing"],
        expected: [.flag], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing"]),
    PlannerCase(
        name: "missing-since just above Int64.min + a day is rewritten to now", user: .absent,
        tags: ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "-9223372036854700000", Marks.reasonPrefix + "missing"],
        grace: 0, expected: [.flag, .disable], situation: .missing),
    PlannerCase(
        name: "missing-since of Int64.max is rewritten to now", user: .absent,
        tags: ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "9223372036854775807", Marks.reasonPrefix + "missing"],
        expected: [.flag], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing"]),
    PlannerCase(
        name: "a clock before 1970 is unreadable and rewritten to now", user: .absent,
        tags: ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "-1", Marks.reasonPrefix + "missing"],
        expected: [.flag], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing"]),
    PlannerCase(
        name: "the largest grace never wraps into a disable", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(1), Marks.reasonPrefix + "missing"], grace: Int64.max,
        expected: [], situation: .missing),
    PlannerCase(
        name: "our plugin without our tags gets its tags back", user: .absent, tags: ["idp-managed"], ourBlock: true,
        expected: [.flag], situation: .missing,
        expectedTags: ["idp-managed", Marks.orphaned, since(now), Marks.reasonPrefix + "missing", Marks.disabled]),
    PlannerCase(
        name: "our disabled tag without our plugin gets the plugin back", user: .absent,
        tags: ["idp-managed", Marks.orphaned, since(now - 10), Marks.reasonPrefix + "missing", Marks.disabled],
        expected: [.disable], situation: .missing),
    PlannerCase(
        name: "a person's block: blocked, report only", user: .absent, theirBlock: .blocking("a person's block"),
        grace: 0, expected: [], situation: .blocked),
    PlannerCase(
        name: "a person's configuration that blocks nothing but keeps ours out: conflict", user: .absent,
        theirBlock: .conflicting("a disabled block"), grace: 0, expected: [], situation: .conflict),
    PlannerCase(
        name: "a person's block does not matter while only flagging", user: .absent,
        theirBlock: .conflicting("a disabled block"), expected: [.flag], situation: .missing),
    PlannerCase(
        name: "a person's block never stops restore of ours", ourBlock: true, theirBlock: .conflicting("a disabled block"),
        expected: [.restore], situation: .linked),
]

@Suite("Planner: every situation and action of docs/report.md")
struct PlannerTests {
    func build(_ c: PlannerCase) -> (DirectorySnapshot, GatewaySnapshot) {
        var users = [DirectoryUser(id: UserID("00000000-0000-0000-0000-000000000001"), username: "zed")]
        switch c.user {
        case .active: users.append(DirectoryUser(id: UserID(userID), username: "alice"))
        case .deactivated:
            users.append(
                DirectoryUser(id: UserID(userID), username: "alice", state: .deactivated, deactivationReason: "locked"))
        case .absent: break
        }
        let consumerID = ConsumerID("c-1")
        let consumer = Consumer(id: consumerID, username: "alice", customID: userID.uppercased(), tags: c.tags)
        var ours: [ConsumerID: BlockID] = [:]
        if c.ourBlock { ours[consumerID] = BlockID("b-ours") }
        let keys = (0..<c.keys).map { KeyRef(id: KeyID("k-\($0)"), fingerprint: "sha256:\($0)") }
        let gateway = GatewaySnapshot(
            name: "prod", consumers: [consumer], ourBlocks: ours,
            details: [consumerID: ConsumerDetails(keys: keys, ourBlock: ours[consumerID], foreign: c.theirBlock)])
        return (DirectorySnapshot(sourceType: "ldap", scope: "ou=people", users: users), gateway)
    }

    @Test(arguments: plannerCases)
    func situationAndActions(_ c: PlannerCase) {
        let policy = Policy(gracePeriod: c.grace, onMissing: c.onMissing)
        let planner = Planner(policy: policy, gateways: [GatewayPolicy(name: "prod", match: .recommended)])
        let (directory, gateway) = build(c)
        let plan = planner.plan(directory: directory, snapshots: [gateway], now: now)
        #expect(plan.actions.map(\.kind) == c.expected)
        #expect(plan.gateways.first?.situations == [c.situation: 1])
        if let expectedTags = c.expectedTags {
            #expect(plan.actions.last?.tagsAfter == expectedTags)
        }
        if [.blocked, .conflict].contains(c.situation) {
            #expect(plan.findings.map(\.situation) == [c.situation])
        }
        // Pure: the same inputs give the same plan.
        #expect(planner.plan(directory: directory, snapshots: [gateway], now: now) == plan)
    }

    @Test func disableCarriesTheConsumersKeys() {
        var c = PlannerCase(name: "keys", user: .absent, grace: 0, expected: [], situation: .missing)
        c.keys = 2
        let (directory, gateway) = build(c)
        let plan = Planner(policy: Policy(gracePeriod: 0), gateways: []).plan(
            directory: directory, snapshots: [gateway], now: now)
        #expect(plan.actions.first { $0.kind == .disable }?.keys.map(\.id.rawValue) == ["k-0", "k-1"])
    }

    @Test func withoutDetailsThePlanAsksForThem() {
        let c = PlannerCase(name: "no details", user: .absent, grace: 0, expected: [], situation: .missing)
        var (directory, gateway) = build(c)
        gateway.details = [:]
        let plan = Planner(policy: Policy(gracePeriod: 0), gateways: []).plan(
            directory: directory, snapshots: [gateway], now: now)
        #expect(plan.detailsNeeded == ["prod": [ConsumerID("c-1")]])
    }
}

@Suite("Planner: scope, linking and disputes")
struct PlannerScopeTests {
    let users = [
        DirectoryUser(id: UserID("AAAAAAAA-0000-0000-0000-000000000001"), username: "Alice"),
        DirectoryUser(id: UserID("id-bob"), username: "bob"),
        DirectoryUser(id: UserID("id-bob-2"), username: "BOB"),
    ]

    func plan(_ consumers: [Consumer], rule: MatchRule = .recommended, protected: [String] = []) -> SyncPlan {
        let planner = Planner(
            policy: Policy(gracePeriod: 0, protected: protected), gateways: [GatewayPolicy(name: "g", match: rule)])
        return planner.plan(
            directory: DirectorySnapshot(sourceType: "ldap", scope: "ou=people", users: users),
            snapshots: [GatewaySnapshot(name: "g", consumers: consumers)], now: now)
    }

    @Test func uuidIdsCompareCaseInsensitively() {
        let p = plan([Consumer(id: ConsumerID("1"), username: "x", customID: "aaaaaaaa-0000-0000-0000-000000000001", tags: [])])
        #expect(p.gateways[0].situations == [.linked: 1])
    }

    @Test func otherIdsCompareExactly() {
        let p = plan([Consumer(id: ConsumerID("1"), username: "x", customID: "ID-BOB", tags: [])])
        #expect(p.gateways[0].situations == [.missing: 1])
    }

    @Test func usernamesCompareCaseInsensitivelyAndTwoUsersDispute() {
        let rule = MatchRule(consumer: .username, user: .username)
        let p = plan(
            [
                Consumer(id: ConsumerID("1"), username: "ALICE", customID: nil, tags: []),
                Consumer(id: ConsumerID("2"), username: "bob", customID: nil, tags: []),
            ], rule: rule)
        #expect(p.gateways[0].situations == [.linked: 1, .disputed: 1])
        #expect(p.actions.isEmpty)
    }

    @Test func twoConsumersClaimingOneUserAreDisputedAndNeverDisabled() {
        let p = plan([
            Consumer(id: ConsumerID("1"), username: "a", customID: "gone", tags: []),
            Consumer(id: ConsumerID("2"), username: "b", customID: "gone", tags: []),
        ])
        #expect(p.gateways[0].situations == [.disputed: 2])
        #expect(p.actions.isEmpty)
    }

    @Test func unlinkedAndProtectedAreReportOnly() {
        let p = plan(
            [
                Consumer(id: ConsumerID("1"), username: "nolink", customID: nil, tags: []),
                Consumer(id: ConsumerID("2"), username: "SVC-deploy", customID: "gone", tags: []),
                Consumer(id: ConsumerID("3"), username: "x", customID: "BreakGlass", tags: []),
            ], protected: ["svc-*", "breakglass"])
        #expect(p.gateways[0].situations == [.unlinked: 1, .protected: 2])
        #expect(p.actions.isEmpty)
    }

    @Test func orderIsStableWhateverTheInputOrder() {
        let consumers = (0..<20).map { Consumer(id: ConsumerID("c\($0)"), username: "u\($0 % 7)", customID: "gone-\($0)", tags: []) }
        let a = plan(consumers)
        let b = plan(consumers.reversed())
        #expect(a.actions == b.actions)
        #expect(a.hashLines == b.hashLines)
    }
}

@Suite("Planner: the hashed index agrees with normalisation")
struct PlannerIndexTests {
    @Test(arguments: [
        ("ALICE", "alice", MatchRule.UserField.username, true), ("Ärger", "ärger", .username, true),
        ("5ACA05F7-1E30-5A6B-82B9-64F1787AB26A", "5aca05f7-1e30-5a6b-82b9-64f1787ab26a", .id, true),
        ("ID-BOB", "id-bob", .id, false), ("bob", "bob ", .username, false),
    ] as [(String, String, MatchRule.UserField, Bool)])
    func sameMatchesNormalize(_ a: String, _ b: String, _ field: MatchRule.UserField, _ same: Bool) {
        #expect((MatchKey.normalize(a, as: field) == MatchKey.normalize(b, as: field)) == same)
        // The planner's hashed index links exactly when the normalised values are equal.
        let planner = Planner(policy: Policy(), gateways: [GatewayPolicy(name: "g", match: MatchRule(consumer: .customID, user: field))])
        let user = DirectoryUser(id: UserID(field == .id ? a : "x"), username: field == .username ? a : "x")
        let plan = planner.plan(
            directory: DirectorySnapshot(sourceType: "t", scope: "s", users: [user]),
            snapshots: [GatewaySnapshot(name: "g", consumers: [Consumer(id: ConsumerID("c"), username: nil, customID: b, tags: [])])],
            now: 0)
        #expect(plan.gateways[0].situations == (same ? [.linked: 1] : [.missing: 1]))
    }

    @Test func nonASCIIUsernamesLinkAndDispute() {
        let users = [
            DirectoryUser(id: UserID("1"), username: "Jürgen"), DirectoryUser(id: UserID("2"), username: "Ärger"),
            DirectoryUser(id: UserID("3"), username: "ärger"),
        ]
        let planner = Planner(policy: Policy(), gateways: [GatewayPolicy(name: "g", match: MatchRule(consumer: .username, user: .username))])
        let plan = planner.plan(
            directory: DirectorySnapshot(sourceType: "t", scope: "s", users: users),
            snapshots: [
                GatewaySnapshot(
                    name: "g",
                    consumers: [
                        Consumer(id: ConsumerID("a"), username: "JÜRGEN", customID: nil, tags: []),
                        Consumer(id: ConsumerID("b"), username: "ÄRGER", customID: nil, tags: []),
                        Consumer(id: ConsumerID("c"), username: "Zoë", customID: nil, tags: []),
                        Consumer(id: ConsumerID("d"), username: "zoë", customID: nil, tags: []),
                    ])
            ], now: 0)
        #expect(plan.gateways[0].situations == [.linked: 1, .disputed: 3])
    }
}


import Dispatch

@Suite("Planner: parallel planning gives the same plan")
struct PlannerParallelTests {
    @Test func slicesMergeIntoTheSequentialPlan() {
        let n = 30_000
        func id(_ i: Int) -> String { "00000000-0000-4000-8000-" + String(String(i, radix: 16).reversed()).padding(12) }
        let users = (0..<n).map { i in
            DirectoryUser(id: UserID(id(i)), username: "u\(i)", state: i % 97 == 0 ? .deactivated : .active)
        }
        let consumers = (0..<n).map { i in
            Consumer(
                id: ConsumerID("c\(i)"), username: i % 50 == 0 ? "svc-\(i)" : "u\(i)",
                customID: i % 31 == 0 ? id(n + i) : (i % 211 == 0 ? id(i - 1) : id(i).uppercased()),
                tags: i % 7 == 0 ? ["idp-managed", Marks.orphaned, Marks.missingSincePrefix + "0", Marks.reasonPrefix + "missing"] : ["idp-managed"])
        }
        let directory = DirectorySnapshot(sourceType: "t", scope: "s", users: users)
        let snapshot = GatewaySnapshot(name: "g", consumers: consumers)
        let policy = Policy(gracePeriod: 3600, protected: ["svc-*"])
        let sequential = Planner(policy: policy, gateways: [GatewayPolicy(name: "g", match: .recommended)])
        var parallel = sequential
        parallel.parallel = { n, body in DispatchQueue.concurrentPerform(iterations: n, execute: body) }
        let a = sequential.plan(directory: directory, snapshots: [snapshot], now: 1_000_000)
        let b = parallel.plan(directory: directory, snapshots: [snapshot], now: 1_000_000)
        #expect(a == b)
        #expect(a.actions.count > 1000)
        #expect(a.gateways[0].situations[.disputed, default: 0] > 0)
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite("Planner: credentials to delete, consumers waiting out their grace")
struct PlannerCredentialTests {
    /// `policy.delete_credentials` decides which types the delete step removes: key-auth as
    /// `delete-key`, every other type as `delete-credential` with `type:id` in the plan hash.
    @Test(arguments: [
        (["key-auth"], ["delete-key k-0"]),
        (["key-auth", "jwt"], ["delete-key k-0", "delete-credential jwt:j-1"]),
        (["jwt", "basic-auth"], ["delete-credential basic-auth:b-1", "delete-credential jwt:j-1"]),
        ([String](), [String]()),
    ] as [([String], [String])])
    func deleteCredentialsNamesTheTypes(_ types: [String], _ expected: [String]) {
        var c = PlannerCase(name: "credentials", user: .absent, grace: 0, expected: [], situation: .missing)
        c.keys = 1
        var (directory, gateway) = PlannerTests().build(c)
        let id = ConsumerID("c-1")
        let keys = gateway.details[id]!.keys
        gateway.details[id] = ConsumerDetails(
            keys: keys, credentials: [
                CredentialRef(type: "key-auth", id: "k-0", identity: "sha256:0"),
                CredentialRef(type: "jwt", id: "j-1", identity: "key=iss-1"),
                CredentialRef(type: "basic-auth", id: "b-1", identity: "username=alice"),
                CredentialRef(type: "hmac-auth", id: "h-1", identity: "username=alice"),
            ])
        let policy = Policy(gracePeriod: 0, onMissing: .deleteKeys, deleteCredentials: types)
        let plan = Planner(policy: policy, gateways: []).plan(directory: directory, snapshots: [gateway], now: now)
        let deletions = plan.actions.filter { $0.kind == .deleteKey || $0.kind == .deleteCredential }.map { action in
            action.kind == .deleteKey
                ? "delete-key \(action.keys[0].id)" : "delete-credential \(action.credentials[0].qualifiedID)"
        }
        #expect(deletions == expected)
        // The disable carries every credential, so the journal lists them all.
        #expect(plan.actions.first { $0.kind == .disable }?.credentials.count == 4)
        for action in plan.actions where action.kind == .deleteCredential {
            #expect(action.hashLine.hasSuffix("|" + action.credentials[0].qualifiedID))
        }
    }

    /// A flagged consumer inside its grace period is listed with the time a run disables it.
    static let waitingRows: [(OnMissing, Int64, Bool)] = [
        (.disable, 3600, true), (.disable, 90_000, false), (.flag, 3600, false), (.deleteKeys, 3600, true),
    ]

    @Test(arguments: waitingRows)
    func waitingConsumersCarryTheirDisableTime(_ onMissing: OnMissing, _ age: Int64, _ waits: Bool) {
        let c = PlannerCase(
            name: "waiting", user: .absent,
            tags: ["idp-managed", Marks.orphaned, since(now - age), Marks.reasonPrefix + "missing"], expected: [],
            situation: .missing)
        let (directory, gateway) = PlannerTests().build(c)
        let plan = Planner(policy: Policy(gracePeriod: 86_400, onMissing: onMissing), gateways: []).plan(
            directory: directory, snapshots: [gateway], now: now)
        let expected: [Int64] = waits ? [now - age + 86_400] : []
        #expect(plan.waiting.map { $0.disableAt } == expected)
    }

    /// Our marks and block both stripped while the user is still gone: with the journal's word
    /// that we disabled it, disabled again at once; without it, flagged with a fresh clock.
    @Test(arguments: [(true, OnMissing.disable, [ActionKind.flag, .disable]), (false, .disable, [.flag]), (true, .flag, [.flag])])
    func aStrippedConsumerIsDisabledAgainWhenTheJournalSaysWeDid(_ journaled: Bool, _ onMissing: OnMissing, _ expected: [ActionKind]) {
        let c = PlannerCase(name: "stripped", user: .absent, expected: [], situation: .missing)
        var (directory, gateway) = PlannerTests().build(c)
        if journaled { gateway.disabledEarlier = [ConsumerID("c-1"): now - 7200] }
        let plan = Planner(policy: Policy(gracePeriod: 86_400, onMissing: onMissing), gateways: []).plan(
            directory: directory, snapshots: [gateway], now: now)
        #expect(plan.actions.map(\.kind) == expected)
        if journaled && onMissing != .flag {
            #expect(plan.actions.last?.reason.contains("the journal shows idp-sync disabled it") == true)
            #expect(plan.actions.first?.tagsAfter?.contains(since(now - 7200)) == true, "the clock is the disable's")
        }
    }
}
