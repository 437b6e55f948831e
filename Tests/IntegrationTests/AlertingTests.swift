import Foundation
import SyncCore
import Testing

/// The metrics textfile as an operator's Prometheus sees it: the actions counter carried across real
/// runs, and the shipped alerting rules (`deploy/prometheus/idp-sync-rules.yml`) fired by
/// `promtool test rules` from textfiles that real runs wrote against slapd and the Kong test server.
@Suite("Alerting: the carried counter and the Prometheus rules over real textfiles")
struct AlertingTests {
    static let rules = Repo.root + "/deploy/prometheus/idp-sync-rules.yml"
    static let promtool = "/usr/bin/promtool"
    static let alerts = [
        "IdPSyncNoRecentSuccess", "IdPSyncNeverSucceeded", "IdPSyncRefused", "IdPSyncWriteFailures", "IdPSyncConflict",
    ]
    /// The labels node_exporter's scrape adds to every series of the textfile.
    static let scrape = ["instance": "idp-sync-host:9100", "job": "node"]

    // MARK: the counter across runs

    /// Three real runs: two whose write to frank fails, then one after the fault is gone. After each,
    /// every configured gateway × action × outcome is in the file, and each value is the sum of the
    /// outcomes the JSON reports of the runs so far name.
    @Test func theActionsCounterAddsUpAcrossThreeRuns() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let path = try s.addMetricsTextfile()
        let frank = s.consumers["frank"]!
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "PATCH", "path_regex": "^/consumers/\#(frank)$", "status": 500}]}"#)
        var sums: [String: Double] = [:]
        for action in ["flag", "disable", "delete-key", "delete-credential", "unflag", "restore"] {
            for outcome in ["applied", "failed", "skipped"] {
                sums[Self.actionLabels(gateway: "demo", action: action, outcome: outcome)] = 0
            }
        }
        for run in 1...3 {
            if run == 3 { try await s.kong.control("DELETE", "/__test/faults") }
            let result = try s.sync(["--output", "json"])
            #expect(result.status == (run == 3 ? 0 : 1), "run \(run): \(result.stderr)")
            let report = try JSONParser.parse(result.stdout)
            for action in report["actions"]?.arrayValue ?? [] {
                let labels = Self.actionLabels(
                    gateway: action["gateway"]!.stringValue!, action: action["action"]!.stringValue!,
                    outcome: action["outcome"]!.stringValue!)
                sums[labels, default: 0] += 1
            }
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let lint = try runProcess(Self.promtool, ["check", "metrics"], stdin: text)
            #expect(lint.status == 0, "run \(run): \(lint.stdout)\(lint.stderr)")
            var counted: [String: Double] = [:]
            for sample in Textfile(text).samples where sample.series.hasPrefix("idp_sync_actions_total{") {
                counted[String(sample.series.dropFirst("idp_sync_actions_total".count))] = Double(sample.value)
            }
            #expect(counted == sums, "run \(run)")
        }
        // Written out: frank's flag failed twice, then went through; the first run flagged and
        // disabled carol and dave.
        #expect(sums[Self.actionLabels(gateway: "demo", action: "flag", outcome: "failed")] == 2)
        #expect(sums[Self.actionLabels(gateway: "demo", action: "flag", outcome: "applied")] == 3)
        #expect(sums[Self.actionLabels(gateway: "demo", action: "disable", outcome: "applied")] == 2)
        #expect(sums.values.reduce(0, +) == 7)
        #expect(sums.count == 6 * 3)  // every action kind × outcome
    }

    static func actionLabels(gateway: String, action: String, outcome: String) -> String {
        #"{action="\#(action)",gateway="\#(gateway)",outcome="\#(outcome)"}"#
    }

    // MARK: the rules, fired from real textfiles

    @Test func theRulesFileIsValid() throws {
        let result = try runProcess(Self.promtool, ["check", "rules", Self.rules])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("SUCCESS: \(Self.alerts.count) rules found"), "\(result.stdout)")
    }

    /// Three successful runs, 15 minutes apart: no alert fires at any time. And the check is not
    /// vacuous: expecting an alert there makes promtool fail.
    @Test func aHealthySequenceFiresNoAlert() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let path = try s.addMetricsTextfile()
        var files: [Textfile] = []
        for _ in 0..<3 {
            #expect(try s.sync().status == 0)
            files.append(try Textfile(path: path))
        }
        let timeline = Timeline(files.enumerated().map { ($0 * 15, $1) }, until: 60)
        var checks: [JSONValue] = []
        for minute in [5, 14, 16, 29, 31, 44, 46, 59] {
            checks += Self.alerts.map { Self.expect($0, at: minute, []) }
        }
        try runPromtool(timeline, checks)

        let wrong = Self.expect("IdPSyncRefused", at: 20, [["cause": "brake-count"]])
        try runPromtool(timeline, [wrong], shouldPass: false)
    }

    /// A successful run, then runs refused by the count brake every 15 minutes (a person has not
    /// looked yet): IdPSyncRefused fires by cause at once, and IdPSyncNoRecentSuccess once the last
    /// success (carried across the refused runs) is older than two intervals.
    @Test func aRefusedRunAndAStaleSuccessFire() async throws {
        let s = try Scenario(policy: ["max_disable_percent": "100"])
        try await s.seedDemo()
        let path = try s.addMetricsTextfile()
        #expect(try s.sync().status == 0)
        var files = [try Textfile(path: path)]
        // Three more consumers of users the directory does not have, and no grace period: frank and
        // these would be disabled at once, 4 > max_disable 1.
        try await s.kong.control(
            "POST", "/__test/generate", #"{"count": 3, "tags": ["idp-managed"], "username_prefix": "gone"}"#)
        try s.editConfig(["  grace_period: 24h": "  grace_period: 0s", "  max_disable: 10": "  max_disable: 1"])
        for _ in 0..<2 {
            let refused = try s.sync(["--output", "json"])
            #expect(refused.status == 3, "\(refused.stderr)")
            #expect(try JSONParser.parse(refused.stdout)["refused"]?["cause"] == "brake-count")
            files.append(try Textfile(path: path))
        }
        #expect(files[2].value("idp_sync_refused{cause=\"brake-count\"}") == "1")
        let timeline = Timeline(files.enumerated().map { ($0 * 15, $1) }, until: 45)
        try runPromtool(
            timeline,
            [
                Self.expect("IdPSyncRefused", at: 10, []),
                Self.expect("IdPSyncRefused", at: 20, [["cause": "brake-count"]], severity: "critical"),
                Self.expect("IdPSyncRefused", at: 40, [["cause": "brake-count"]], severity: "critical"),
                Self.expect("IdPSyncNoRecentSuccess", at: 29, []),
                // The age passes 30 minutes after minute 30; "for: 5m" holds it until minute 36.
                Self.expect("IdPSyncNoRecentSuccess", at: 34, []),
                Self.expect("IdPSyncNoRecentSuccess", at: 40, [[:]]),
                Self.expect("IdPSyncWriteFailures", at: 40, []),
                Self.expect("IdPSyncNeverSucceeded", at: 40, []),
            ])
    }

    /// A successful run, then one whose write to a new consumer fails: IdPSyncWriteFailures fires,
    /// because the failed series was already there at 0 (written by the first run).
    @Test func failedWritesFire() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let path = try s.addMetricsTextfile()
        #expect(try s.sync().status == 0)
        let first = try Textfile(path: path)
        #expect(first.value(#"idp_sync_actions_total{action="flag",gateway="demo",outcome="failed"}"#) == "0")
        let seeded = try await s.kong.seed([
            "consumers": [
                ["username": "gus", "custom_id": "22222222-3333-4444-5555-666666666666", "tags": ["idp-managed"]]
            ]
        ])
        let gus = try #require(seeded["consumers"]?.arrayValue?.first?["id"]?.stringValue)
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "PATCH", "path_regex": "^/consumers/\#(gus)$", "status": 500}]}"#)
        let failed = try s.sync()
        #expect(failed.status == 1, "\(failed.stderr)")
        let second = try Textfile(path: path)
        #expect(second.value(#"idp_sync_actions_total{action="flag",gateway="demo",outcome="failed"}"#) == "1")
        let timeline = Timeline([(0, first), (15, second)], until: 30)
        try runPromtool(
            timeline,
            [
                Self.expect("IdPSyncWriteFailures", at: 10, []),
                Self.expect("IdPSyncWriteFailures", at: 20, [["gateway": "demo", "action": "flag"]]),
                Self.expect("IdPSyncNoRecentSuccess", at: 20, []),
                Self.expect("IdPSyncRefused", at: 20, []),
            ])
    }

    /// A person's request-termination that blocks nothing keeps gina in conflict, from the first run
    /// on: IdPSyncConflict fires at once, and IdPSyncNeverSucceeded after 30 minutes of such runs.
    @Test func aConflictFires() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        try await s.kong.seed([
            "consumers": [
                ["username": "gina", "custom_id": "9a314da2-415e-5001-a7d0-fe5138d85bff",
                 "tags": ["idp-managed", "idp-sync:disabled"],
                 "plugins": [["name": "request-termination", "config": ["status_code": 503], "enabled": false]]]
            ]
        ])
        let path = try s.addMetricsTextfile()
        var files: [Textfile] = []
        for _ in 0..<3 {
            let run = try s.sync()
            #expect(run.status == 1, "\(run.stderr)")
            files.append(try Textfile(path: path))
        }
        #expect(files[0].value(#"idp_sync_situations{gateway="demo",situation="conflict"}"#) == "1")
        #expect(files[2].value("idp_sync_last_success_timestamp_seconds") == nil)
        let timeline = Timeline(files.enumerated().map { ($0 * 15, $1) }, until: 45)
        try runPromtool(
            timeline,
            [
                Self.expect("IdPSyncConflict", at: 1, [["gateway": "demo", "situation": "conflict"]]),
                Self.expect("IdPSyncConflict", at: 40, [["gateway": "demo", "situation": "conflict"]]),
                Self.expect("IdPSyncNeverSucceeded", at: 20, []),
                Self.expect("IdPSyncNeverSucceeded", at: 40, [[:]]),
                Self.expect("IdPSyncNoRecentSuccess", at: 40, []),
            ])
    }

    // MARK: promtool

    /// One `alert_rule_test` entry: at `minute`, exactly these alerts (each the labels of its series
    /// beyond the scrape's; the rule's severity and annotations are added here).
    static func expect(
        _ alert: String, at minute: Int, _ alerts: [[String: String]], severity: String = "warning"
    ) -> JSONValue {
        [
            "eval_time": .string("\(minute)m"), "alertname": .string(alert),
            "exp_alerts": .array(
                alerts.map { own -> JSONValue in
                    let labels = own.merging(scrape) { a, _ in a }
                    var expected = labels
                    expected["severity"] = severity
                    return [
                        "exp_labels": .object(expected.mapValues(JSONValue.string)),
                        // Filled in by runPromtool from the rules file.
                        "exp_annotations": .object(labels.mapValues(JSONValue.string)),
                    ]
                }),
        ]
    }

    /// Writes a promtool test file (JSON, which is YAML) for the timeline and the checks, with each
    /// expected alert's annotations expanded from the rules file, and runs `promtool test rules`.
    func runPromtool(_ timeline: Timeline, _ checks: [JSONValue], shouldPass: Bool = true) throws {
        let dir = TempDir()
        try FileManager.default.copyItem(atPath: Self.rules, toPath: dir.path + "/idp-sync-rules.yml")
        let annotations = try Self.annotations()
        let checks = try checks.map { check -> JSONValue in
            guard case .object(var fields) = check, let alert = check["alertname"]?.stringValue,
                let templates = annotations[alert]
            else { throw FixtureError(description: "no alert \(check["alertname"] ?? .null) in \(Self.rules)") }
            fields["exp_alerts"] = .array(
                try (check["exp_alerts"]?.arrayValue ?? []).map { expected in
                    guard case .object(var entry) = expected,
                        let labels = expected["exp_annotations"]?.objectValue?.compactMapValues(\.stringValue)
                    else { return expected }
                    entry["exp_annotations"] = .object(try templates.mapValues { .string(try Self.expand($0, labels)) })
                    return .object(entry)
                })
            return .object(fields)
        }
        let test: JSONValue = [
            "rule_files": ["idp-sync-rules.yml"],
            "evaluation_interval": "1m",
            "tests": [
                [
                    "interval": "1m",
                    "input_series": .array(timeline.inputSeries(adding: Self.scrape)),
                    "alert_rule_test": .array(checks),
                ]
            ],
        ]
        let file = dir.write("idp-sync-rules.test.json", test.pretty)
        let result = try runProcess(Self.promtool, ["test", "rules", file])
        if shouldPass {
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)\n\(test.pretty)")
        } else {
            #expect(result.status == 1, "promtool passed a wrong expectation: \(result.stdout)")
        }
    }

    /// Each alert's annotation templates, read from the rules file (YAML, through Python's parser).
    static func annotations() throws -> [String: [String: String]] {
        let script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
        let result = try runProcess("python3", ["-c", script, rules])
        guard result.status == 0 else { throw FixtureError(description: "cannot read \(rules): \(result.stderr)") }
        var out: [String: [String: String]] = [:]
        for group in try JSONParser.parse(result.stdout)["groups"]?.arrayValue ?? [] {
            for rule in group["rules"]?.arrayValue ?? [] {
                guard let alert = rule["alert"]?.stringValue else { continue }
                out[alert] = rule["annotations"]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
            }
        }
        return out
    }

    /// Prometheus' template expansion for the one form the rules use, `{{ $labels.NAME }}`; anything
    /// else between braces is refused, so a new template form fails here rather than passing unseen.
    static func expand(_ template: String, _ labels: [String: String]) throws -> String {
        var out = "", rest = Substring(template)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw FixtureError(description: "unclosed template in \(template)")
            }
            let expression = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard expression.hasPrefix("$labels."), let value = labels[String(expression.dropFirst(8))] else {
                throw FixtureError(description: "the test expands only {{ $labels.NAME }}: \(template)")
            }
            out += value
            rest = rest[close.upperBound...]
        }
        return out + rest
    }
}

