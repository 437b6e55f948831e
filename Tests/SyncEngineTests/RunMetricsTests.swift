import SyncCore
import SyncEngine
import Testing

/// The textfile a run writes, from the previous one: what is carried, what is added, what a hostile
/// file cannot smuggle in. Expected sample lines are written out by hand (the tests do not reuse the
/// production parser to check the renderer).
@Suite("Run metrics: rendering and the carried counter")
struct RunMetricsTests {
    typealias Series = ActionCounters.Series

    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// The `idp_sync_actions_total` sample lines of a textfile.
    static func actionLines(_ text: String) -> [String] {
        lines(text).filter { $0.hasPrefix("idp_sync_actions_total{") }
    }

    static func series(_ gateway: String, _ action: ActionKind, _ outcome: ActionCounters.Outcome) -> Series {
        Series(gateway: gateway, action: action, outcome: outcome)
    }

    static func action(_ gateway: String, _ kind: ActionKind, _ username: String) -> SyncAction {
        SyncAction(
            gateway: gateway, kind: kind, situation: .missing,
            consumer: Consumer(id: ConsumerID("c-\(username)"), username: username, customID: nil, tags: nil),
            user: nil, reason: "test")
    }

    /// A real run's report: `outcomes[i]` for `actions[i]`, nil for one that was not attempted.
    static func report(
        _ actions: [SyncAction] = [], _ outcomes: [ActionOutcome?] = [], exit: SyncCore.ExitStatus = .success,
        refused: Refusal? = nil, dryRun: Bool = false
    ) -> RunReport {
        var report = RunReport(run: "r-1", dryRun: dryRun, sourceType: "ldap")
        report.exitStatus = exit
        report.refused = refused
        report.plan = SyncPlan(actions: actions, findings: [], gateways: [])
        for (i, outcome) in outcomes.enumerated() {
            if let outcome { report.outcomes[i] = outcome }
        }
        return report
    }

    // MARK: last_success

    @Test(arguments: [
        ("idp_sync_last_success_timestamp_seconds 123\n", 123.0 as Double?),
        ("idp_sync_last_success_timestamp_seconds 1765000000.25\n", 1_765_000_000.25),
        ("idp_sync_last_success_timestamp_seconds NaN\n", nil),
        ("idp_sync_last_success_timestamp_seconds +Inf\n", nil),
        ("idp_sync_last_success_timestamp_seconds -5\n", nil),
        ("idp_sync_last_success_timestamp_seconds 5 1700000000000\n", nil),
        // A read cut at its limit: "123456" may have been "1234567"; the partial line is not read.
        ("# HELP x\nidp_sync_last_success_timestamp_seconds 123456", nil),
        ("other 1\n", nil),
    ])
    func previousValuesFromAFileAreOnlyFiniteNonNegativeAndWhole(_ text: String, _ expected: Double?) {
        #expect(RunMetrics.value(of: "idp_sync_last_success_timestamp_seconds", in: text) == expected)
    }

    @Test func aFailedRunKeepsTheLastSuccessAndASuccessfulOneMovesIt() {
        let failed = RunMetrics.render(
            report: Self.report(exit: .error), gateways: [], startedAt: 100, finishedAt: 110.5,
            previous: "idp_sync_last_success_timestamp_seconds 50\n")
        #expect(Self.lines(failed).contains("idp_sync_last_success_timestamp_seconds 50"))
        #expect(Self.lines(failed).contains("idp_sync_run_duration_seconds 10.5"))
        #expect(!failed.contains("idp_sync_directory_users"))
        var ok = Self.report()
        ok.users = 12
        let okText = RunMetrics.render(
            report: ok, gateways: [], startedAt: 100, finishedAt: 110,
            previous: "idp_sync_last_success_timestamp_seconds 50\n")
        #expect(Self.lines(okText).contains("idp_sync_last_success_timestamp_seconds 110"))
        #expect(Self.lines(okText).contains("idp_sync_directory_users 12"))
        let first = RunMetrics.render(report: Self.report(), gateways: [], startedAt: 1, finishedAt: 2, previous: nil)
        #expect(first.contains("idp_sync_last_success_timestamp_seconds 2"))
        let neverSucceeded = RunMetrics.render(
            report: Self.report(exit: .error), gateways: [], startedAt: 1, finishedAt: 2, previous: nil)
        #expect(!neverSucceeded.contains("idp_sync_last_success_timestamp_seconds"))
    }

