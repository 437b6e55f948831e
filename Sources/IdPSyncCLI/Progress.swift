#if canImport(Glibc)
import Glibc
#endif

/// One updating line of progress on stderr, only when stderr is a terminal.
enum Progress {
    static let isTerminal = isatty(2) == 1

    /// A sink for adapters; nil when stderr is not a terminal, so they skip the work.
    static var sink: (@Sendable (String) -> Void)? {
        guard isTerminal else { return nil }
        return { text in Console.error("\r\u{1B}[K" + text) }
    }

    static func clear() {
        if isTerminal { Console.error("\r\u{1B}[K") }
    }
}
