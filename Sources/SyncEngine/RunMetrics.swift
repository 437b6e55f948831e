import SyncCore

/// Prometheus textfile metrics of one run (docs/configuration.md). Pure: the caller writes the file atomically.
public enum RunMetrics {
    /// The metric's value in a previous textfile, to carry `last_success` forward across failed runs.
    /// A value from a file someone else may have written: only a complete line of exactly `name value`
    /// with a finite, non-negative number counts.
    public static func value(of name: String, in text: String) -> Double? {
        for line in completeLines(text) where line.hasPrefix(name + " ") {
            return number(line.dropFirst(name.count + 1))
        }
        return nil
    }

    /// The lines of `text` that end in a newline: a read cut at its limit leaves a partial last
    /// line, whose number may be cut short too.
    static func completeLines(_ text: String) -> [Substring] {
        guard let end = text.lastIndex(of: "\n") else { return [] }
        return text[..<end].split(separator: "\n")
    }

    /// A sample value as we write it: a finite, non-negative number, surrounding blanks ignored
    /// (so a sample with a timestamp after its value is no number).
    static func number(_ text: Substring) -> Double? {
        guard let value = Double(text.trimmingCharacters), value.isFinite, value >= 0 else { return nil }
        return value
    }

    /// The textfile after a real run, from the previous one (nil when there is none): `last_success`
    /// carried across failed runs, `idp_sync_actions_total` carried and added to, with every
    /// configured gateway × action × outcome present. Deterministic for the same inputs.
    public static func render(
        report: RunReport, gateways: [String], startedAt: Double, finishedAt: Double, previous: String?
    ) -> String {
        var actions = ActionCounters(carriedFrom: previous ?? "")
        actions.include(gateways: gateways)
        actions.add(report)
        return render(
            report: report, startedAt: startedAt, finishedAt: finishedAt,
            previousLastSuccess: previous.flatMap { value(of: "idp_sync_last_success_timestamp_seconds", in: $0) },
            actions: actions)
    }

    /// `watch`'s textfile: the gauges of its last full reconciliation, the actions counter advanced
    /// by every report not counted yet (full and targeted alike), and the watch's own metrics.
    public static func renderWatch(
        full: RunReport, uncounted: [RunReport], status: WatchStatus, gateways: [String], startedAt: Double,
        finishedAt: Double, previous: String?
    ) -> String {
        var actions = ActionCounters(carriedFrom: previous ?? "")
        actions.include(gateways: gateways)
        for report in uncounted { actions.add(report) }
        var events = previous.flatMap { value(of: "idp_sync_watch_events_total", in: $0) } ?? 0
        events += Double(status.newEvents)
        var text = render(
            report: full, startedAt: startedAt, finishedAt: finishedAt,
            previousLastSuccess: previous.flatMap { value(of: "idp_sync_last_success_timestamp_seconds", in: $0) },
            actions: actions)
        text += "# HELP idp_sync_watch_events_total Directory changes the watch acted on.\n"
        text += "# TYPE idp_sync_watch_events_total counter\n"
        text += "idp_sync_watch_events_total \(format(events))\n"
        if let lag = status.lastLag, lag.isFinite, lag >= 0 {
            text += "# HELP idp_sync_watch_lag_seconds From the last directory change to its gateway write.\n"
            text += "# TYPE idp_sync_watch_lag_seconds gauge\n"
            text += "idp_sync_watch_lag_seconds \(format((lag * 1000).rounded() / 1000))\n"
        }
        text += "# HELP idp_sync_watch_connected 1 while the change feed is connected.\n"
        text += "# TYPE idp_sync_watch_connected gauge\n"
        text += "idp_sync_watch_connected \(status.connected ? 1 : 0)\n"
        return text
    }

    static func render(
        report: RunReport, startedAt: Double, finishedAt: Double, previousLastSuccess: Double?, actions: ActionCounters
    ) -> String {
        let success = report.exitStatus == .success || report.exitStatus == .changes
        var out: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
            for (labels, value) in samples { out.append("\(name)\(labels) \(format(value))") }
        }
        metric("idp_sync_last_run_timestamp_seconds", "gauge", "When the last run finished (unix seconds).", [("", finishedAt)])
        if let lastSuccess = success ? finishedAt : previousLastSuccess {
            metric(
                "idp_sync_last_success_timestamp_seconds", "gauge",
                "When the last successful run finished (unix seconds); kept across failed runs.", [("", lastSuccess)])
        }
        metric("idp_sync_run_duration_seconds", "gauge", "Wall time of the last run.", [("", finishedAt - startedAt)])
        metric("idp_sync_exit_code", "gauge", "Exit code of the last run.", [("", Double(report.exitStatus.rawValue))])
        if let users = report.users {
            metric("idp_sync_directory_users", "gauge", "Users in the last complete directory snapshot.", [("", Double(users))])
        }
        metric(
            "idp_sync_managed_consumers", "gauge", "Managed consumers per gateway in the last run.",
            report.gateways.map { (labels(["gateway": $0.name]), Double($0.managed)) })
        metric(
            ActionCounters.name, "counter",
            "Gateway actions by outcome, carried across runs (refused and dry runs add none).",
            actions.samples.map { ($0.labels, $0.value) })
        var situations: [(String, Double)] = []
        for gateway in report.plan?.gateways ?? [] {
            for situation in Situation.allCases {
                situations.append(
                    (labels(["gateway": gateway.name, "situation": situation.rawValue]), Double(gateway.situations[situation] ?? 0)))
            }
        }
        metric("idp_sync_situations", "gauge", "Managed consumers per situation in the last run.", situations)
        let causes: [Refusal.Cause] = [.sourceError, .minUsers, .shrink, .brakeCount, .brakePercent, .planMismatch, .gatewayError, .brakeRate]
        metric(
            "idp_sync_refused", "gauge", "1 when the last run was refused, by cause.",
            causes.map { (labels(["cause": $0.rawValue]), report.refused?.cause == $0 ? 1 : 0) })
        return out.joined(separator: "\n") + "\n"
    }

    static func labels(_ pairs: [String: String]) -> String {
        "{" + pairs.keys.sorted().map { key in
            let value = pairs[key]!.replacingBackslashesQuotesNewlines
            return "\(key)=\"\(value)\""
        }.joined(separator: ",") + "}"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

extension StringProtocol {
    fileprivate var trimmingCharacters: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }

    fileprivate var replacingBackslashesQuotesNewlines: String {
        var out = ""
        for c in self {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
