import SyncCore

/// `idp_sync_actions_total`, a Prometheus counter carried across runs through the textfile: each run
/// reads the previous file, adds its own outcomes and writes every label set back, so `rate()` and
/// `increase()` work. Pure: values in, values out.
public struct ActionCounters: Hashable, Sendable {
    /// One label set: `{gateway, action, outcome}`.
    public struct Series: Hashable, Sendable, Comparable {
        public var gateway: String
        public var action: ActionKind
        public var outcome: Outcome

        public init(gateway: String, action: ActionKind, outcome: Outcome) {
            self.gateway = gateway
            self.action = action
            self.outcome = outcome
        }

        /// By gateway, then action in plan order, then outcome.
        public static func < (a: Series, b: Series) -> Bool {
            (a.gateway, a.action, a.outcome) < (b.gateway, b.action, b.outcome)
        }
    }

    /// What became of one action of a real run that was not refused.
    public enum Outcome: String, Hashable, Sendable, CaseIterable, Comparable {
        case applied
        case failed
        /// Not attempted, e.g. after SIGTERM.
        case skipped

        public static func < (a: Outcome, b: Outcome) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public static let name = "idp_sync_actions_total"

    public private(set) var values: [Series: Double]

    public init(_ values: [Series: Double] = [:]) {
        self.values = values
    }

    /// The counts a previous textfile holds. It is text someone else may have written, so only:
    /// complete lines (a read cut at its limit leaves a partial last line, which is ignored);
    /// samples of exactly `name{labels} value`; label sets of exactly `gateway`, `action` and
    /// `outcome`, each once, correctly quoted and escaped, with a non-empty gateway, a known action
    /// and a known outcome; finite, non-negative values. The first sample of a label set counts.
    public init(carriedFrom text: String) {
        var values: [Series: Double] = [:]
        for line in RunMetrics.completeLines(text) {
            guard let (series, value) = Self.sample(line), values[series] == nil else { continue }
            values[series] = value
        }
        self.values = values
    }

    /// Every gateway × action kind × outcome at least at 0, so the series exist before the first
    /// failure (an `increase()` needs a sample before the one that rose).
    public mutating func include(gateways: [String]) {
        for gateway in gateways {
            for action in ActionKind.allCases {
                for outcome in Outcome.allCases {
                    values[Series(gateway: gateway, action: action, outcome: outcome), default: 0] += 0
                }
            }
        }
    }

    /// Adds the outcomes of a real run. A dry run adds nothing, nor does a refused run: its plan was
    /// not carried out (it counts in `idp_sync_refused`), as in the JSON report, where its actions
    /// have no `outcome`.
    public mutating func add(_ report: RunReport) {
        guard !report.dryRun, report.refused == nil, let plan = report.plan else { return }
        for (i, action) in plan.actions.enumerated() {
            let outcome: Outcome
            switch report.outcomes[i] {
            case .applied: outcome = .applied
            case .failed: outcome = .failed
            case nil: outcome = .skipped
            }
            values[Series(gateway: action.gateway, action: action.kind, outcome: outcome), default: 0] += 1
        }
    }

    /// The samples in order: rendered label set and value.
    public var samples: [(labels: String, value: Double)] {
        values.keys.sorted().map { series in
            (
                RunMetrics.labels(
                    ["gateway": series.gateway, "action": series.action.rawValue, "outcome": series.outcome.rawValue]),
                values[series]!
            )
        }
    }

    /// One well-formed sample line of this metric, or nil.
    static func sample(_ line: Substring) -> (Series, Double)? {
        guard line.hasPrefix(name + "{") else { return nil }
        var rest = line.dropFirst(name.count + 1).unicodeScalars[...]
        var labels: [String: String] = [:]
        // name="value" pairs separated by commas, a trailing comma allowed, then "}".
        while rest.first != "}" {
            let key = String(String.UnicodeScalarView(rest.prefix { $0 != "=" }))
            guard ["gateway", "action", "outcome"].contains(key), labels[key] == nil else { return nil }
            rest = rest.dropFirst(key.unicodeScalars.count)
            guard rest.first == "=", rest.dropFirst().first == "\"" else { return nil }
            rest = rest.dropFirst(2)
            var value = String.UnicodeScalarView()
            while true {
                guard let c = rest.popFirst() else { return nil }
                if c == "\"" { break }
                if c == "\\" {
                    switch rest.popFirst() {
                    case "\\": value.append("\\")
                    case "\"": value.append("\"")
                    case "n": value.append("\n")
                    default: return nil
                    }
                } else {
                    value.append(c)
                }
            }
            labels[key] = String(value)
            if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { return nil }
        }
        rest = rest.dropFirst()
        guard let gateway = labels["gateway"], !gateway.isEmpty,
            let action = labels["action"].flatMap(ActionKind.init(rawValue:)),
            let outcome = labels["outcome"].flatMap(Outcome.init(rawValue:)),
            let first = rest.first, first == " " || first == "\t",
            let value = RunMetrics.number(Substring(String(String.UnicodeScalarView(rest))))
        else { return nil }
        return (Series(gateway: gateway, action: action, outcome: outcome), value)
    }
}
