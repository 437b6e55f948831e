/// Case-insensitive shell-style globs (`*`, `?`) as used by `policy.protected`.
///
/// ASCII patterns and texts are matched on bytes without allocating (the planner tests every
/// consumer); anything else falls back to Unicode-aware lowercasing.
public struct Glob: Hashable, Sendable {
    public let pattern: String
    private let bytes: [UInt8]?
    private let chars: [Character]

    public init(_ pattern: String) {
        self.pattern = pattern
        let lower = pattern.lowercased()
        self.chars = Array(lower)
        self.bytes = lower.utf8.allSatisfy { $0 < 0x80 } ? Array(lower.utf8) : nil
    }

    public func matches(_ text: String) -> Bool {
        if let bytes {
            var text = text
            if let result = text.withUTF8({ Self.matchASCII(bytes, $0) }) { return result }
        }
        return Self.match(chars, Array(text.lowercased()), wildcard: "*", single: "?")
    }

    /// nil when the text is not ASCII (noticed lazily: most patterns fail on the first bytes).
    private static func matchASCII(_ p: [UInt8], _ t: UnsafeBufferPointer<UInt8>) -> Bool? {
        // Returns nil as soon as a non-ASCII byte is compared; a verdict reached on ASCII bytes alone
        // is the same one the Unicode path would reach.
        matchBytes(p, t) { c in c &- 65 < 26 ? c + 32 : c }
    }

    private static func matchBytes(_ p: [UInt8], _ t: UnsafeBufferPointer<UInt8>, _ lower: (UInt8) -> UInt8) -> Bool? {
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if t[ti] >= 0x80 { return nil }
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == lower(t[ti])) {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    private static func match<T: Equatable>(_ p: [T], _ t: [T], wildcard: T, single: T) -> Bool {
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == single || p[pi] == t[ti]) {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == wildcard {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == wildcard { pi += 1 }
        return pi == p.count
    }
}
