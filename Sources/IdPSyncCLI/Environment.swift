#if canImport(Glibc)
import Glibc
#endif
import SyncCore
import SyncJournal

/// Process environment, host and clock: the only impure lookups of the CLI.
enum Environment {
    static var all: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }

    static var hostname: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return String(cString: buffer)
    }

    /// Wall clock with sub-second precision, for durations and metrics.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func unixNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

/// Writes to standard error without touching C's shared `stderr` stream.
enum Console {
    /// Every control character but the line breaks the caller wrote is escaped (TextEscape), so a
    /// server's message cannot move the cursor or recolour the operator's terminal.
    static func error(_ text: String, after control: String = "") {
        let safe = text.split(separator: "\n", omittingEmptySubsequences: false).map { TextEscape.visible(String($0)) }
            .joined(separator: "\n")
        try? writeAll(2, Array((control + safe).utf8))
    }

    /// Clears the progress line on a terminal: a control sequence of ours, written as it is.
    static let eraseLine = "\r\u{1B}[K"
}