extension Scenario {
    /// Adds `metrics.textfile_path` to the config; returns the path.
    func addMetricsTextfile() throws -> String {
        let directory = dir.path + "/textfiles"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/idp-sync.prom"
        let config = try String(contentsOfFile: self.config, encoding: .utf8)
        try (config + "\nmetrics:\n  textfile_path: \(path)\n")
            .write(toFile: self.config, atomically: true, encoding: .utf8)
        return path
    }

    /// Replaces lines of the config, each of which must be there.
    func editConfig(_ replacements: [String: String]) throws {
        var text = try String(contentsOfFile: config, encoding: .utf8)
        for (old, new) in replacements {
            guard text.contains(old + "\n") else { throw FixtureError(description: "no line '\(old)' in the config") }
            text = text.replacingOccurrences(of: old + "\n", with: new + "\n")
        }
        try text.write(toFile: config, atomically: true, encoding: .utf8)
    }
}

extension AlertingTests {
    /// The samples of one textfile, as written: `name{labels}` and the value's text.
    struct Textfile {
        var samples: [(series: String, value: String)]

        init(_ text: String) {
            samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
                let space = line.lastIndex(of: " ")!
                return (String(line[..<space]), String(line[line.index(after: space)...]))
            }
        }

        init(path: String) throws { self.init(try String(contentsOfFile: path, encoding: .utf8)) }

