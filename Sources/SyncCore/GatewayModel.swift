/// A gateway consumer as read (only the fields the sync uses).
public struct Consumer: Hashable, Sendable, Codable {
    public var id: ConsumerID
    public var username: String?
    /// Often a user's UUID: held compactly, like the ids.
    private var storedCustomID: CompactText?
    public var customID: String? {
        get { storedCustomID?.string }
        set { storedCustomID = newValue.map(CompactText.init) }
    }
    /// `customID` as held (no String made for a UUID).
    public var customIDText: CompactText? { storedCustomID }
    /// `nil` when the gateway holds no tags at all; kept distinct from `[]` so writes do not invent changes.
    public var tags: [String]?

    public init(id: ConsumerID, username: String?, customID: String?, tags: [String]?) {
        self.id = id
        self.username = username
        self.storedCustomID = customID.map(CompactText.init)
        self.tags = tags
    }

    public init(id: ConsumerID, username: String?, customIDText: CompactText?, tags: [String]?) {
        self.id = id
        self.username = username
        self.storedCustomID = customIDText
        self.tags = tags
    }

    private enum CodingKeys: String, CodingKey { case id, username, customID, tags }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(ConsumerID.self, forKey: .id), username: try c.decodeIfPresent(String.self, forKey: .username),
            customID: try c.decodeIfPresent(String.self, forKey: .customID),
            tags: try c.decodeIfPresent([String].self, forKey: .tags))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(username, forKey: .username)
        try c.encodeIfPresent(customID, forKey: .customID)
        try c.encodeIfPresent(tags, forKey: .tags)
    }

    public var tagList: [String] { tags ?? [] }
}

/// Something on a consumer that a person put there and that decides what our block can do,
/// as the gateway adapter classified it (the core knows no gateway's mechanism).
public enum ForeignBlock: Hashable, Sendable {
    /// It already stops every request of the consumer: the situation is `blocked`.
    case blocking(String)
    /// It stops nothing, yet it keeps our block from being added: the situation is `conflict`.
    case conflicting(String)

    /// What it is, in the gateway's words (for reports and `explain`).
    public var description: String {
        switch self {
        case .blocking(let what), .conflicting(let what): return what
        }
    }
}

/// A key-auth credential, by id and fingerprint only: its value never leaves the gateway adapter.
public struct KeyRef: Hashable, Sendable, Codable, Comparable {
    public var id: KeyID
    /// `sha256:` + the first 16 hex digits of SHA-256(key).
    public var fingerprint: String
    /// When the gateway expires the key by itself (a key-auth `ttl`), in unix seconds.
    public var expiresAt: Int64?

    public init(id: KeyID, fingerprint: String, expiresAt: Int64? = nil) {
        self.id = id
        self.fingerprint = fingerprint
        self.expiresAt = expiresAt
    }

    public static func < (a: KeyRef, b: KeyRef) -> Bool { a.id < b.id }
}

/// A credential of any type, by what names it without its secret: a key-auth key's fingerprint,
/// a basic-auth or hmac-auth username, a jwt `key`, an oauth2 `client_id`.
public struct CredentialRef: Hashable, Sendable, Comparable {
    /// The gateway's name for the type (`key-auth`, `basic-auth`, `hmac-auth`, `jwt`, `oauth2`).
    public var type: String
    public var id: String
    /// Non-secret: `sha256:…` for a key, else the field that names it (`username=…`, `key=…`, `client_id=…`).
    public var identity: String

    public init(type: String, id: String, identity: String) {
        self.type = type
        self.id = id
        self.identity = identity
    }

    /// The credential types a gateway may report, in the order reports list them.
    public static let types = ["key-auth", "basic-auth", "hmac-auth", "jwt", "oauth2"]

    /// `type:id`, as the plan hash names a credential.
    public var qualifiedID: String { "\(type):\(id)" }

    public static func < (a: CredentialRef, b: CredentialRef) -> Bool {
        (types.firstIndex(of: a.type) ?? types.count, a.type, a.id) < (types.firstIndex(of: b.type) ?? types.count, b.type, b.id)
    }
}

/// What is read only for consumers the plan acts on: their keys and other credentials, our block
/// and anyone else's, and what else restricts the consumer.
public struct ConsumerDetails: Hashable, Sendable {
    public var keys: [KeyRef]
    /// Our block on the consumer, if any.
    public var ourBlock: BlockID?
    /// A person's block or a conflicting configuration, if any.
    public var foreign: ForeignBlock?
    /// Every credential, key-auth included, sorted by type then id.
    public var credentials: [CredentialRef]
    /// What else limits the consumer, in the gateway's words (acl groups, consumer-scoped plugins).
    public var restrictions: [String]

    public init(
        keys: [KeyRef], ourBlock: BlockID? = nil, foreign: ForeignBlock? = nil, credentials: [CredentialRef]? = nil,
        restrictions: [String] = []
    ) {
        self.keys = keys
        self.ourBlock = ourBlock
        self.foreign = foreign
        self.credentials =
            credentials ?? keys.map { CredentialRef(type: "key-auth", id: $0.id.rawValue, identity: $0.fingerprint) }
        self.restrictions = restrictions
    }
}

/// One gateway's managed consumers and our blocks, read completely before planning.
public struct GatewaySnapshot: Sendable {
    public var name: String
    public var consumers: [Consumer]
    /// Our blocks, by consumer.
    public var ourBlocks: [ConsumerID: BlockID]
    /// Keys and blocks of the consumers the plan acts on; filled in a second read.
    public var details: [ConsumerID: ConsumerDetails]
    /// Consumers the journal says idp-sync disabled (at that time) and has not restored since.
    public var disabledEarlier: [ConsumerID: Int64] = [:]

    public init(
        name: String, consumers: [Consumer], ourBlocks: [ConsumerID: BlockID] = [:],
        details: [ConsumerID: ConsumerDetails] = [:]
    ) {
        self.name = name
        self.consumers = consumers
        self.ourBlocks = ourBlocks
        self.details = details
    }
}
