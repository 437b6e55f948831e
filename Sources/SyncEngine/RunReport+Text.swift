import SyncCore

/// How the text report is laid out for the person reading it.
public struct ReportStyle: Sendable {
    /// ANSI colours (the CLI decides: `--color`, `NO_COLOR`, `TERM`).
    public var color: Bool
    /// Columns every line fits in (the terminal's, at most 120); long names and reasons are cut
    /// with `…` (the JSON report keeps them whole).
    public var width: Int
    /// The words that name the configuration (`--config PATH`), repeated in every suggested command.
    public var configArguments: [String]
    /// The reader's clock, for "in 3h" next to a grace period's end.
    public var now: Int64?

    public init(color: Bool = false, width: Int = 120, configArguments: [String] = [], now: Int64? = nil) {
        self.color = color
        self.width = width
        self.configArguments = configArguments
        self.now = now
    }
}

extension RunReport {
    /// The plan as a person reviews it, the same for `sync` and `restore`: one aligned table per
    /// gateway (changes, findings, consumers waiting out their grace period), then totals.
    public func text(color: Bool = false) -> String { text(style: ReportStyle(color: color)) }

    public func text(style: ReportStyle) -> String {
        var out: [String] = []
        func paint(_ s: String, _ code: String) -> String { style.color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        // Every value that came from a directory, a gateway or a file goes through the one escaper.
        func e(_ s: String) -> String { TextEscape.visible(s) }
        let header = dryRun ? "Plan (dry run: nothing will be written)" : "Run \(run ?? "")"
        out.append(header)
        if let users {
            out.append("  source: \(sourceType), \(users) users\(sourceComplete ? ", complete" : "")")
        }
        if let plan {
            // Gateways in the order read; a restore reads none, so its gateways come from its actions.
            var names = plan.gateways.map(\.name)
            for action in plan.actions where !names.contains(action.gateway) { names.append(action.gateway) }
            let managed = Dictionary(plan.gateways.map { ($0.name, $0.managed) }, uniquingKeysWith: { a, _ in a })
            let showOutcome = !dryRun && refused == nil
            for name in names {
                out.append("")
                out.append("gateway \(e(name))" + (managed[name].map { ": \($0) managed consumers" } ?? ""))
                var rows: [Row] = []
                for (i, action) in plan.actions.enumerated() where action.gateway == name {
                    var reason = action.reason
                    if action.kind == .deleteKey, let key = action.keys.first { reason = "key \(key.fingerprint); " + reason }
                    if action.kind == .deleteCredential, let credential = action.credentials.first {
                        reason = "\(credential.type) \(credential.identity); " + reason
                    }
                    var outcome = ""
                    if showOutcome {
                        switch outcomes[i] {
                        case .applied: outcome = "applied"
                        case .failed: outcome = "FAILED"
                        case nil: outcome = "skipped"
                        }
                    }
                    rows.append(
                        Row(
                            symbol: Self.symbol(action.kind), kind: action.kind == .deleteCredential ? "delete-cred" : action.kind.rawValue, consumer: e(Self.shortName(action.consumer)),
                            situation: action.situation.rawValue, outcome: outcome, detail: e(reason),
                            tint: Self.tint(action.kind)))
                }
                for finding in plan.findings where finding.gateway == name {
                    rows.append(
                        Row(
                            symbol: "!", kind: "report", consumer: e(Self.shortName(finding.consumer)),
                            situation: finding.situation.rawValue, outcome: "", detail: e(finding.reason),
                            tint: finding.situation == .conflict ? "31" : "35"))
                }
                for wait in plan.waiting where wait.gateway == name {
                    var detail = "disable at \(TimeFormat.rfc3339(wait.disableAt))"
                    if let now = plannedAt ?? style.now {
                        detail += wait.disableAt > now ? " (in \(TimeFormat.duration(wait.disableAt - now)))" : " (due)"
                    }
                    rows.append(
                        Row(
                            symbol: "…", kind: "waiting", consumer: e(Self.shortName(wait.consumer)),
                            situation: wait.situation.rawValue, outcome: "", detail: detail, tint: "2"))
                }
                if rows.isEmpty {
                    out.append("  no changes")
                } else {
                    out += Self.table(rows, outcome: showOutcome, style: style, paint: paint)
                }
            }
            out.append("")
            let actionCounts = ActionKind.allCases.compactMap { kind -> String? in
                let n = plan.actions.filter { $0.kind == kind }.count
                return n > 0 ? "\(n) \(kind.rawValue)" : nil
            }
            var situations: [Situation: Int] = [:]
            for gateway in plan.gateways { situations.merge(gateway.situations, uniquingKeysWith: +) }
            let situationCounts = Situation.allCases.compactMap { s -> String? in
                situations[s].map { "\($0) \(s.rawValue)" }
            }
            out.append("Actions: " + (actionCounts.isEmpty ? "none" : actionCounts.joined(separator: ", ")))
            if !plan.gateways.isEmpty {
                out.append("Consumers: " + (situationCounts.isEmpty ? "none" : situationCounts.joined(separator: ", ")))
            }
            if !plan.waiting.isEmpty {
                out.append("Waiting: \(plan.waiting.count) flagged, next disable \(TimeFormat.rfc3339(plan.waiting[0].disableAt))")
            }
            if let planHash { out.append("Plan hash: \(planHash)") }
        }
        if let refused {
            out.append(paint("REFUSED (\(refused.cause.rawValue)): \(e(refused.detail))", "31"))
            if [.brakeCount, .brakePercent].contains(refused.cause), let planHash {
                out.append("If this plan is right, apply it with:")
                out.append("  " + ShellWords.command(["sync"] + style.configArguments + ["--accept-plan", planHash]))
            }
            if refused.cause == .shrink, let users {
                out.append("If the directory really has \(users) users now, accept that once with:")
                out.append("  " + ShellWords.command(["sync"] + style.configArguments + ["--accept-users", String(users)]))
            }
        }
        for note in skipped { out.append("skipped: \(e(note))") }
        for error in errors { out.append(paint("error: \(e(error))", "31")) }
        return out.joined(separator: "\n") + "\n"
    }

    /// One line of a gateway's table, before layout.
    struct Row {
        var symbol: String
        var kind: String
        var consumer: String
        var situation: String
        var outcome: String
        var detail: String
        var tint: String
    }

    /// Aligned columns: ACTION, CONSUMER, SITUATION, OUTCOME (real runs), DETAIL. DETAIL gets at
    /// least 40 columns; CONSUMER what is left, at most 32 and at least 8.
    static func table(
        _ rows: [Row], outcome: Bool, style: ReportStyle, paint: (String, String) -> String
    ) -> [String] {
        let situationWidth = max("SITUATION".count, rows.map(\.situation.count).max() ?? 0)
        let outcomeWidth = outcome ? 7 : 0
        let others = 2 + 12 + 1 + 2 + situationWidth + 2 + (outcome ? outcomeWidth + 2 : 0)
        let consumerWidth = min(
            max(8, style.width - others - 40), 32, max("CONSUMER".count, rows.map(\.consumer.count).max() ?? 0))
        let detailWidth = max(40, style.width - others - consumerWidth)
        func line(_ action: String, _ consumer: String, _ situation: String, _ result: String, _ detail: String) -> String {
            var text = "  " + action + " " + consumer.fitted(consumerWidth) + "  " + situation.fitted(situationWidth) + "  "
            if outcome { text += result + "  " }
            return (text + detail.cut(detailWidth)).trimmingTrailingSpaces
        }
        var lines = [
            line(
                "ACTION".fitted(12), "CONSUMER", "SITUATION", outcome ? "OUTCOME".fitted(outcomeWidth) : "", "DETAIL")
        ]
        for row in rows {
            let action = paint("\(row.symbol) \(row.kind)".fitted(12), row.tint)
            let result = row.outcome == "FAILED" ? paint(row.outcome.fitted(outcomeWidth), "31") : row.outcome.fitted(outcomeWidth)
            lines.append(line(action, row.consumer, row.situation, result, row.detail))
        }
        return lines
    }

    static func symbol(_ kind: ActionKind) -> String {
        switch kind {
        case .flag: "~"
        case .disable, .deleteKey, .deleteCredential: "-"
        case .unflag, .restore: "+"
        }
    }

    static func tint(_ kind: ActionKind) -> String {
        switch kind {
        case .flag: "33"
        case .disable, .deleteKey, .deleteCredential: "31"
        case .unflag, .restore: "32"
        }
    }

    /// The name a table shows: the username, else `custom_id=…`, else the id (JSON has all three).
    static func shortName(_ consumer: Consumer) -> String {
        if let username = consumer.username, !username.isEmpty { return username }
        return name(consumer)
    }

    static func name(_ consumer: Consumer) -> String {
        var parts: [String] = []
        if let u = consumer.username { parts.append(u) }
        if let c = consumer.customID { parts.append("custom_id=\(c)") }
        if parts.isEmpty { parts.append(consumer.id.rawValue) }
        return parts.joined(separator: " ")
    }
}

extension String {
    /// Exactly `width` characters: cut with `…`, or padded with spaces.
    fileprivate func fitted(_ width: Int) -> String {
        let cut = self.cut(width)
        return cut.count >= width ? cut : cut + String(repeating: " ", count: width - cut.count)
    }

    /// At most `width` characters, the last one `…` when cut.
    fileprivate func cut(_ width: Int) -> String {
        count <= width ? self : String(prefix(max(0, width - 1))) + "…"
    }

    fileprivate var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
