/// The pure safety rules of docs/operations.md (size of the directory) and §4.2 (brakes).
public enum SafetyChecks {
    /// Refuses a snapshot with fewer than `min_users`, or that shrank by more than `max_shrink_percent`
    /// against the last good run, unless the operator accepted exactly this many users.
    public static func checkSource(users: Int, lastGoodUsers: Int?, policy: Policy, acceptUsers: Int?) -> Refusal? {
        if users == 0 {
            return Refusal(cause: .minUsers, detail: "the directory returned 0 users; refusing to treat everyone as gone")
        }
        if users < policy.minUsers {
            return Refusal(cause: .minUsers, detail: "\(users) users, fewer than policy.min_users \(policy.minUsers)")
        }
        if let last = lastGoodUsers, last > 0, users < last {
            let dropPercent = Double(last - users) * 100 / Double(last)
            if dropPercent > policy.maxShrinkPercent && acceptUsers != users {
                let shown = Int(dropPercent.rounded())
                return Refusal(
                    cause: .shrink,
                    detail: "\(last) → \(users) users (−\(shown)%), more than policy.max_shrink_percent "
                        + "\(formatPercent(policy.maxShrinkPercent))%; if real, run again with --accept-users \(users)")
            }
        }
        return nil
    }

    /// Refuses a plan that would disable too many consumers of any one gateway.
    public static func checkBrakes(plan: SyncPlan, policy: Policy) -> Refusal? {
        for gateway in plan.gateways {
            let n = Set(plan.actions.filter { $0.gateway == gateway.name && $0.kind.isDisabling }.map(\.consumer.id)).count
            if n > policy.maxDisable {
                return Refusal(
                    cause: .brakeCount,
                    detail: "gateway \(gateway.name): \(n) consumers would be disabled, more than policy.max_disable \(policy.maxDisable)")
            }
            if Double(n) * 100 > policy.maxDisablePercent * Double(gateway.managed) {
                return Refusal(
                    cause: .brakePercent,
                    detail: "gateway \(gateway.name): \(n) of \(gateway.managed) managed consumers would be disabled, "
                        + "more than policy.max_disable_percent \(formatPercent(policy.maxDisablePercent))%")
            }
        }
        return nil
    }

    static func formatPercent(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
