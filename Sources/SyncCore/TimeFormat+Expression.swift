extension TimeFormat {
    /// The forms `parseExpression` accepts, for error messages and help.
    public static let expressionForms = """
        an RFC 3339 time (2026-11-30T14:00:00Z, 2026-11-30T14:00:00+01:00, 2026-11-30 14:00 UTC); \
        a local date or time (2026-11-30, 2026-11-30 14:00, 2026-11-30T14:00:00, 14:00 or 14:00:00 today); \
        today, yesterday, tomorrow (local midnight) or now; an age back from now (2h, 7d, 1h30m, -2h, 2h ago) \
        or ahead (+2h)
        """

    /// Parses a time as `journalctl --since` takes it; nil when it is none of `expressionForms`.
    /// Pure and deterministic: `now` is unix seconds and `utcOffset` gives the local zone's offset
    /// (seconds east of UTC) in effect at a UTC instant; a time without an offset is local time
    /// (in a gap or an overlap of a clock change, one of the candidates is taken).
    public static func parseExpression(_ input: String, now: Int64, utcOffset: (Int64) -> Int64) -> Int64? {
        var text = Substring(input)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        let word = text.lowercased()
        let today = floorDivide(adding(now, utcOffset(now)), 86_400)
        switch word {
        case "now": return now
        case "today": return instant(localWall: today * 86_400, utcOffset)
        case "yesterday": return instant(localWall: (today - 1) * 86_400, utcOffset)
        case "tomorrow": return instant(localWall: (today + 1) * 86_400, utcOffset)
        default: break
        }
        let words = word.split(whereSeparator: \.isWhitespace)
        if words.count == 2, words[1] == "ago", let age = parseDuration(String(words[0])) {
            return subtracting(now, age)
        }
        if words.count == 1 {
            if let age = parseDuration(word) { return subtracting(now, age) }
            if word.hasPrefix("-"), let age = parseDuration(String(word.dropFirst())) { return subtracting(now, age) }
            if word.hasPrefix("+"), let age = parseDuration(String(word.dropFirst())) { return adding(now, age) }
        }
        return parseDateTime(Array(text.utf8), today: today, utcOffset)
    }

    /// `YYYY-MM-DD`, `[YYYY-MM-DD(T| )]HH:MM[:SS[.fraction]]`, then an optional `Z`, `±HH:MM`,
    /// `±HHMM` or ` UTC`; without one, local time.
    static func parseDateTime(_ b: [UInt8], today: Int64, _ utcOffset: (Int64) -> Int64) -> Int64? {
        var i = 0
        func digits(_ count: Int) -> Int64? {
            guard i + count <= b.count else { return nil }
            var v: Int64 = 0
            for k in i..<i + count {
                guard b[k] >= 48 && b[k] <= 57 else { return nil }
                v = v * 10 + Int64(b[k] - 48)
            }
            i += count
            return v
        }
        func skip(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        var day = today
        let hasDate = b.count >= 10 && b[4] == UInt8(ascii: "-")
        if hasDate {
            guard let y = digits(4), skip("-"), let m = digits(2), skip("-"), let d = digits(2), (1...12).contains(m),
                (1...31).contains(d)
            else { return nil }
            day = days(year: y, month: m, day: d)
            // 2026-02-30 is not 2026-03-02.
            guard civil(fromDays: day) == (y, m, d) else { return nil }
            if i == b.count { return instant(localWall: day * 86_400, utcOffset) }
            guard skip("T") || skip("t") || skip(" ") else { return nil }
        }
        guard let h = digits(2), skip(":"), let mi = digits(2), h < 24, mi < 60 else { return nil }
        var s: Int64 = 0
        if skip(":") {
            guard let sec = digits(2), sec < 61 else { return nil }
            s = sec
            if skip(".") {
                let start = i
                while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
                guard i > start else { return nil }
            }
        }
        let wall = day * 86_400 + h * 3600 + mi * 60 + s
        if i == b.count { return instant(localWall: wall, utcOffset) }
        // An explicit zone: only with a date, as RFC 3339 has it.
        guard hasDate else { return nil }
        let rest = b[i...]
        if rest.elementsEqual("Z".utf8) || rest.elementsEqual("z".utf8) || rest.elementsEqual(" UTC".utf8)
            || rest.elementsEqual(" utc".utf8)
        {
            return wall
        }
        guard skip("+") || skip("-") else { return nil }
        let sign: Int64 = b[i - 1] == UInt8(ascii: "+") ? 1 : -1
        guard let oh = digits(2) else { return nil }
        _ = skip(":")
        guard let om = digits(2), i == b.count, oh < 24, om < 60 else { return nil }
        return wall - sign * (oh * 3600 + om * 60)
    }

    /// The UTC instant of a local wall-clock time (seconds since 1970-01-01T00:00 local): the offset
    /// is looked up near the answer and once more, which settles on either side of a clock change.
    static func instant(localWall wall: Int64, _ utcOffset: (Int64) -> Int64) -> Int64 {
        let first = subtracting(wall, utcOffset(wall))
        return subtracting(wall, utcOffset(first))
    }

    /// RFC 3339 in a zone `utcOffset` seconds east of UTC: `2026-11-30T12:45:00+05:30`, or `…Z` at 0.
    public static func rfc3339(_ seconds: Int64, utcOffset: Int64) -> String {
        let clamped = min(max(seconds, earliest), latest)
        let offset = min(max(utcOffset, -86_399), 86_399)
        let text = rfc3339(adding(clamped, offset))
        guard offset != 0 else { return text }
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let magnitude = abs(offset)
        let zone = (offset > 0 ? "+" : "-") + two(magnitude / 3600) + ":" + two(magnitude % 3600 / 60)
        return String(text.dropLast()) + zone
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : (a - (b - 1)) / b
    }
}
