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

    public init(bits: (UInt64, UInt64)) { storage = .uuid(bits.0, bits.1) }

    /// The text.
    public var string: String {
        switch storage {
        case .text(let text): return text
        case .uuid(let high, let low): return Self.unpackUUID(high, low)
        }
    }

    public var description: String { string }

    public var isEmpty: Bool {
        if case .text(let text) = storage { return text.isEmpty }
        return false
    }

    /// The bits of a packed UUID (nil for text).
    var packedBits: (UInt64, UInt64)? {
        guard case .uuid(let high, let low) = storage else { return nil }
        return (high, low)
    }

    /// The bits of text in UUID form in any case (ASCII hex), as a packed UUID holds them; nil for
    /// a packed value or text of another shape.
    var foldedUUIDBits: (UInt64, UInt64)? {
        guard case .text(var text) = storage, text.utf8.count == 36 else { return nil }
        return text.withUTF8 { Self.packUUID(bytes: $0, foldingCase: true) }
    }

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
        return copy.withUTF8 { packUUID(bytes: $0) }
    }

    /// Hex digit values by byte; 0xFF for anything but 0-9 and a-f (capitals stay text, so the
    /// text comes back as it was).
    private static let hexValue: [UInt8] = (0..<256).map { c in
        switch c {
        case 48...57: UInt8(c - 48)
        case 97...102: UInt8(c - 87)
        default: 0xFF
        }
    }
    /// The same with capitals A-F read as their values (for case-insensitive matching).
    private static let hexValueFolding: [UInt8] = (0..<256).map { c in
        switch c {
        case 48...57: UInt8(c - 48)
        case 97...102: UInt8(c - 87)
        case 65...70: UInt8(c - 55)
        default: 0xFF
        }
    }

    /// `packUUID` over UTF-8 bytes, so a decoder can pack an id without making a String. With
    /// `foldingCase`, capital hex digits are read too (the bits of the UUID's lowercase form).
    public static func packUUID(bytes: UnsafeBufferPointer<UInt8>, foldingCase: Bool = false) -> (UInt64, UInt64)? {
        guard bytes.count == 36, bytes[8] == 0x2D, bytes[13] == 0x2D, bytes[18] == 0x2D, bytes[23] == 0x2D else {
            return nil
        }
        return (foldingCase ? hexValueFolding : hexValue).withUnsafeBufferPointer { table -> (UInt64, UInt64)? in
            var bad: UInt8 = 0
            @inline(__always) func digits(_ range: Range<Int>, into word: inout UInt64) {
                for i in range {
                    let d = table[Int(bytes[i])]
                    bad |= d
                    word = word << 4 | UInt64(d & 0xF)
                }
            }
            var high: UInt64 = 0, low: UInt64 = 0
            digits(0..<8, into: &high)
            digits(9..<13, into: &high)
            digits(14..<18, into: &high)
            digits(19..<23, into: &low)
            digits(24..<36, into: &low)
            return bad & 0xF0 == 0 ? (high, low) : nil
        }
    }

    /// The text of UTF-8 bytes (nil when they are not UTF-8), packed without a String when they
    /// are a canonical UUID.
    public init?(validating bytes: UnsafeBufferPointer<UInt8>) {
        if let bits = Self.packUUID(bytes: bytes) {
            storage = .uuid(bits.0, bits.1)
        } else if let text = String(utf8Checking: bytes) {
            storage = .text(text)
        } else {
            return nil
        }
    }

    static func unpackUUID(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { out in
            spell(high, low, into: out)
            return 36
        }
    }

    /// Writes the canonical 36 bytes of a packed UUID into `out` (at least 36 long).
    @inline(__always)
    static func spell(_ high: UInt64, _ low: UInt64, into out: UnsafeMutableBufferPointer<UInt8>) {
        @inline(__always) func hex(_ word: UInt64, _ nibble: Int) -> UInt8 {
            let d = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * nibble)) & 0xF
            return d < 10 ? d &+ 48 : d &+ 87
        }
        var position = 0
        for nibble in 0..<16 {
            if nibble == 8 || nibble == 12 {
                out[position] = 0x2D
                position += 1
            }
            out[position] = hex(high, nibble)
            position += 1
        }
        out[position] = 0x2D
        position += 1
        for nibble in 0..<16 {
            if nibble == 4 {
                out[position] = 0x2D
                position += 1
            }
            out[position] = hex(low, nibble)
            position += 1
        }
    }
}

extension String {
    /// The text of UTF-8 bytes, nil when they are not UTF-8. Plain ASCII (the usual id or
    /// username) needs one OR-pass instead of full validation.
    public init?(utf8Checking bytes: UnsafeBufferPointer<UInt8>) {
        var high: UInt8 = 0
        for byte in bytes { high |= byte }
        if high < 0x80 {
            self = String(decoding: bytes, as: UTF8.self)
        } else if let text = String(validating: bytes, as: UTF8.self) {
            self = text
        } else {
            return nil
        }
    }
}
