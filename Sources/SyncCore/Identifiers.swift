/// The id the gateway gives a consumer (a UUID). Wrapper so it is never confused with a user id.
public struct ConsumerID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Held compactly (a UUID takes no allocation): a run holds one per user or consumer.
    public let value: CompactText
    public init(_ rawValue: String) { value = CompactText(rawValue) }
    public init(_ value: CompactText) { self.value = value }
    public var rawValue: String { value.string }
    public var description: String { rawValue }
    public static func < (a: ConsumerID, b: ConsumerID) -> Bool { a.value < b.value }

    private enum CodingKeys: String, CodingKey { case rawValue }
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .rawValue))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rawValue, forKey: .rawValue)
    }
}

/// A directory user's stable id (entryUUID, objectGUID, SCIM id) as the source renders it.
public struct UserID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Held compactly (a UUID takes no allocation): a run holds one per user or consumer.
    public let value: CompactText
    public init(_ rawValue: String) { value = CompactText(rawValue) }
    public init(_ value: CompactText) { self.value = value }
    public var rawValue: String { value.string }
    public var description: String { rawValue }
    public static func < (a: UserID, b: UserID) -> Bool { a.value < b.value }

    private enum CodingKeys: String, CodingKey { case rawValue }
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .rawValue))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rawValue, forKey: .rawValue)
    }
}

/// The id of a key-auth credential. The key's value is never held in the core model.
public struct KeyID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (a: KeyID, b: KeyID) -> Bool { a.rawValue < b.rawValue }
}

/// The gateway's id for our block on a consumer (opaque to the core).
public struct BlockID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (a: BlockID, b: BlockID) -> Bool { a.rawValue < b.rawValue }
}
