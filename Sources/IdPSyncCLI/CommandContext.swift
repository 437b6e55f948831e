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

    static var live: CommandContext {
        CommandContext(
            output: { text in print(text, terminator: "") }, errors: { Console.error($0) }, now: { Environment.now() },
            source: { LiveAdapters.source($0, logger: $1) }, gateways: { LiveAdapters.gateways($0, logger: $1) },
            shouldStop: { StopSignal.requested }, color: isatty(1) == 1)
    }

    func line(_ text: String) { output(text + "\n") }
}
