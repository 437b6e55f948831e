import SyncCore
import Testing

@Suite("Safety checks of docs/operations.md")
struct SafetyChecksTests {
    struct SourceCase: Sendable, CustomTestStringConvertible {
        var users: Int
        var last: Int?
        var accept: Int?
        var cause: Refusal.Cause?
        var testDescription: String { "\(users) users after \(last.map(String.init) ?? "none") → \(cause?.rawValue ?? "ok")" }
    }

    @Test(arguments: [
        SourceCase(users: 0, last: nil, cause: .minUsers),
        SourceCase(users: 4, last: nil, cause: .minUsers),
        SourceCase(users: 5, last: nil, cause: nil),
        SourceCase(users: 80, last: 100, cause: nil),
        SourceCase(users: 79, last: 100, cause: .shrink),
        SourceCase(users: 79, last: 100, accept: 79, cause: nil),
        SourceCase(users: 79, last: 100, accept: 78, cause: .shrink),
        SourceCase(users: 500, last: 100, cause: nil),
    ])
    func source(_ c: SourceCase) {
        let policy = Policy(minUsers: 5, maxShrinkPercent: 20)
        let refusal = SafetyChecks.checkSource(users: c.users, lastGoodUsers: c.last, policy: policy, acceptUsers: c.accept)
        #expect(refusal?.cause == c.cause)
        if c.cause != nil { #expect(refusal?.exitCode == .sourceUntrustworthy) }
    }

    func plan(disabling n: Int, managed: Int) -> SyncPlan {
        let actions = (0..<n).map { i in
            SyncAction(
                gateway: "g", kind: .disable, situation: .missing,
                consumer: Consumer(id: ConsumerID("c\(i)"), username: nil, customID: "x\(i)", tags: nil), user: nil,
                reason: "")
        }
        return SyncPlan(actions: actions, findings: [], gateways: [GatewayPlanSummary(name: "g", managed: managed, situations: [:])])
    }

    @Test(arguments: [
        (3, 100, nil), (4, 100, Refusal.Cause.brakeCount), (3, 50, Refusal.Cause.brakePercent), (2, 40, nil),
    ] as [(Int, Int, Refusal.Cause?)])
    func brakes(_ n: Int, _ managed: Int, _ cause: Refusal.Cause?) {
        let policy = Policy(maxDisable: 3, maxDisablePercent: 5)
        #expect(SafetyChecks.checkBrakes(plan: plan(disabling: n, managed: managed), policy: policy)?.cause == cause)
    }

    @Test func exitCodePrecedence() {
        #expect(ExitStatus.combine([.changes, .error]) == .error)
        #expect(ExitStatus.combine([.error, .refused, .sourceUntrustworthy]) == .sourceUntrustworthy)
        #expect(ExitStatus.combine([.changes]) == .changes)
        #expect(ExitStatus.combine([]) == .success)
    }
}
