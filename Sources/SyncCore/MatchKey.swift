/// Normalises values for linking consumers to users (docs/report.md).
///
/// Usernames compare case-insensitively; an id in UUID form (8-4-4-4-12 hex) compares
/// case-insensitively (RFC 9562); any other id compares exactly.
public enum MatchKey {
    public static func normalize(_ value: String, as field: MatchRule.UserField) -> String {
        switch field {
        case .username: return asciiLowercased(value) ?? value.lowercased()
        case .id: return isUUID(value) ? (asciiLowercased(value) ?? value) : value
        }
    }

    /// Lowercases pure-ASCII text without Unicode tables (the value itself when it has no capitals).
    /// Nil for non-ASCII text: the caller falls back to full Unicode lowercasing.
    static func asciiLowercased(_ value: String) -> String? {
        var copy = value
        enum Scan { case nonASCII, unchanged, upper }
        let scan: Scan = copy.withUTF8 { bytes in
            var upper = false
            for c in bytes {
                if c >= 0x80 { return .nonASCII }
                if c &- 65 < 26 { upper = true }
            }
            return upper ? .upper : .unchanged
        }
        switch scan {
        case .nonASCII: return nil
        case .unchanged: return value
        case .upper:
            return copy.withUTF8 { bytes in
                String(unsafeUninitializedCapacity: bytes.count) { out in
                    for i in 0..<bytes.count {
                        let c = bytes[i]
                        out[i] = c &- 65 < 26 ? c + 32 : c
                    }
                    return bytes.count
                }
            }
        }
    }

    /// True for the 8-4-4-4-12 hex form, any case.
    public static func isUUID(_ value: String) -> Bool {
        guard value.utf8.count == 36 else { return false }
        var copy = value
        return copy.withUTF8 { bytes in
            for i in 0..<36 {
                let c = bytes[i]
                if i == 8 || i == 13 || i == 18 || i == 23 {
                    if c != UInt8(ascii: "-") { return false }
                } else if !((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)) {
                    return false
                }
            }
            return true
        }
    }
}

extension MatchKey {
    /// A consumer's match value under the rule, as held (nil when it has none).
    public static func value(of consumer: Consumer, _ field: MatchRule.ConsumerField) -> CompactText? {
        let value = field == .customID ? consumer.customIDText : consumer.username.map(CompactText.init)
        return value?.isEmpty == false ? value : nil
    }

    /// A user's match value under the rule, as held (nil when it has none).
    public static func value(of user: DirectoryUser, _ field: MatchRule.UserField) -> CompactText? {
        let value = field == .id ? user.id.value : user.username.map(CompactText.init)
        return value?.isEmpty == false ? value : nil
    }

    /// `normalize` as a compact key. A packed UUID is canonical lowercase, already normal under
    /// either rule, so it is its own key and no string is made.
    public static func key(_ value: CompactText, as field: MatchRule.UserField) -> CompactText {
        value.isPacked ? value : CompactText(normalize(value.string, as: field))
    }
}

extension MatchKey {
    /// A 64-bit hash of the normalised value, computed without building the normalised string.
    /// A value in UUID form (any case) hashes its 128 bits (both rules normalise a UUID to its
    /// lowercase); any other value is FNV-1a over its bytes, ASCII letters folded for usernames.
    /// Equal normalised values hash equally; the planner confirms equality with `same` when two
    /// hashes meet. Nil for non-ASCII usernames, which take the string path.
    static func hash(_ value: String, as field: MatchRule.UserField) -> UInt64? {
        var copy = value
        return copy.withUTF8 { hash(bytes: $0, as: field) }
    }

    /// `hash` of a compact value; a packed UUID is hashed from its bits, with no string made.
    static func hash(_ value: CompactText, as field: MatchRule.UserField) -> UInt64? {
        if let bits = value.packedBits { return uuidHash(bits) }
        return hash(value.string, as: field)  // text is held as a String: nothing is made
    }

    static func hash(bytes: UnsafeBufferPointer<UInt8>, as field: MatchRule.UserField) -> UInt64? {
        if bytes.count == 36, let bits = CompactText.packUUID(bytes: bytes, foldingCase: true) { return uuidHash(bits) }
        var folded: UInt64 = 0xcbf2_9ce4_8422_2325
        var exact: UInt64 = 0xcbf2_9ce4_8422_2325
        var ascii = true
        for i in 0..<bytes.count {
            let c = bytes[i]
            if c >= 0x80 { ascii = false }
            folded = (folded ^ UInt64(c &- 65 < 26 ? c + 32 : c)) &* 0x0000_0100_0000_01b3
            exact = (exact ^ UInt64(c)) &* 0x0000_0100_0000_01b3
        }
        switch field {
        case .username: return ascii ? folded : nil
        case .id: return exact
        }
    }

    /// The 128 bits of a UUID mixed into 64 (splitmix64's finaliser over both words).
    @inline(__always)
    static func uuidHash(_ bits: (UInt64, UInt64)) -> UInt64 {
        var h = (bits.0 ^ 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ bits.1 ^ (h >> 31)) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 29)
    }

    /// `same` for compact values: two packed UUIDs compare as their bits, and a packed UUID
    /// against text in UUID form as the bits of the text's lowercase (under either rule, a UUID's
    /// normal form is its lowercase). Anything else takes the string path.
    static func same(_ a: CompactText, _ b: CompactText, as field: MatchRule.UserField) -> Bool {
        switch (a.packedBits, b.packedBits) {
        case let (x?, y?): return x == y
        case let (x?, nil): if let y = b.foldedUUIDBits { return x == y }
        case let (nil, y?): if let x = a.foldedUUIDBits { return x == y }
        case (nil, nil): break
        }
        return same(a.string, b.string, as: field)
    }

}

extension MatchKey {
    /// Whether two values are the same under `normalize`, without building normalised strings.
    static func same(_ a: String, _ b: String, as field: MatchRule.UserField) -> Bool {
        if a == b { return true }
        guard a.utf8.count == b.utf8.count else { return normalize(a, as: field) == normalize(b, as: field) }
        if field == .id && !(isUUID(a) && isUUID(b)) { return false }
        var x = a, y = b
        let folded: Bool? = x.withUTF8 { p in
            y.withUTF8 { q in
                for i in 0..<p.count {
                    let c = p[i], d = q[i]
                    if c >= 0x80 || d >= 0x80 { return nil }
                    if (c &- 65 < 26 ? c + 32 : c) != (d &- 65 < 26 ? d + 32 : d) { return false }
                }
                return true
            }
        }
        return folded ?? (normalize(a, as: field) == normalize(b, as: field))
    }
}
