import ArgumentParser
import Logging
import SyncCore

#if canImport(Glibc)
import Glibc
#endif

/// Structured logs on stderr for journald: logfmt (`level=info msg="…" sync.run=…`), JSON lines, or
/// text for people. On a terminal each line first clears the progress line.
///
/// Callers never put secrets in messages or metadata; this handler adds nothing of its own.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    let format: LogFormat

    init(label: String, level: Logger.Level, format: LogFormat) {
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
        let time = TimeFormat.rfc3339(Environment.unixNow())
        var line: String
        switch format {
        case .logfmt:
            line = "time=\(time) level=\(event.level) msg=\(Self.quote("\(event.message)"))"
            for key in merged.keys.sorted() { line += " \(TextEscape.visible(key))=\(Self.quote("\(merged[key]!)"))" }
        case .json:
            var object: [String: JSONValue] = [
                "time": .string(time), "level": .string("\(event.level)"), "msg": .string("\(event.message)"),
            ]
            for (key, value) in merged { object[key] = .string("\(value)") }
            line = JSONValue.object(object).canonical
        case .text:
            line = "\(time) \(String(describing: event.level).uppercased()) \(TextEscape.visible("\(event.message)"))"
            for key in merged.keys.sorted() where key != "sync.run" {
                line += " \(TextEscape.visible(key))=\(Self.quote("\(merged[key]!)"))"
            }
        }
        Console.error((Progress.isTerminal ? "\r\u{1B}[K" : "") + line + "\n")
    }

    /// logfmt quoting through the one escaper: no control character (CR LF included) reaches the line.
    static func quote(_ value: String) -> String { TextEscape.logfmt(value) }
}

enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case logfmt, json, text
}

/// `--log-level` and `--log-format`, shared by every command that talks to servers.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelOption = .info

    @Option(name: .long, help: "logfmt (default, for journald), json or text.")
    var logFormat: LogFormat = .logfmt

    func logger() -> Logger { Logs.logger(level: logLevel, format: logFormat) }
}

enum Logs {
    nonisolated(unsafe) static var bootstrapped = false

    /// Bootstraps swift-log once per process, at the chosen level.
    static func logger(level: LogLevelOption, format: LogFormat = .logfmt) -> Logger {
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
