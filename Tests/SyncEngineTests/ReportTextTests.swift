import SyncCore
import SyncEngine
import Testing

/// The text report's layout: one aligned table per gateway, fitted to the width, the same for a
/// restore (no gateway summaries) as for a sync.
@Suite("The plan as a person reads it")
struct ReportTextTests {
    static func consumer(_ name: String) -> Consumer {
        Consumer(id: ConsumerID("id-" + name), username: name, customID: "cid-" + name, tags: ["idp-managed"])
    }

    static func report(restore: Bool, width: Int) -> String {
        let long = String(repeating: "x", count: 60)
        let plan = {
            var plan = SyncPlan(
                actions: [
                    SyncAction(gateway: "prod", kind: restore ? .restore : .flag, situation: .missing, consumer: consumer("frank"), user: nil, reason: "no user " + long),
                    SyncAction(gateway: "prod", kind: .disable, situation: .deactivated, consumer: consumer("a-very-long-username-" + long), user: nil, reason: "deactivated"),
                ],
                findings: [SyncFinding(gateway: "prod", situation: .protected, consumer: consumer("svc-ci"), user: nil, reason: "matches policy.protected")],
                gateways: restore ? [] : [GatewayPlanSummary(name: "prod", managed: 10, situations: [.missing: 1])])
            plan.waiting = [GraceWait(gateway: "prod", situation: .missing, consumer: consumer("erin"), user: nil, disableAt: 7_200)]
            return plan
        }()
        var report = RunReport(run: "r-1", dryRun: false, sourceType: restore ? "journal" : "ldap")
        report.plan = plan
        report.outcomes = [0: .applied, 1: .failed("HTTP 500")]
        return report.text(style: ReportStyle(width: width, configArguments: ["--config", "/etc/x y.yaml"], now: 0))
    }

    @Test(arguments: [(false, 120), (true, 120), (false, 100), (true, 90)])
    func aligned(_ restore: Bool, _ width: Int) throws {
        let text = Self.report(restore: restore, width: width)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(restore ? "gateway prod" : "gateway prod: 10 managed consumers"), "\(text)")
        let header = try #require(lines.first { $0.hasPrefix("  ACTION") }, "\(text)")
        #expect(header.contains("OUTCOME"))
        let column = try #require(header.range(of: "CONSUMER")).lowerBound.utf16Offset(in: header)
        let rows = lines.drop { $0 != header }.dropFirst().prefix { $0.hasPrefix("  ") && !$0.hasPrefix("  source") }
        #expect(rows.count == 4, "\(text)")
        #expect(rows.contains { $0.contains("…") && $0.contains("a-very-") && !$0.contains(String(repeating: "x", count: 60)) })
        for row in rows {
            #expect(row.count <= width, "\(row)")
            #expect(row.dropFirst(column).first != " ", "misaligned: \(row)")
        }
        #expect(rows.contains { $0.contains("FAILED") })
        #expect(rows.contains { $0.contains("a-very-") })
        #expect(rows.contains { $0.contains("… waiting") && $0.contains("disable at 1970-01-01T02:00:00Z (in 2h)") })
    }

    @Test func theWaitCountsFromWhenThePlanWasMadeNotWhenItIsPrinted() {
        var report = RunReport(run: nil, dryRun: true, sourceType: "ldap")
        var plan = SyncPlan(actions: [], findings: [], gateways: [GatewayPlanSummary(name: "prod", managed: 1, situations: [:])])
        plan.waiting = [GraceWait(gateway: "prod", situation: .missing, consumer: Self.consumer("frank"), user: nil, disableAt: 86_400)]
        report.plan = plan
        report.plannedAt = 0
        // Printed a second after the plan was made (a run that straddles a second): still 1d.
        #expect(report.text(style: ReportStyle(now: 1)).contains("disable at 1970-01-02T00:00:00Z (in 1d)"))
        report.plannedAt = nil
        #expect(report.text(style: ReportStyle(now: 1)).contains("(in 23h59m59s)"))
    }

    @Test func aBrakeSuggestsACompleteCommand() {
        var report = RunReport(run: nil, dryRun: true, sourceType: "ldap")
        report.plan = SyncPlan(actions: [], findings: [], gateways: [])
        report.planHash = "abc123"
        report.users = 42
        report.refused = Refusal(cause: .brakeCount, detail: "too many")
        let text = report.text(style: ReportStyle(configArguments: ["--config", "/etc/x y.yaml"]))
        #expect(text.contains("\n  idp-sync sync --config '/etc/x y.yaml' --accept-plan abc123\n"), "\(text)")
        report.refused = Refusal(cause: .shrink, detail: "shrank")
        #expect(report.text(style: ReportStyle()).contains("\n  idp-sync sync --accept-users 42\n"))
    }
}