    // MARK: the carried counter: reading a previous file

    static let ours = #"idp_sync_actions_total{action="disable",gateway="prod",outcome="applied"}"#

    /// (a previous file's text, what is carried from it)
    static let carried: [(String, [Series: Double])] = [
        ("", [:]),
        ("\(ours) 7\n", [series("prod", .disable, .applied): 7]),
        // Our own HELP and TYPE lines, and other metrics, are no samples of it.
        ("# HELP idp_sync_actions_total x\n# TYPE idp_sync_actions_total counter\nidp_sync_exit_code 0\n\(ours) 7\n",
         [series("prod", .disable, .applied): 7]),
        // Labels in any order, a trailing comma, a tab before the value, a fraction.
        (#"idp_sync_actions_total{outcome="failed",gateway="prod",action="delete-key",} 2.5"# + "\n",
         [series("prod", .deleteKey, .failed): 2.5]),
        ("idp_sync_actions_total{action=\"flag\",gateway=\"prod\",outcome=\"skipped\"}\t3\n",
         [series("prod", .flag, .skipped): 3]),
        // A gateway no longer configured is kept; its label value is unescaped.
        (#"idp_sync_actions_total{action="flag",gateway="old \"one\" \\ x\n",outcome="applied"} 4"# + "\n",
         [series("old \"one\" \\ x\n", .flag, .applied): 4]),
        // The first sample of a label set counts.
        ("\(ours) 7\n\(ours) 9\n", [series("prod", .disable, .applied): 7]),
        // Values: only finite and non-negative, and nothing after the value (a timestamp).
        ("\(ours) NaN\n", [:]), ("\(ours) +Inf\n", [:]), ("\(ours) 1e999\n", [:]), ("\(ours) -1\n", [:]),
        ("\(ours) 7 1700000000000\n", [:]), ("\(ours) seven\n", [:]), ("\(ours)\n", [:]), ("\(ours)7\n", [:]),
        ("\(ours) 7", [:]),  // cut at the read limit
        // Label sets that are not exactly gateway, action and outcome, each once, well quoted.
        (#"idp_sync_actions_total{action="disable",gateway="prod",outcome="applied",instance="x"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",gateway="prod"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",action="flag",gateway="prod",outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="explode",gateway="prod",outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",gateway="prod",outcome="lost"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",gateway="",outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",gateway="p\trod",outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",gateway="prod,outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action=disable,gateway="prod",outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable" gateway="prod",outcome="applied"} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{} 1"# + "\n", [:]),
        (#"idp_sync_actions_total{action="disable",gateway="prod",outcome="applied" 1"# + "\n", [:]),
        (#"idp_sync_actions_total_x{action="disable",gateway="prod",outcome="applied"} 1"# + "\n", [:]),
        (#" idp_sync_actions_total{action="disable",gateway="prod",outcome="applied"} 1"# + "\n", [:]),
        // One bad line costs only itself.
        ("\(ours) NaN\n\(ours.replacingOccurrences(of: "prod", with: "dev")) 1\n",
         [series("dev", .disable, .applied): 1]),
    ]

    @Test(arguments: carried)
    func aPreviousFileCarriesOnlyWellFormedSamples(_ text: String, _ expected: [Series: Double]) {
        #expect(ActionCounters(carriedFrom: text).values == expected)
    }

    // MARK: the carried counter: what a run writes

    static let a = action("prod", .flag, "frank"), b = action("prod", .disable, "carol")
    static let c = action("prod", .disable, "dave"), d = action("dev", .deleteKey, "erin")

    /// (what the previous file holds, this run's report, the action samples the run writes beyond the
    /// zeros of every configured gateway × action × outcome, as "gateway/action/outcome")
    static let runs: [(String, String, RunReport, [String: Double])] = [
        ("first run, nothing to do", "", report(), [:]),
        ("first run, all applied", "", report([a, b, c], [.applied, .applied, .applied]),
         ["prod/flag/applied": 1, "prod/disable/applied": 2]),
        ("carried and added", "\(ours) 5\n", report([b, a], [.applied, .failed("500")], exit: .error),
         ["prod/disable/applied": 6, "prod/flag/failed": 1]),
        ("not attempted counts as skipped", "", report([a, b], [.applied, nil], exit: .error),
         ["prod/flag/applied": 1, "prod/disable/skipped": 1]),
        ("a refused run adds nothing", "\(ours) 5\n",
         report([b, c], exit: .refused, refused: Refusal(cause: .brakeCount, detail: "2 > 1")),
         ["prod/disable/applied": 5]),
        ("a dry run adds nothing", "\(ours) 5\n", report([b], [.applied], dryRun: true),
         ["prod/disable/applied": 5]),
        ("an unconfigured gateway's actions and carried counts stay",
         #"idp_sync_actions_total{action="flag",gateway="gone",outcome="failed"} 3"# + "\n",
         report([d], [.applied]),
         ["gone/flag/failed": 3, "dev/delete-key/applied": 1]),
        ("a hostile line is dropped; the first good one counts", "\(ours) -4\n\(ours) 2\n\(ours) 9\n",
         report([b], [.applied]), ["prod/disable/applied": 3]),
    ]

    @Test(arguments: runs)
    func aRunAddsItsOutcomesToWhatItCarries(
        _ name: String, _ previous: String, _ report: RunReport, _ expected: [String: Double]
    ) {
        let text = RunMetrics.render(
            report: report, gateways: ["prod"], startedAt: 1, finishedAt: 2, previous: previous)
        var want: [String: Double] = [:]
        for action in ["flag", "disable", "delete-key", "delete-credential", "unflag", "restore"] {
            for outcome in ["applied", "failed", "skipped"] { want["prod/\(action)/\(outcome)"] = 0 }
        }
        want.merge(expected) { _, new in new }
        var wanted: [String: Double] = [:]
        for (key, value) in want {
            let part = key.split(separator: "/")
            wanted[#"action="\#(part[1])",gateway="\#(part[0])",outcome="\#(part[2])""#] = value
        }
        var got: [String: Double] = [:]
        for line in Self.actionLines(text) {
            let labels = String(line.dropFirst("idp_sync_actions_total{".count).prefix { $0 != "}" })
            #expect(got[labels] == nil, "\(name): \(labels) twice")
            got[labels] = Double(line.split(separator: " ").last!)
        }
        #expect(got == wanted, "\(name)")
        #expect(Self.lines(text).contains("# TYPE idp_sync_actions_total counter"))
    }

    @Test func everyConfiguredGatewayGetsEveryActionAndOutcomeAtZeroInOrder() {
        let text = RunMetrics.render(
            report: Self.report(), gateways: ["b", "a"], startedAt: 1, finishedAt: 2, previous: nil)
        let got = Self.actionLines(text)
        #expect(got.count == 2 * ActionKind.allCases.count * 3)
        #expect(got.prefix(4) == [
            #"idp_sync_actions_total{action="flag",gateway="a",outcome="applied"} 0"#,
            #"idp_sync_actions_total{action="flag",gateway="a",outcome="failed"} 0"#,
            #"idp_sync_actions_total{action="flag",gateway="a",outcome="skipped"} 0"#,
            #"idp_sync_actions_total{action="disable",gateway="a",outcome="applied"} 0"#,
        ])
        #expect(got.last == #"idp_sync_actions_total{action="restore",gateway="b",outcome="skipped"} 0"#)
    }

    /// What a run writes, the next run reads back exactly, hostile gateway names included: three runs
    /// in a row add up.
    @Test func threeRunsAddUp() {
        let odd = "q\"u\\o\nte"
        let gateways = ["prod", odd]
        let e = Self.action(odd, .restore, "erin")
        let runs = [
            Self.report([Self.a, Self.b, e], [.applied, .failed("x"), .applied], exit: .error),
            Self.report([Self.b], [.applied]),
            Self.report([Self.b, e], [.applied, nil], exit: .error),
        ]
        var previous: String? = nil
        for run in runs {
            previous = RunMetrics.render(
                report: run, gateways: gateways, startedAt: 1, finishedAt: 2, previous: previous)
        }
        let carried = ActionCounters(carriedFrom: previous!).values
        #expect(carried.count == 2 * ActionKind.allCases.count * 3)
        #expect(carried[Self.series("prod", .flag, .applied)] == 1)
        #expect(carried[Self.series("prod", .disable, .failed)] == 1)
        #expect(carried[Self.series("prod", .disable, .applied)] == 2)
        #expect(carried[Self.series(odd, .restore, .applied)] == 1)
        #expect(carried[Self.series(odd, .restore, .skipped)] == 1)
        #expect(carried.values.reduce(0, +) == 6)
        #expect(previous!.contains(#"gateway="q\"u\\o\nte""#))
    }
}
