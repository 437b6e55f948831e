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
            // Bytes folded to lowercase; a non-ASCII byte gives up before it is compared, and a verdict
            // reached on ASCII bytes alone is the one the Unicode path would reach.
            let ascii = text.withUTF8 { t in
                Self.match(bytes, count: t.count, wildcard: UInt8(ascii: "*"), single: UInt8(ascii: "?")) { i in
                    t[i] < 0x80 ? (t[i] &- 65 < 26 ? t[i] + 32 : t[i]) : nil
                }
            }
            if let ascii { return ascii }
        }
        let t = Array(text.lowercased())
        return Self.match(chars, count: t.count, wildcard: "*", single: "?") { t[$0] } ?? false
    }

    /// Shell wildcard matching, backtracking to the last `*`. `text(i)` yields the i-th element, or
    /// nil to give up (the result is then nil).
    @inline(__always)
    private static func match<T: Equatable>(
        _ p: [T], count: Int, wildcard: T, single: T, text: (Int) -> T?
    ) -> Bool? {
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < count {
            guard let c = text(ti) else { return nil }
            if pi < p.count && (p[pi] == single || p[pi] == c) {
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
