/// A strict JSON parser (RFC 8259) that keeps integers apart from booleans and doubles: the tree
/// builder over `JSONReader`.
public enum JSONParser {
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var offset: Int
        public var message: String
        public var description: String { "invalid JSON at byte \(offset): \(message)" }
    }

    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Array(text.utf8))
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONReader.read(bytes) { reader in try reader.value() }
    }
}

/// A pull parser over JSON text (RFC 8259, strict): the caller walks the document member by member
/// and turns only what it needs into Swift values, skipping the rest without building it (a page
/// of a thousand Kong consumers is read without a tree). Every rule of `JSONParser` holds for
/// skipped values too: UTF-8, escapes, numbers, nesting depth, and no text after the document.
///
/// Objects and arrays are walked like this:
///
///     if try reader.beginObject() {
///         repeat {
///             switch try reader.key() { case "id": …; default: try reader.skipValue() }
///         } while try reader.nextMember()
///     }
public struct JSONReader {
    public typealias Error = JSONParser.Error
    /// Objects and arrays nest at most this deep.
    public static let maxDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    public private(set) var offset = 0
    private var depth = 0

    /// The kinds of value, as the next byte announces them.
    public enum Kind: Sendable { case object, array, string, number, bool, null }

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Runs `body` over the document in `bytes`, then insists that nothing but blanks follows it.
    public static func read<T>(_ bytes: [UInt8], _ body: (inout JSONReader) throws -> T) throws -> T {
        try bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(buffer)
            reader.skipSpace()
            let result = try body(&reader)
            reader.skipSpace()
            guard reader.offset == buffer.count else { throw reader.fail("trailing characters") }
            return result
        }
    }

    /// An error at the current position (a caller's own rule, such as a repeated key it reads).
    public func fail(_ message: String) -> Error { Error(offset: offset, message: message) }

    private mutating func skipSpace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x0A, 0x0D, 0x09: offset += 1
            default: return
            }
        }
    }

    /// The next byte after blanks, or an error at the end of the text.
    private mutating func next() throws -> UInt8 {
        skipSpace()
        guard offset < bytes.count else { throw fail("unexpected end") }
        return bytes[offset]
    }

    /// What the next value is (blanks skipped); an error when no value can start here.
    public mutating func kind() throws -> Kind {
        switch try next() {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), 48...57: return .number
        default: throw fail("unexpected character")
        }
    }

    // MARK: Objects and arrays

    private mutating func enter(_ open: UInt8, _ close: UInt8, _ what: String) throws -> Bool {
        guard try next() == open else { throw fail("expected \(what)") }
        depth += 1
        guard depth < Self.maxDepth else { throw fail("nested too deeply") }
        offset += 1
        if try next() == close {
            offset += 1
            depth -= 1
            return false
        }
        return true
    }

    private mutating func advance(_ close: UInt8) throws -> Bool {
        let c = try next()
        offset += 1
        if c == UInt8(ascii: ",") { return true }
        if c == close {
            depth -= 1
            return false
        }
        offset -= 1
        throw fail(close == UInt8(ascii: "}") ? "expected ',' or '}'" : "expected ',' or ']'")
    }

    /// Enters an object: true when it has members (read each with `key()` and a value), false when
    /// it was `{}` (already consumed).
    public mutating func beginObject() throws -> Bool { try enter(UInt8(ascii: "{"), UInt8(ascii: "}"), "an object") }

    /// After a member's value: true when another member follows, false at the object's end.
    public mutating func nextMember() throws -> Bool { try advance(UInt8(ascii: "}")) }

    /// A member's key and its colon.
    public mutating func key() throws -> String {
        guard try next() == UInt8(ascii: "\"") else { throw fail("expected a key") }
        let key = try string()
        guard try next() == UInt8(ascii: ":") else { throw fail("expected ':'") }
        offset += 1
        return key
    }

    /// The next key, as the index of the one of `names` it equals (nil for any other key). A plain
    /// ASCII key without escapes is compared as bytes, with no String made; any other is read
    /// (and checked) by `key()`.
    public mutating func key(in names: [StaticString]) throws -> Int? {
        guard try next() == UInt8(ascii: "\"") else { throw fail("expected a key") }
        let start = offset + 1
        var end = start
        while end < bytes.count {
            let c = bytes[end]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
            end += 1
        }
        guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else {
            let key = try key()
            return names.firstIndex { $0.description == key }
        }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
        offset = end + 1
        guard try next() == UInt8(ascii: ":") else { throw fail("expected ':'") }
        offset += 1
        for i in names.indices {
            let name = names[i]
            guard name.utf8CodeUnitCount == raw.count else { continue }
            let start = name.utf8Start
            var equal = true
            for j in 0..<raw.count where start[j] != raw[j] {
                equal = false
                break
            }
            if equal { return i }
        }
        return nil
    }

    /// Enters an array: true when it has elements, false when it was `[]` (already consumed).
    public mutating func beginArray() throws -> Bool { try enter(UInt8(ascii: "["), UInt8(ascii: "]"), "an array") }

    /// After an element: true when another follows, false at the array's end.
    public mutating func nextElement() throws -> Bool { try advance(UInt8(ascii: "]")) }

    // MARK: Scalars

    /// Consumes `null` when it comes next.
    public mutating func null() throws -> Bool {
        guard try next() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard bytes.count - offset >= count else { throw fail("unexpected token") }
        for k in 0..<count where bytes[offset + k] != word.utf8Start[k] { throw fail("unexpected token") }
        offset += count
    }

    /// A string value.
    public mutating func string() throws -> String {
        guard try next() == UInt8(ascii: "\"") else { throw fail("expected a string") }
        offset += 1
        let start = offset
        // Fast path: no escapes; plain ASCII needs no validation beyond the scan.
        var high: UInt8 = 0
        while offset < bytes.count {
            let c = bytes[offset]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
            high |= c
            offset += 1
        }
        guard offset < bytes.count else { throw fail("unterminated string") }
        if bytes[offset] == UInt8(ascii: "\"") {
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<offset])
            offset += 1
            if high < 0x80 { return String(decoding: raw, as: UTF8.self) }
            guard let s = String(validating: raw, as: UTF8.self) else {
                offset = start
                throw fail("invalid UTF-8")
            }
            return s
        }
        return try escapedString(from: start)
    }

    /// A string value as `CompactText`: a canonical UUID without escapes is packed straight from
    /// the bytes, with no String made; anything else is `string()`.
    public mutating func compactText() throws -> CompactText {
        if try next() == UInt8(ascii: "\""), offset + 37 < bytes.count, bytes[offset + 37] == UInt8(ascii: "\""),
            let bits = CompactText.packUUID(bytes: UnsafeBufferPointer(rebasing: bytes[(offset + 1)..<(offset + 37)]))
        {
            offset += 38
            return CompactText(bits: bits)
        }
        return CompactText(try string())
    }

    /// Steps over a string: plain ASCII without escapes is only scanned; anything else is decoded
    /// (and so checked) as `string()` does.
    private mutating func skipString() throws {
        let start = offset
        offset += 1
        var high: UInt8 = 0
        while offset < bytes.count {
            let c = bytes[offset]
            if c == UInt8(ascii: "\"") {
                if high < 0x80 {
                    offset += 1
                    return
                }
                break
            }
            if c == UInt8(ascii: "\\") || c < 0x20 { break }
            high |= c
            offset += 1
        }
        offset = start
        _ = try string()
    }

    /// The slow path: a string with escapes (or a control character, which is an error).
    private mutating func escapedString(from start: Int) throws -> String {
        var buffer = Array(bytes[start..<offset])
        while true {
            guard offset < bytes.count else { throw fail("unterminated string") }
            let c = bytes[offset]
            if c == UInt8(ascii: "\"") {
                offset += 1
                break
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") {
                buffer.append(c)
                offset += 1
                continue
            }
            offset += 1
            guard offset < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[offset]
            offset += 1
            switch e {
            case UInt8(ascii: "\""): buffer.append(0x22)
            case UInt8(ascii: "\\"): buffer.append(0x5C)
            case UInt8(ascii: "/"): buffer.append(0x2F)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u")
                    else {
                        throw fail("lone surrogate")
                    }
                    offset += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("bad surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("lone surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("bad code point") }
                buffer.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("bad escape")
            }
        }
        guard let s = String(validating: buffer, as: UTF8.self) else { throw fail("invalid UTF-8") }
        return s
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - offset >= 4 else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[offset]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw fail("bad \\u escape")
            }
            v = v * 16 + d
            offset += 1
        }
        return v
    }

    /// The extent of a number (RFC 8259 grammar) and whether it is written as an integer.
    private mutating func numberExtent() throws -> (start: Int, isInteger: Bool) {
        _ = try next()
        let start = offset
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        let intStart = offset
        while offset < bytes.count, bytes[offset] &- 48 < 10 { offset += 1 }
        guard offset > intStart else { throw fail("unexpected character") }
        if bytes[intStart] == 48 && offset - intStart > 1 { throw fail("leading zero") }
        var isInteger = true
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            isInteger = false
            offset += 1
            let f = offset
            while offset < bytes.count, bytes[offset] &- 48 < 10 { offset += 1 }
            guard offset > f else { throw fail("bad fraction") }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            isInteger = false
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            let e = offset
            while offset < bytes.count, bytes[offset] &- 48 < 10 { offset += 1 }
            guard offset > e else { throw fail("bad exponent") }
        }
        return (start, isInteger)
    }

    /// A number: `.int` when written as an integer that fits 64 bits, else `.double`.
    public mutating func number() throws -> JSONValue {
        let (start, isInteger) = try numberExtent()
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        if isInteger, let v = Int64(text) { return .int(v) }
        guard let d = Double(text) else { throw fail("bad number") }
        return .double(d)
    }

    // MARK: Whole values

    /// The next value as a tree. Objects with a repeated key are rejected.
    public mutating func value() throws -> JSONValue {
        switch try kind() {
        case .object:
            var members: [String: JSONValue] = [:]
            if try beginObject() {
                repeat {
                    let at = offset
                    let key = try key()
                    guard members[key] == nil else {
                        offset = at
                        throw fail("duplicate key \"\(key)\"")
                    }
                    members[key] = try value()
                } while try nextMember()
            }
            return .object(members)
        case .array:
            var items: [JSONValue] = []
            if try beginArray() {
                repeat { items.append(try value()) } while try nextElement()
            }
            return .array(items)
        case .string: return .string(try string())
        case .number: return try number()
        case .bool:
            if bytes[offset] == UInt8(ascii: "t") {
                try literal("true")
                return .bool(true)
            }
            try literal("false")
            return .bool(false)
        case .null:
            try literal("null")
            return .null
        }
    }

    /// Steps over the next value, checking it as strictly as `value()` would, without building it.
    /// Keys of skipped objects are not compared with each other (nothing reads them).
    public mutating func skipValue() throws {
        switch try kind() {
        case .object:
            if try beginObject() {
                repeat {
                    _ = try key()
                    try skipValue()
                } while try nextMember()
            }
        case .array:
            if try beginArray() {
                repeat { try skipValue() } while try nextElement()
            }
        case .string: try skipString()
        case .number: _ = try numberExtent()
        case .bool: try literal(bytes[offset] == UInt8(ascii: "t") ? "true" : "false")
        case .null: try literal("null")
        }
    }
}
