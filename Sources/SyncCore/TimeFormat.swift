/// Time rendering without Foundation, so the core stays pure and deterministic.
public enum TimeFormat {
    /// The times we render and accept: 0001-01-01T00:00:00Z through 9999-12-31T23:59:59Z.
    public static let earliest: Int64 = -62_135_596_800
    public static let latest: Int64 = 253_402_300_799

    /// RFC 3339 UTC with seconds: `2026-11-30T07:15:00Z`. Total: a value outside years 1–9999
    /// (a crafted tag, a corrupt file) is clamped into that range, never trapped on.
    public static func rfc3339(_ unclamped: Int64) -> String {
        let seconds = min(max(unclamped, earliest), latest)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = seconds - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let year = String(y)
        let paddedYear = String(repeating: "0", count: max(0, 4 - year.count)) + year
        return "\(paddedYear)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60))Z"
    }

    /// Howard Hinnant's days-to-civil algorithm.
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Inverse of `civil(fromDays:)`.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The largest whole unit: `90s`, `15m`, `24h`, `7d`, or a sum like `1h30m`.
    public static func duration(_ seconds: Int64) -> String {
        if seconds <= 0 { return seconds == 0 ? "0s" : "-" + duration(seconds == Int64.min ? Int64.max : -seconds) }
        var rest = seconds
        var out = ""
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            out += "\(rest / size)\(unit)"
            rest %= size
        }
        return out
    }

    /// Parses `90s`, `15m`, `24h`, `7d`, `1h30m`; nil when malformed.
    public static func parseDuration(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number: Int64? = nil
        for c in text {
            if let digit = c.wholeNumberValue, c.isASCII {
                let (m, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (n, o2) = m.addingReportingOverflow(Int64(digit))
                if o1 || o2 { return nil }
                number = n
            } else {
                let size: Int64
                switch c {
                case "s": size = 1
                case "m": size = 60
                case "h": size = 3600
                case "d": size = 86_400
                default: return nil
                }
                guard let n = number else { return nil }
                let (m, o1) = n.multipliedReportingOverflow(by: size)
                let (t, o2) = total.addingReportingOverflow(m)
                if o1 || o2 { return nil }
                total = t
                number = nil
            }
        }
        return number == nil && !text.isEmpty ? total : nil
    }
}

extension TimeFormat {
    /// Parses `2026-11-30T07:15:00Z`, with optional fraction and `±HH:MM` offset, or a bare date
    /// `2026-11-30` (midnight UTC). Returns unix seconds, or nil when malformed.
    public static func parseRFC3339(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<from + count {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 10, let y = number(0, 4), b[4] == UInt8(ascii: "-"), let mo = number(5, 2),
            b[7] == UInt8(ascii: "-"), let d = number(8, 2), (1...12).contains(mo), (1...31).contains(d)
        else { return nil }
        let day = days(year: y, month: mo, day: d) * 86_400
        if b.count == 10 { return day }
        guard b.count >= 20, b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
            let h = number(11, 2), b[13] == UInt8(ascii: ":"), let mi = number(14, 2), b[16] == UInt8(ascii: ":"),
            let s = number(17, 2), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
        }
        var offset: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard let oh = number(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = number(i + 4, 2)
            else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return day + h * 3600 + mi * 60 + s - offset
    }
}

extension TimeFormat {
    /// `a + b`, saturating at the Int64 bounds: for times and durations that came from outside.
    public static func adding(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int64.max : Int64.min) : sum
    }

    /// `a - b`, saturating at the Int64 bounds.
    public static func subtracting(_ a: Int64, _ b: Int64) -> Int64 {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b > 0 ? Int64.min : Int64.max) : difference
    }
}
