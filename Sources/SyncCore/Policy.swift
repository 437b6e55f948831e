/// What to do with consumers whose user is gone.
public enum OnMissing: String, Hashable, Sendable, Codable, CaseIterable {
    case flag
    case disable
    case deleteKeys = "delete-keys"
}

/// The `policy:` section of the config, already validated.
public struct Policy: Hashable, Sendable {
    /// Seconds from first seen missing to disable.
    public var gracePeriod: Int64
    /// Seconds from first seen deactivated to disable.
    public var disabledGracePeriod: Int64
    public var onMissing: OnMissing
    public var maxDisable: Int
    public var maxDisablePercent: Double
    public var minUsers: Int
    public var maxShrinkPercent: Double
    public var protected: [String]
    /// With `on_missing: delete-keys`, the credential types the delete step removes.
    public var deleteCredentials: [String]

    public init(
        gracePeriod: Int64 = 86_400, disabledGracePeriod: Int64 = 0, onMissing: OnMissing = .disable,
        maxDisable: Int = 25, maxDisablePercent: Double = 5, minUsers: Int = 1, maxShrinkPercent: Double = 20,
        protected: [String] = [], deleteCredentials: [String] = ["key-auth"]
    ) {
        self.deleteCredentials = deleteCredentials
        self.gracePeriod = gracePeriod
        self.disabledGracePeriod = disabledGracePeriod
        self.onMissing = onMissing
        self.maxDisable = maxDisable
        self.maxDisablePercent = maxDisablePercent
        self.minUsers = minUsers
        self.maxShrinkPercent = maxShrinkPercent
        self.protected = protected
    }
}

/// How a consumer is linked to a directory user.
public struct MatchRule: Hashable, Sendable {
    public enum ConsumerField: String, Hashable, Sendable { case customID = "custom_id", username }
    public enum UserField: String, Hashable, Sendable { case id, username }

    public var consumer: ConsumerField
    public var user: UserField

    public init(consumer: ConsumerField, user: UserField) {
        self.consumer = consumer
        self.user = user
    }

    public static let recommended = MatchRule(consumer: .customID, user: .id)
}

/// A gateway as the planner needs to know it.
public struct GatewayPolicy: Hashable, Sendable {
    public var name: String
    public var match: MatchRule

    public init(name: String, match: MatchRule) {
        self.name = name
        self.match = match
    }
}
