import SyncCore

/// Renders attribute values, binary-safe.
enum LDAPValue {
    /// AD's objectGUID is 16 raw bytes; its standard string form swaps the first three groups
    /// (little-endian) and keeps the last two as they are.
    static func guidString(_ b: [UInt8]) -> String? {
        guard b.count == 16 else { return nil }
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        return hyphenated(Hex.encode(order.map { b[$0] }))
    }

    /// 32 hex digits grouped 8-4-4-4-12.
    static func hyphenated(_ hex: String) -> String {
        var out = ""
        for (i, digit) in hex.enumerated() {
            if i == 8 || i == 12 || i == 16 || i == 20 { out.append("-") }
            out.append(digit)
        }
        return out
    }

    /// The id as text: GUIDs for `objectGUID`, UTF-8 otherwise; nil for bytes that are not text.
    /// An entryUUID in canonical form is packed straight from the message's bytes.
    static func id(_ bytes: UnsafeBufferPointer<UInt8>, objectGUID: Bool) -> CompactText? {
        objectGUID ? guidString(Array(bytes)).map(CompactText.init) : CompactText(validating: bytes)
    }

    /// Every byte as `\xx`: an equality filter that matches these exact bytes (RFC 4515).
    static func escapeAllBytes(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes { out += "\\" + String(Hex.digits[Int(byte >> 4)]) + String(Hex.digits[Int(byte & 0x0F)]) }
        return out
    }

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

extension LDAPValue {
    /// An RFC 4517 GeneralizedTime (`20261207044434Z`, `20261207044434.5Z`, `202612070444+0100`)
    /// as unix seconds; nil when malformed or outside years 1–9999. Total.
    static func generalizedTime(_ b: [UInt8]) -> Int64? {
        guard b.count <= 64 else { return nil }
        func number(_ at: Int, _ count: Int) -> Int64? {
            guard at + count <= b.count else { return nil }
            var value: Int64 = 0
            for byte in b[at..<at + count] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(4, 2), let day = number(6, 2), let hour = number(8, 2),
            year >= 1, (1...12).contains(month), (1...31).contains(day), hour < 24
        else { return nil }
        var i = 10
        var minute: Int64 = 0
        var second: Int64 = 0
        if let m = number(i, 2) {
            guard m < 60 else { return nil }
            minute = m
            i += 2
            if let s = number(i, 2) {
                guard s < 61 else { return nil }
                second = s
                i += 2
            }
        }
        if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
            guard i > start else { return nil }
        }
        var offset: Int64 = 0
        guard i < b.count else { return nil }  // local time without a zone: not a point in time
        if b[i] == UInt8(ascii: "Z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = number(i + 1, 2), oh < 24 else { return nil }
            var om: Int64 = 0
            if let m = number(i + 3, 2) {
                guard m < 60 else { return nil }
                om = m
                i += 2
            }
            offset = (oh * 3600 + om * 60) * sign
            i += 3
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return TimeFormat.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
    }
}
