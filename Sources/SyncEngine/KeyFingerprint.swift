import Crypto
import SyncCore

/// Fingerprints of secrets, so they can be named without being written anywhere.
public enum KeyFingerprint {
    /// `sha256:` + the first 16 hex digits of SHA-256(key) (docs/journal.md).
    public static func of(_ key: String) -> String {
        "sha256:" + String(hexSHA256(Array(key.utf8)).prefix(16))
    }

    /// Lowercase hex SHA-256.
    public static func hexSHA256(_ bytes: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: bytes))
    }
}

extension SyncPlan {
    /// SHA-256 over the sorted hash lines joined by `\n` (docs/operations.md).
    public var hash: String {
        KeyFingerprint.hexSHA256(Array(hashLines.joined(separator: "\n").utf8))
    }
}
