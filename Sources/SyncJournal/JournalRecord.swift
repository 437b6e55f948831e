import SyncCore
import SyncEngine

/// Hashing rules of journal records (product.md §7).
public enum JournalRecord {
    public static let genesis = String(repeating: "0", count: 64)

    /// Lowercase hex SHA-256 of the record without `hash`, serialised canonically.
    public static func hash(of record: [String: JSONValue]) -> String {
        var body = record
        body["hash"] = nil
        return KeyFingerprint.hexSHA256(Array(JSONValue.object(body).canonical.utf8))
    }
}
