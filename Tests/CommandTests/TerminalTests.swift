import Logging
import SyncCore
import SyncEngine
import Testing

@testable import IdPSyncCLI

/// The pure decisions behind colour, log formats and suggested commands.
@Suite("Terminal, log format and shell quoting decisions")
struct TerminalTests {
    @Test(arguments: [
        // choice, terminal, NO_COLOR, TERM, colour?
        (ColorChoice.auto, true, nil, "xterm", true),
        (.auto, false, nil, "xterm", false),
        (.auto, true, "1", "xterm", false),
        (.auto, true, "", "xterm", true),  // an empty NO_COLOR does not count (no-color.org)
        (.auto, true, nil, "dumb", false),
        (.auto, true, nil, nil, false),
        (.always, false, "1", "dumb", true),
        (.never, true, nil, "xterm", false),
    ] as [(ColorChoice, Bool, String?, String?, Bool)])
    func colour(_ choice: ColorChoice, _ terminal: Bool, _ noColor: String?, _ term: String?, _ expected: Bool) {
        var environment: [String: String] = [:]
        environment["NO_COLOR"] = noColor
        environment["TERM"] = term
        #expect(Terminal.wantsColor(choice, isTerminal: terminal, environment: environment) == expected)
    }

    @Test(arguments: [
        (LogFormat.auto, "12:34", true, LogFormat.Resolved.journald),
        (.auto, "12:35", true, .logfmt),  // another stream (stderr redirected elsewhere)
        (.auto, nil, true, .logfmt),
        (.auto, "12", true, .logfmt),
        (.auto, "x:y", true, .logfmt),
        (.auto, "12:34", false, .logfmt),
        (.json, "12:34", true, .json),
        (.journald, nil, false, .journald),
    ] as [(LogFormat, String?, Bool, LogFormat.Resolved)])
    func logFormat(_ format: LogFormat, _ stream: String?, _ known: Bool, _ expected: LogFormat.Resolved) {
        #expect(format.resolved(journalStream: stream, stderrIdentity: known ? (12, 34) : nil) == expected)
    }

    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func journaldPriority(_ level: Logger.Level, _ priority: Int) {
        let line = StderrLogHandler.render(level: level, message: "m", metadata: [:], format: .journald, time: "T")
        #expect(line == "<\(priority)>level=\(level) msg=m")
    }

    @Test func jsonKeepsTypes() throws {
        let line = StderrLogHandler.render(
            level: .info, message: "m",
            metadata: [
                "n": .stringConvertible(6), "d": .stringConvertible(1.5), "b": .stringConvertible(true), "s": "6",
                "inf": .stringConvertible(Double.infinity),
            ], format: .json, time: "T")
        let json = try JSONParser.parse(line)
        #expect(json["n"] == .int(6))
        #expect(json["d"] == .double(1.5))
        #expect(json["b"] == .bool(true))
        #expect(json["s"] == .string("6"))
        #expect(json["inf"] == .string("inf"))
    }

    @Test(arguments: [
        ("plain/path-1.yaml", "plain/path-1.yaml"),
        ("/etc/my configs/x.yaml", "'/etc/my configs/x.yaml'"),
        ("it's", "'it'\\''s'"),
        ("$(rm -rf /)", "'$(rm -rf /)'"),
        ("", "''"),
    ])
    func shellQuoting(_ word: String, _ quoted: String) {
        #expect(ShellWords.quote(word) == quoted)
    }

    @Test(arguments: [
        (nil, nil, "/etc/idp-sync/config.yaml", [String]()),
        ("/a.yaml", nil, "/a.yaml", ["--config", "/a.yaml"]),
        (nil, "/env.yaml", "/env.yaml", ["--config", "/env.yaml"]),
        ("/a.yaml", "/env.yaml", "/a.yaml", ["--config", "/a.yaml"]),
        (nil, "", "/etc/idp-sync/config.yaml", []),
    ] as [(String?, String?, String, [String])])
    func defaultConfig(_ given: String?, _ environment: String?, _ path: String, _ arguments: [String]) {
        #expect(ConfigOptions.resolve(given, environment: environment.map { ["IDP_SYNC_CONFIG": $0] } ?? [:]) == path)
        if environment == nil {
            var options = ConfigOptions()
            options.config = given
            #expect(options.arguments == arguments || ProcessEnvironmentHasConfig.value)
        }
    }
}

/// The test process's own IDP_SYNC_CONFIG would change `arguments`; the table assumes it unset.
enum ProcessEnvironmentHasConfig {
    static let value = Environment.all["IDP_SYNC_CONFIG"].map { !$0.isEmpty } ?? false
}
