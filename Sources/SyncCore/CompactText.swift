/// Text that is most often a UUID (Kong's ids, entryUUID, SCIM ids), held compactly: a UUID in
/// its canonical form (lowercase 8-4-4-4-12 hex) is kept as its 16 bytes, inline, with no heap
/// allocation; any other text as the String it is. Reading it back gives the very same text, and
/// equality, hashing and order are those of the text. A directory of a million users holds two
/// or three ids per user and consumer: this keeps each in 24 bytes instead of 16 plus an 80-byte
/// allocation.
public struct CompactText: Hashable, Sendable, Comparable, CustomStringConvertible {
    private enum Storage: Hashable, Sendable {
        case uuid(UInt64, UInt64)
        case text(String)
    }

    private let storage: Storage

    public init(_ text: String) {
        storage = Self.packUUID(text).map { .uuid($0.0, $0.1) } ?? .text(text)
    }

    /// The text.
    public var string: String {
        switch storage {
        case .text(let text): return text
        case .uuid(let high, let low): return Self.unpackUUID(high, low)
        }
    }

    public var description: String { string }

    /// Whether the text is held as a packed UUID (for tests of the layout).
    public var isPacked: Bool {
        if case .uuid = storage { return true }
        return false
    }

    public static func < (a: CompactText, b: CompactText) -> Bool {
        // Hex digits and hyphens sort as their numeric values do, so packed UUIDs compare as numbers.
        if case .uuid(let ah, let al) = a.storage, case .uuid(let bh, let bl) = b.storage {
            return (ah, al) < (bh, bl)
        }
        return a.string < b.string
    }

    /// The 128 bits of a canonical lowercase UUID, or nil for any other text.
    static func packUUID(_ text: String) -> (UInt64, UInt64)? {
        guard text.utf8.count == 36 else { return nil }
        var copy = text
        return copy.withUTF8 { bytes -> (UInt64, UInt64)? in
            var high: UInt64 = 0, low: UInt64 = 0
            var nibbles = 0
            for (i, c) in bytes.enumerated() {
                if i == 8 || i == 13 || i == 18 || i == 23 {
                    guard c == UInt8(ascii: "-") else { return nil }
                    continue
                }
                let digit: UInt64
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(c &- 48)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(c &- 87)
                default: return nil  // capitals stay text: the text must come back as it was
                }
                if nibbles < 16 { high = high << 4 | digit } else { low = low << 4 | digit }
                nibbles += 1
            }
            return (high, low)
        }
    }

    static func unpackUUID(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { out in
            let digits: StaticString = "0123456789abcdef"
            var position = 0
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = nibble < 16 ? high : low
                let shift = UInt64(60 - 4 * (nibble % 16))
                out[position] = digits.utf8Start[Int(word >> shift & 0xF)]
                position += 1
            }
            return 36
        }
    }
}
