/// One user as the identity provider reported it.
public struct DirectoryUser: Hashable, Sendable, Codable {
    public enum State: String, Hashable, Sendable, Codable {
        case active
        case deactivated
    }

    public var id: UserID
    public var username: String?
    public var state: State
    /// Why the user counts as deactivated ("ppolicy administrative lock", "disabled_filter"), for reports.
    public var deactivationReason: String?

    public init(id: UserID, username: String?, state: State = .active, deactivationReason: String? = nil) {
        self.id = id
        self.username = username
        self.state = state
        self.deactivationReason = deactivationReason
    }
}

/// A complete read of the directory. Only a source that proved completeness may build one.
public struct DirectorySnapshot: Sendable {
    public var sourceType: String
    /// Where the users were read ("ou=people,dc=example,dc=org" or a SCIM URL), for reasons in reports.
    public var scope: String
    public var users: [DirectoryUser]

    public init(sourceType: String, scope: String, users: [DirectoryUser]) {
        self.sourceType = sourceType
        self.scope = scope
        self.users = users
    }
}
