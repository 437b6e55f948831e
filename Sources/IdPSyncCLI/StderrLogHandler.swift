import ArgumentParser
import Logging
import SyncCore

#if canImport(Glibc)
import Glibc
#endif

/// Structured logs on stderr: logfmt (`level=info msg="…" sync.run=…`), journald (logfmt without the
/// time, each line prefixed with its syslog priority `<6>` as sd-daemon(3) describes), JSON lines
/// (numbers as numbers) or text for people. On a terminal each line first clears the progress line.
///
/// Callers never put secrets in messages or metadata; this handler adds nothing of its own.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    let format: LogFormat.Resolved

    init(label: String, level: Logger.Level, format: LogFormat.Resolved) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Self.render(
            level: event.level, message: "\(event.message)", metadata: merged, format: format,
            time: TimeFormat.rfc3339(Environment.unixNow()))
        Console.error(line + "\n", after: Progress.enabled ? Console.eraseLine : "")
    }

    /// One log line (pure, for tests).
    static func render(
        level: Logger.Level, message: String, metadata: Logger.Metadata, format: LogFormat.Resolved, time: String
    ) -> String {
        var line: String
        switch format {
        case .logfmt, .journald:
            line = format == .journald ? "<\(priority(level))>" : "time=\(time) "
            line += "level=\(level) msg=\(quote(message))"
            for key in metadata.keys.sorted() { line += " \(TextEscape.visible(key))=\(quote("\(metadata[key]!)"))" }
        case .json:
            var object: [String: JSONValue] = [
                "time": .string(time), "level": .string("\(level)"), "msg": .string(message),
            ]
            for (key, value) in metadata { object[key] = json(value) }
            line = JSONValue.object(object).canonical
        case .text:
            line = "\(time) \(String(describing: level).uppercased()) \(TextEscape.visible(message))"
            for key in metadata.keys.sorted() where key != "sync.run" {
                line += " \(TextEscape.visible(key))=\(quote("\(metadata[key]!)"))"
            }
        }
        return line
    }

    /// syslog priorities (sd-daemon(3)): journald files the line under it, so `journalctl -p err` works.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A metadata value as JSON: numbers and booleans given as such stay numbers and booleans.
    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let v):
            switch v {
            case let i as Int: return .int(Int64(i))
            case let i as Int64: return .int(i)
            case let d as Double: return d.isFinite ? .double(d) : .string("\(d)")
            case let b as Bool: return .bool(b)
            default: return .string("\(v)")
            }
        case .array(let items): return .array(items.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }

    /// logfmt quoting through the one escaper: no control character (CR LF included) reaches the line.
    static func quote(_ value: String) -> String { TextEscape.logfmt(value) }
}

enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case auto, logfmt, journald, json, text

    enum Resolved: Equatable { case logfmt, journald, json, text }

    /// `auto` is journald when stderr is the stream systemd named in `$JOURNAL_STREAM`, else logfmt.
    func resolved(journalStream: String?, stderrIdentity: (device: UInt64, inode: UInt64)?) -> Resolved {
        switch self {
        case .logfmt: return .logfmt
        case .journald: return .journald
        case .json: return .json
        case .text: return .text
        case .auto:
            guard let journalStream, let stderrIdentity else { return .logfmt }
            let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .logfmt }
            return device == stderrIdentity.device && inode == stderrIdentity.inode ? .journald : .logfmt
        }
    }
}

/// `--log-level`, `--log-format` and `--color`, shared by every command that talks to servers.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelOption = .info

    @Option(
        name: .long,
        help: "auto (journald under systemd, else logfmt), logfmt, journald (syslog priority prefixes), json or text.")
    var logFormat: LogFormat = .auto

    @Option(name: .long, help: "auto (colour on a terminal unless NO_COLOR is set or TERM=dumb), always or never.")
    var color: ColorChoice = .auto

    func logger() -> Logger {
        Progress.enabled = Terminal.wantsProgress(color: color)
        return Logs.logger(level: logLevel, format: logFormat.resolved(
            journalStream: Environment.all["JOURNAL_STREAM"], stderrIdentity: Terminal.identity(of: 2)))
    }
}

enum Logs {
    nonisolated(unsafe) static var bootstrapped = false

    /// Bootstraps swift-log once per process, at the chosen level.
    static func logger(level: LogLevelOption, format: LogFormat.Resolved = .logfmt) -> Logger {
        let chosen = Logger.Level(rawValue: level.rawValue) ?? .info
        if !bootstrapped {
            bootstrapped = true
            LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: chosen, format: format) }
        }
        var logger = Logger(label: "idp-sync")
        logger.logLevel = chosen
        return logger
    }
}