        func value(_ series: String) -> String? { samples.first { $0.series == series }?.value }

        /// When the run that wrote it finished (unix seconds).
        var finished: Double { Double(value("idp_sync_last_run_timestamp_seconds")!)! }
    }

    /// Textfiles of real runs, placed on promtool's clock: the file of a run at minute m is what
    /// node_exporter serves from minute m on, scraped every minute until the next run's file replaces it.
    struct Timeline {
        var runs: [(minute: Int, file: Textfile)]
        var until: Int

        init(_ runs: [(Int, Textfile)], until: Int) {
            self.runs = runs.map { (minute: $0.0, file: $0.1) }
            self.until = until
        }

        /// promtool `input_series`, one value per minute from 0 to `until`. promtool's clock starts at
        /// time 0 (1970-01-01), and `time()` in a rule is the evaluation time, so the real unix times in
        /// the `*_timestamp_seconds` samples are shifted: a run that happened at minute m of the
        /// timeline finished at promtool time m × 60 s (the first at time 0). A carried
        /// `last_success` holds the finish time of an earlier run, and moves with that run. Every other
        /// value is the file's own. A series a later file no longer has goes stale, as in a scrape.
        func inputSeries(adding labels: [String: String]) -> [JSONValue] {
            var shifted: [Double: Int] = [:]
            for run in runs { shifted[run.file.finished] = run.minute * 60 }
            var names: [String] = []
            for run in runs {
                for sample in run.file.samples where !names.contains(sample.series) { names.append(sample.series) }
            }
            let extra = labels.keys.sorted().map { #"\#($0)="\#(labels[$0]!)""# }.joined(separator: ",")
            return names.map { series in
                var values: [String] = []
                var seen = false
                for minute in 0...until {
                    guard let run = runs.last(where: { $0.minute <= minute }), var value = run.file.value(series) else {
                        values.append(seen ? "stale" : "_")
                        continue
                    }
                    seen = true
                    if series.hasSuffix("_timestamp_seconds") {
                        let moved = shifted[Double(value)!]
                        #expect(moved != nil, "\(series) \(value) is no run's finish time")
                        value = String(moved ?? -1)
                    }
                    values.append(value)
                }
                let labelled =
                    series.hasSuffix("}") ? String(series.dropLast()) + ",\(extra)}" : series + "{\(extra)}"
                return ["series": .string(labelled), "values": .string(values.joined(separator: " "))]
            }
        }
    }
}
