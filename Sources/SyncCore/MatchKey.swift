/// Normalises values for linking consumers to users (product.md §2).
///
/// Usernames compare case-insensitively; an id in UUID form (8-4-4-4-12 hex) compares
/// case-insensitively (RFC 9562); any other id compares exactly.
public enum MatchKey {
    public static func normalize(_ value: String, as field: MatchRule.UserField) -> String {
        switch field {
        case .username: return value.lowercased()
        case .id: return isUUID(value) ? value.lowercased() : value
        }
    }

    /// True for the 8-4-4-4-12 hex form, any case.
    public static func isUUID(_ value: String) -> Bool {
        let utf8 = Array(value.utf8)
        guard utf8.count == 36 else { return false }
        for (i, c) in utf8.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != UInt8(ascii: "-") { return false }
            } else if !((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)) {
                return false
            }
        }
        return true
    }
}
