import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Structured logs on stderr for journald: `level=info msg="…" sync.run=…` (logfmt).
///
/// Callers never put secrets in messages or metadata; this handler adds nothing of its own.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = "level=\(event.level) msg=\(Self.quote("\(event.message)"))"
        for key in merged.keys.sorted() { line += " \(key)=\(Self.quote("\(merged[key]!)"))" }
        line += "\n"
        Console.error(line)
    }

    static func quote(_ value: String) -> String {
        let needs = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }
        guard needs else { return value }
        var out = "\""
        for c in value {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}

enum Logs {
    nonisolated(unsafe) static var bootstrapped = false

    /// Bootstraps swift-log once per process, at the chosen level.
    static func logger(level: LogLevelOption) -> Logger {
        let chosen = Logger.Level(rawValue: level.rawValue) ?? .info
        if !bootstrapped {
            bootstrapped = true
            LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: chosen) }
        }
        var logger = Logger(label: "idp-sync")
        logger.logLevel = chosen
        return logger
    }
}
