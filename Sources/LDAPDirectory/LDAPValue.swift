import SyncCore

/// Renders attribute values, binary-safe.
enum LDAPValue {
    /// AD's objectGUID is 16 raw bytes; its standard string form swaps the first three groups
    /// (little-endian) and keeps the last two as they are.
    static func guidString(_ b: [UInt8]) -> String? {
        guard b.count == 16 else { return nil }
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        let hex = Array(Hex.encode(order.map { b[$0] }))
        var out = ""
        for (i, digit) in hex.enumerated() {
            if i == 8 || i == 12 || i == 16 || i == 20 { out.append("-") }
            out.append(digit)
        }
        return out
    }

    /// The id as text: GUIDs for `objectGUID`, UTF-8 otherwise; nil for bytes that are not text.
    static func id(_ bytes: [UInt8], attribute: String) -> String? {
        if attribute.lowercased() == "objectguid" { return guidString(bytes) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Wraps a bare filter in parentheses.
    static func parenthesized(_ filter: String) -> String {
        filter.hasPrefix("(") ? filter : "(\(filter))"
    }
}

extension LDAPValue {
    /// RFC 4515 escaping of a value inside a filter. Works on the UTF-8 bytes and keeps them as
    /// they are (a filter is UTF-8), so `zoë` stays `zoë` and is not re-encoded byte by byte.
    static func escapeFilter(_ value: String) -> String {
        var out: [UInt8] = []
        let hex = Hex.digits
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "*"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"), 0:
                out += [UInt8(ascii: "\\"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default:
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
