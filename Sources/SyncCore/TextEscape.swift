/// The one escaper for text that reaches a terminal, a log line or a report (logfmt, JSON-less
/// text views, the plan, the journal's text view).
///
/// Every control character (C0, DEL, C1) and the Unicode line and paragraph separators become a
/// visible escape, so a value from a directory, a gateway or a file can neither start a new line
/// (forging a log record such as `journal.head=…`) nor send escape sequences to a terminal.
/// It works on Unicode scalars, not Characters: `\r\n` is one Character but two controls.
public enum TextEscape {
    /// `value` with every control character escaped (`\n`, `\r`, `\t`, `\\`, else `\u{1b}`).
    /// Backslashes are doubled only when `escapeBackslash` is set (logfmt's quoted values).
    public static func visible(_ value: String, escapeBackslash: Bool = false, escapeQuote: Bool = false) -> String {
        guard value.unicodeScalars.contains(where: { needsEscape($0) || (escapeBackslash && $0 == "\\") || (escapeQuote && $0 == "\"") })
        else { return value }
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\\" where escapeBackslash: out.append(contentsOf: "\\\\".unicodeScalars)
            case "\"" where escapeQuote: out.append(contentsOf: "\\\"".unicodeScalars)
            default:
                if needsEscape(scalar) {
                    out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
                } else {
                    out.append(scalar)
                }
            }
        }
        return String(out)
    }

    /// A logfmt value: bare when it is safe, else quoted with `"` and `\` escaped; never a raw control.
    public static func logfmt(_ value: String) -> String {
        let bare = !value.isEmpty && !value.unicodeScalars.contains {
            $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || needsEscape($0)
        }
        return bare ? value : "\"" + visible(value, escapeBackslash: true, escapeQuote: true) + "\""
    }

    /// C0 controls, DEL, C1 controls, U+2028 and U+2029.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029
    }

    /// At most `limit` characters of `value`, escaped, with `…` when it was cut.
    public static func bounded(_ value: String, limit: Int = 200) -> String {
        let cut = value.count > limit ? String(value.prefix(limit)) + "…" : value
        return visible(cut)
    }
}
