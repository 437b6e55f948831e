/// Entries (users, or consumers) by their normalised match value, for the planner.
///
/// Keys are 64-bit hashes of the normalised value (`MatchKey.hash`: a UUID's bits, or FNV-1a on
/// the bytes, case folded where the rule says), so a million entries cost no million normalised
/// strings. Values that cannot be hashed that way (non-ASCII usernames) and values whose hash
/// collides with a different value live in a string-keyed side table. A hit by hash is confirmed
/// against the entry's own value. Values held by several entries are counted in `shared`.
struct HashedIndex<Values: MatchValues>: Sendable {
    let field: MatchRule.UserField
    /// The entries' values (kept, so a hit can be confirmed without storing strings).
    let values: Values
    private var byHash: [UInt64: Int32] = [:]
    private var byString: [String: Int32] = [:]
    /// Hashes that met a different value: such values live in `byString`.
    private var collided: Set<UInt64> = []
    /// Normalised values held by more than one entry, with how many hold them.
    private(set) var shared: [String: Int] = [:]
    /// Each entry's hash (nil: no value, or not hashable), for lookups that already have it.
    private(set) var hashes: [UInt64?]

    /// Indexes every entry of `values`.
    init(_ values: Values, field: MatchRule.UserField) {
        self.field = field
        self.values = values
        let count = values.count
        hashes = [UInt64?](repeating: nil, count: count)
        byHash.reserveCapacity(count)
        for i in 0..<count {
            guard let v = values.matchValue(at: i) else { continue }
            let h = MatchKey.hash(v, as: field)
            hashes[i] = h
            insert(v, Int32(i), hash: h)
        }
    }

    private mutating func insert(_ v: CompactText, _ i: Int32, hash: UInt64?) {
        guard let h = hash, !collided.contains(h) else {
            insertString(MatchKey.normalize(v.string, as: field), i)
            return
        }
        guard let other = byHash.updateValue(i, forKey: h) else { return }
        let otherKey = MatchKey.normalize(values.matchValue(at: Int(other))!.string, as: field)
        let key = MatchKey.normalize(v.string, as: field)
        if otherKey == key {
            byHash[h] = other  // keep the first entry; the value is shared
            shared[key, default: 1] += 1
        } else {  // a true 64-bit collision: move both to the string table
            byHash[h] = nil
            collided.insert(h)
            insertString(otherKey, other)
            insertString(key, i)
        }
    }

    private mutating func insertString(_ key: String, _ i: Int32) {
        if let first = byString.updateValue(i, forKey: key) {
            byString[key] = first
            shared[key, default: 1] += 1
        }
    }

    /// The entry with this value, confirmed against `value`; `hash` is `MatchKey.hash(v)` when the
    /// caller has it already. When several entries hold it, `shared` says so.
    func entry(for v: CompactText, hash: UInt64?? = nil) -> Int? {
        if let h = hash ?? MatchKey.hash(v, as: field), !collided.contains(h) {
            guard let i = byHash[h] else { return nil }
            return MatchKey.same(values.matchValue(at: Int(i))!, v, as: field) ? Int(i) : nil
        }
        return byString[MatchKey.normalize(v.string, as: field)].map(Int.init)
    }
}

/// What a `HashedIndex` indexes: entry i's match value (nil when it has none). A protocol, not a
/// closure, so the index is specialised for users and consumers and pays no closure calls. Values
/// are compact: ids in UUID form are hashed and compared packed, with no string made.
protocol MatchValues: Sendable {
    var count: Int { get }
    func matchValue(at i: Int) -> CompactText?
}

/// Users' ids or usernames.
struct UserValues: MatchValues {
    let users: [DirectoryUser]
    let field: MatchRule.UserField
    var count: Int { users.count }
    func matchValue(at i: Int) -> CompactText? { MatchKey.value(of: users[i], field) }
}

/// Consumers' custom_ids or usernames.
struct ConsumerValues: MatchValues {
    let consumers: [Consumer]
    let field: MatchRule.ConsumerField
    var count: Int { consumers.count }
    func matchValue(at i: Int) -> CompactText? { MatchKey.value(of: consumers[i], field) }
}
