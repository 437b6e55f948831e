import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// One updating line of progress on stderr, only when stderr is a terminal that wants it.
enum Progress {
    /// Set once from the options before any work starts (`LogOptions.logger()`).
    nonisolated(unsafe) static var enabled = false

    /// A sink for adapters; nil when progress is off, so they skip the work.
    static var sink: (@Sendable (String) -> Void)? {
        guard enabled else { return nil }
        return { text in Console.error(text, after: Console.eraseLine) }
    }

    static func clear() {
        if enabled { Console.error("", after: Console.eraseLine) }
    }
}

enum ColorChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never
}

/// What a terminal wants: colour, progress, width. `NO_COLOR` (no-color.org) and `TERM=dumb` turn
/// `auto` off; `--color always` and `never` win over both.
enum Terminal {
    static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Colour on this descriptor (pure given its inputs; `wantsColor(fd:)` reads the process's).
    static func wantsColor(_ choice: ColorChoice, isTerminal: Bool, environment: [String: String]) -> Bool {
        switch choice {
        case .always: return true
        case .never: return false
        case .auto:
            if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return false }
            return isTerminal && !isDumb(environment)
        }
    }

    static func wantsColor(fd: Int32, _ choice: ColorChoice) -> Bool {
        wantsColor(choice, isTerminal: isTerminal(fd), environment: Environment.all)
    }

    /// The `\r` progress line: only on a terminal that can erase a line, and never with `--color never`.
    static func wantsProgress(color: ColorChoice) -> Bool {
        color != .never && isTerminal(2) && !isDumb(Environment.all)
    }

    static func isDumb(_ environment: [String: String]) -> Bool {
        let term = environment["TERM"] ?? ""
        return term.isEmpty || term == "dumb"
    }

    /// Columns of the terminal on this descriptor, or nil when it is not one.
    static func columns(fd: Int32) -> Int? {
        guard isTerminal(fd) else { return nil }
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Device and inode of a descriptor (to recognise the stream `$JOURNAL_STREAM` names).
    static func identity(of fd: Int32) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }
}
