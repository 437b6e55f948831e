/// Where a managed consumer stands against the directory (docs/report.md).
public enum Situation: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    case linked
    case missing
    case deactivated
    case unlinked
    case disputed
    case protected
    case blocked
    case conflict

    public static func < (a: Situation, b: Situation) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A change the sync makes on a gateway.
public enum ActionKind: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    case flag
    case disable
    case deleteKey = "delete-key"
    /// Deletes a credential of another type than key-auth (`policy.delete_credentials`).
    case deleteCredential = "delete-credential"
    case unflag
    case restore

    /// Order of actions on one consumer within a run.
    public static func < (a: ActionKind, b: ActionKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Actions that stop a consumer's keys from working; the brakes count these.
    public var isDisabling: Bool { self == .disable || self == .deleteKey || self == .deleteCredential }
}
