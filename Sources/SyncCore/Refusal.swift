/// Why a run stopped before writing anything (docs/operations.md, the report's `refused`).
public struct Refusal: Hashable, Sendable, Error {
    public enum Cause: String, Hashable, Sendable, Codable {
        case sourceError = "source-error"
        case minUsers = "min-users"
        case shrink
        case brakeCount = "brake-count"
        case brakePercent = "brake-percent"
        case planMismatch = "plan-mismatch"
        case gatewayError = "gateway-error"
        /// `watch`: more disables in a sliding hour than `watch.max_disable_per_hour`.
        case brakeRate = "brake-rate"
    }

    public var cause: Cause
    public var detail: String

    public init(cause: Cause, detail: String) {
        self.cause = cause
        self.detail = detail
    }

    /// The exit code this refusal maps to.
    public var exitCode: ExitStatus {
        switch cause {
        case .sourceError, .minUsers, .shrink: return .sourceUntrustworthy
        case .brakeCount, .brakePercent, .planMismatch, .brakeRate: return .refused
        case .gatewayError: return .error
        }
    }
}

/// Exit codes (docs/operations.md), with their precedence.
public enum ExitStatus: Int32, Sendable, Codable {
    case success = 0
    case error = 1
    case changes = 2
    case refused = 3
    case sourceUntrustworthy = 4
    case usage = 64

    /// When several apply, the first in 64, 4, 3, 1, 2, 0 wins.
    static let precedence: [ExitStatus] = [.usage, .sourceUntrustworthy, .refused, .error, .changes, .success]

    public static func combine(_ statuses: [ExitStatus]) -> ExitStatus {
        precedence.first { statuses.contains($0) } ?? .success
    }
}
