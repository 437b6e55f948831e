import SyncCore

/// What a page's `offset` says of the next page.
enum NextPage: Equatable {
    /// No `offset`, or `null`: the listing is complete.
    case end
    case offset(String)
    /// An `offset` that is neither a string nor null.
    case notAString
}

/// One page of a Kong listing: its items and what comes next.
struct Page<Item> {
    var items: [Item]
    var next: NextPage
}

/// Identical tag arrays shared by every consumer that has them (most consumers of an estate carry
/// the same few tags): one array in memory instead of one per consumer. Bounded: after `limit`
/// distinct arrays, new ones are kept as they are.
final class TagInterner {
    private var known: [[String]: [String]] = [:]
    private let limit: Int

    init(limit: Int = 4096) { self.limit = limit }

    func intern(_ tags: [String]) -> [String] {
        if let shared = known[tags] { return shared }
        if known.count < limit { known[tags] = tags }
        return tags
    }
}

extension Wire {
    /// A page as a tree (small listings: plugins, keys, credentials); nil without a `data` array.
    static func jsonPage(_ body: [UInt8]) throws -> Page<JSONValue>? {
        let page = try JSONParser.parse(body)
        guard let data = page["data"]?.arrayValue else { return nil }
        switch page["offset"] {
        case .string(let next)?: return Page(items: data, next: .offset(next))
        case nil, .null?: return Page(items: data, next: .end)
        default: return Page(items: data, next: .notAString)
        }
    }

    /// A page of `GET /consumers` read straight into consumers, without a tree: only `id`,
    /// `username`, `custom_id` and `tags` are turned into values, every other member is checked
    /// and stepped over. A member the sync reads may not appear twice, in the page or in a consumer
    /// (which one would count?). An item without a string `id`, or not an object, is nil; nil for
    /// the page when it has no `data` array. Same meaning as `jsonPage` then `consumer(_:)`.
    static func consumerPage(_ body: [UInt8], tags: TagInterner) throws -> Page<Consumer?>? {
        try JSONReader.read(body) { reader in
            guard try reader.kind() == .object else {
                try reader.skipValue()
                return nil
            }
            var items: [Consumer?]? = nil
            var next = NextPage.end
            var seen: (data: Bool, offset: Bool) = (false, false)
            if try reader.beginObject() {
                repeat {
                    let key = try reader.key()
                    switch key {
                    case "data":
                        guard !seen.data else { throw reader.fail("duplicate key \"data\"") }
                        seen.data = true
                        guard try reader.kind() == .array else {
                            try reader.skipValue()
                            continue
                        }
                        var list: [Consumer?] = []
                        if try reader.beginArray() {
                            repeat { list.append(try consumer(&reader, tags: tags)) } while try reader.nextElement()
                        }
                        items = list
                    case "offset":
                        guard !seen.offset else { throw reader.fail("duplicate key \"offset\"") }
                        seen.offset = true
                        switch try reader.kind() {
                        case .string: next = .offset(try reader.string())
                        case .null: _ = try reader.null()
                        default:
                            try reader.skipValue()
                            next = .notAString
                        }
                    default:
                        try reader.skipValue()
                    }
                } while try reader.nextMember()
            }
            return items.map { Page(items: $0, next: next) }
        }
    }

    /// The consumer fields read, in the order of the bits in `consumer`'s duplicate check.
    private static let consumerKeys: [StaticString] = ["id", "username", "custom_id", "tags"]

    /// One consumer object of a page (the reader stands before it).
    private static func consumer(_ reader: inout JSONReader, tags interner: TagInterner) throws -> Consumer? {
        guard try reader.kind() == .object else {
            try reader.skipValue()
            return nil
        }
        var id: CompactText? = nil, username: String? = nil, customID: CompactText? = nil, tags: [String]? = nil
        var seen: UInt8 = 0
        if try reader.beginObject() {
            repeat {
                // Keys are matched as bytes: a page of 1,000 consumers has ~6,000 of them.
                guard let index = try reader.key(in: consumerKeys) else {
                    try reader.skipValue()
                    continue
                }
                let bit = UInt8(1) << index
                guard seen & bit == 0 else { throw reader.fail("duplicate key \"\(consumerKeys[index])\"") }
                seen |= bit
                if bit == 8 {
                    tags = try stringArray(&reader).map(interner.intern)
                    continue
                }
                guard try reader.kind() == .string else {
                    try reader.skipValue()
                    continue
                }
                // Ids are packed straight from the page's bytes when they are canonical UUIDs.
                switch bit {
                case 1: id = try reader.compactText()
                case 2: username = try reader.string()
                default: customID = try reader.compactText()
                }
            } while try reader.nextMember()
        }
        guard let id else { return nil }
        return Consumer(id: ConsumerID(id), username: username, customIDText: customID, tags: tags)
    }

    /// The strings of an array (other elements dropped), or nil when the value is no array.
    private static func stringArray(_ reader: inout JSONReader) throws -> [String]? {
        guard try reader.kind() == .array else {
            try reader.skipValue()
            return nil
        }
        var strings: [String] = []
        if try reader.beginArray() {
            repeat {
                if try reader.kind() == .string {
                    strings.append(try reader.string())
                } else {
                    try reader.skipValue()
                }
            } while try reader.nextElement()
        }
        return strings
    }

    /// True when `tags` hold every tag of `select_tags`.
    static func isManaged(tags: [String]?, selectTags: [String]) -> Bool {
        let tags = tags ?? []
        return selectTags.allSatisfy(tags.contains)
    }
}
