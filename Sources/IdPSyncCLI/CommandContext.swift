import Logging
import SyncConfig
import SyncCore
import SyncEngine

#if canImport(Glibc)
import Glibc
#endif

/// Everything a command takes from the world outside its arguments: where its output goes, the
/// clock, the adapters, the stop signal. `run()` passes `.live`; tests pass their own (memory twins,
/// a captured output), so each command's logic is testable without a process (swiftly's pattern).
struct CommandContext: Sendable {
    /// Standard output (the report, the explanation).
    var output: @Sendable (String) -> Void
    /// Standard error (`error:` lines), escaped like every terminal output.
    var errors: @Sendable (String) -> Void
    /// Wall clock with sub-second precision.
    var now: @Sendable () -> Double
    var source: @Sendable (SyncConfiguration, Logger) -> any DirectorySource
    var gateways: @Sendable (SyncConfiguration, Logger) -> [any Gateway]
    /// True once SIGTERM or SIGINT arrived.
    var shouldStop: @Sendable () -> Bool
    /// Colours in the text report.
    var color: Bool
    /// Columns the text report fits in: the terminal's, at most 120.
    var width = 120

    /// The process's own world; colour and width follow standard output and `--color`.
    static func live(_ log: LogOptions) -> CommandContext {
        CommandContext(
            output: { text in print(text, terminator: "") }, errors: { Console.error($0) }, now: { Environment.now() },
            source: { LiveAdapters.source($0, logger: $1) }, gateways: { LiveAdapters.gateways($0, logger: $1) },
            shouldStop: { StopSignal.requested }, color: Terminal.wantsColor(fd: 1, log.color),
            width: min(120, Terminal.columns(fd: 1) ?? 120))
    }

    func line(_ text: String) { output(text + "\n") }

    /// The text report's layout for this context; suggested commands repeat the config's path.
    func reportStyle(_ options: ConfigOptions) -> ReportStyle {
        ReportStyle(color: color, width: width, configArguments: options.arguments, now: Int64(now()))
    }
}
