import SyncCore

extension RunReport {
    /// The plan as a person reviews it: one line per action or finding, grouped by gateway, then totals.
    public func text(color: Bool = false) -> String {
        var out: [String] = []
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        // Every value that came from a directory, a gateway or a file goes through the one escaper.
        func e(_ s: String) -> String { TextEscape.visible(s) }
        let header = dryRun ? "Plan (dry run: nothing will be written)" : "Run \(run ?? "")"
        out.append(header)
        if let users {
            out.append("  source: \(sourceType), \(users) users\(sourceComplete ? ", complete" : "")")
        }
        if let plan, plan.gateways.isEmpty, !plan.actions.isEmpty || !skipped.isEmpty {
            for (i, action) in plan.actions.enumerated() {
                var line = "  + \(action.kind.rawValue.padding(8)) \(e(action.gateway))/\(e(Self.name(action.consumer)))  \(e(action.reason))"
                if !dryRun {
                    switch outcomes[i] {
                    case .applied: line += "  → applied"
                    case .failed(let error): line += "  → " + paint("FAILED: \(e(error))", "31")
                    case nil: line += "  → not attempted"
                    }
                }
                out.append(line)
            }
        }
        if let plan {
            for gateway in plan.gateways {
                out.append("")
                out.append("gateway \(e(gateway.name)): \(gateway.managed) managed consumers")
                let actions = plan.actions.enumerated().filter { $0.element.gateway == gateway.name }
                let findings = plan.findings.filter { $0.gateway == gateway.name }
                if actions.isEmpty && findings.isEmpty { out.append("  no changes") }
                for (i, action) in actions {
                    let symbol: String
                    switch action.kind {
                    case .flag: symbol = paint("~ flag      ", "33")
                    case .disable: symbol = paint("- disable   ", "31")
                    case .deleteKey: symbol = paint("- delete-key", "31")
                    case .unflag: symbol = paint("+ unflag    ", "32")
                    case .restore: symbol = paint("+ restore   ", "32")
                    }
                    var line = "  \(symbol) \(e(Self.name(action.consumer)))  [\(action.situation.rawValue)]"
                    if action.kind == .deleteKey, let key = action.keys.first { line += " key \(key.fingerprint)" }
                    line += "  \(e(action.reason))"
                    if !dryRun {
                        switch outcomes[i] {
                        case .applied: line += "  → applied"
                        case .failed(let error): line += "  → " + paint("FAILED: \(e(error))", "31")
                        case nil: if refused == nil { line += "  → not attempted" }
                        }
                    }
                    out.append(line)
                }
                for finding in findings {
                    out.append(
                        "  ! \(finding.situation.rawValue.padding(10))\(e(Self.name(finding.consumer)))  \(e(finding.reason))")
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
            out.append("Consumers: " + (situationCounts.isEmpty ? "none" : situationCounts.joined(separator: ", ")))
            if let planHash { out.append("Plan hash: \(planHash)") }
        }
        if let refused {
            out.append(paint("REFUSED (\(refused.cause.rawValue)): \(e(refused.detail))", "31"))
            if [.brakeCount, .brakePercent].contains(refused.cause), let planHash {
                out.append("If this plan is right, apply it with: idp-sync sync --accept-plan \(planHash)")
            }
        }
        for note in skipped { out.append("skipped: \(e(note))") }
        for error in errors { out.append(paint("error: \(e(error))", "31")) }
        return out.joined(separator: "\n") + "\n"
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
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
