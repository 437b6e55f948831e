import Foundation
import SyncCore
import Testing

/// `idp-sync watch` through the built binary, against slapd with the syncprov overlay and the Kong
/// test server. Every wait is a bounded poll; nothing is timed.
@Suite("watch: the binary against slapd (syncprov) and the Kong test server")
struct WatchCommandTests {
    /// One watch process with its output in files.
    final class Watcher: @unchecked Sendable {
        let pid: pid_t
        let log: String
        init(_ s: Scenario, extra: [String] = [], environment: [String: String] = [:]) throws {
            log = s.dir.path + "/watch-\(UUID().uuidString.prefix(8)).log"
            let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            let null = open("/dev/null", O_RDONLY)
            defer {
                close(fd)
                close(null)
            }
            pid = try spawn(
                Repo.binary, ["watch", "--config", s.config, "--log-level", "debug"] + extra, stdout: fd, stderr: fd,
                stdin: null, extraEnvironment: environment)
        }
        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func stop() async throws -> Int32? {
            kill(pid, SIGTERM)
            return try await exitStatus(of: pid, tries: 3000)
        }
    }

    static func syncprovScenario(_ policy: [String: String] = [:], extraConfig: String = "") throws -> Scenario {
        try Scenario(
            policy: policy, ldap: try SlapdServer(sizeLimit: nil, syncprov: true), extraConfig: extraConfig)
    }

    func records(_ s: Scenario) -> [JSONValue] {
        ((try? String(contentsOfFile: s.journal, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONParser.parse(String($0))
        }
    }

    /// Waits (bounded, 30 s) until `condition` holds.
    func until(_ what: String, _ watcher: Watcher? = nil, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<1500 {
            if try await condition() { return }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        Issue.record("timed out waiting for \(what)\n\(watcher?.output ?? "")")
    }

    func watching(_ s: Scenario, _ w: Watcher) async throws {
        try await until("the watch run", w) {
            records(s).contains { $0["event"] == "run-started" && $0["trigger"] == "watch" }
        }
    }

    func ldapModify(_ s: Scenario, _ ldif: String) throws {
        let r = try runProcess(
            "/usr/bin/ldapmodify", ["-x", "-H", s.ldap.url, "-D", "cn=admin,dc=example,dc=org", "-w", "admin-secret"],
            stdin: ldif)
        #expect(r.status == 0, "\(r.stderr)")
    }

    func deactivate(_ s: Scenario, _ uid: String) throws {
        try ldapModify(s, "dn: uid=\(uid),\(s.ldap.baseDN)\nchangetype: modify\nadd: employeeType\nemployeeType: left\n")
    }

    func blocked(_ s: Scenario, _ user: String) async throws -> Bool { try await s.plugins(user).count == 1 }

    @Test func aDeactivatedUsersConsumerIsBlockedAsTheChangeArrives() async throws {
        let s = try Self.syncprovScenario()
        try await s.seedDemo()
        let w = try Watcher(s)
        try await watching(s, w)
        #expect(try await !blocked(s, "alice"))
        try deactivate(s, "alice")
        try await until("alice blocked", w) { try await blocked(s, "alice") }
        #expect(try await w.stop() == 0, "\(w.output)")
        // The change is journaled in the watch run, as intent and outcome.
        let watchRun = records(s).last { $0["event"] == "run-started" && $0["trigger"] == "watch" }?["run"]
        let disable = records(s).filter { $0["action"] == "disable" && $0["run"] == watchRun }
        #expect(disable.map { $0["event"]?.stringValue ?? "" } == ["intent", "outcome"], "\(records(s))")
        #expect(records(s).last?["event"] == "run-finished")
    }

    /// The textfile carries the watch's own metrics beside the last full run's.
    @Test func theTextfileCarriesTheWatchMetrics() async throws {
        let metricsDir = TempDir()
        let path = metricsDir.path + "/idp-sync.prom"
        let s = try Self.syncprovScenario(extraConfig: "metrics:\n  textfile_path: \(path)\n")
        try await s.seedDemo()
        let w = try Watcher(s)
        try await watching(s, w)
        try deactivate(s, "alice")
        try await until("alice blocked", w) { try await blocked(s, "alice") }
        func sample(_ name: String) -> Double? {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        try await until("the events counter", w) { (sample("idp_sync_watch_events_total") ?? 0) >= 1 }
        #expect(sample("idp_sync_watch_connected") == 1)
        #expect((sample("idp_sync_watch_lag_seconds") ?? -1) >= 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains(#"idp_sync_actions_total{action="disable",gateway="demo",outcome="applied"} 3"#), "\(text)")
        #expect(try runProcess("/usr/bin/promtool", ["check", "metrics"], stdin: text).status == 0)
        #expect(try await w.stop() == 0)
    }

    /// slapd restarts mid-session: the feed reconnects and resumes; no change is lost and nothing
    /// is flagged that was not removed.
    @Test func slapdRestartedMidSessionLosesNothing() async throws {
        let s = try Self.syncprovScenario()
        try await s.seedDemo()
        let w = try Watcher(s)
        try await watching(s, w)
        try s.ldap.restart()
        try deactivate(s, "alice")
        try await until("alice blocked after the restart", w) { try await blocked(s, "alice") }
        // Only alice changed: nobody else got a new flag from the reconnect.
        let flagged = records(s).filter { $0["event"] == "intent" && $0["action"] == "flag" }
            .compactMap { $0["consumer"]?["username"]?.stringValue }
        #expect(Set(flagged).isSubset(of: ["alice", "frank", "carol", "dave"]), "\(flagged)")
        #expect(try await w.stop() == 0)
    }

    /// A change made while no watch ran is caught by the next session's startup reconciliation;
    /// a killed session (kill -9) is noted by the next one's `run-started`.
    @Test func aChangeWhileStoppedAndAKilledSessionAreCaughtOnRestart() async throws {
        let s = try Self.syncprovScenario()
        try await s.seedDemo()
        let first = try Watcher(s)
        try await watching(s, first)
        kill(first.pid, SIGKILL)
        _ = try await exitStatus(of: first.pid)
        try deactivate(s, "alice")
        let second = try Watcher(s)
        try await until("alice blocked by the startup reconciliation", second) { try await blocked(s, "alice") }
        let starts = records(s).filter { $0["event"] == "run-started" && $0["trigger"] == "watch-start" }
        #expect(starts.count == 2)
        #expect(starts.last?["previous_run_interrupted"] != nil, "\(starts.last ?? .null)")
        #expect(try await second.stop() == 0)
    }

    /// The gateway down for a while: the write fails and is journaled as failed; the next tick reads,
    /// plans and writes again once the gateway is back.
    @Test func aGatewayDownForAWhileIsCaughtUpOnTheNextTick() async throws {
        let s = try Self.syncprovScenario(extraConfig: "watch:\n  tick: 1s\n")
        try await s.seedDemo()
        let w = try Watcher(s)
        try await watching(s, w)
        _ = try await s.kong.control(
            "POST", "/__test/faults", #"{"rules": [{"method": "POST", "path_regex": "/plugins$", "status": 500, "times": 4}]}"#)
        try deactivate(s, "alice")
        try await until("a failed outcome", w) {
            records(s).contains { $0["event"] == "outcome" && $0["outcome"] == "failed" && $0["action"] == "disable" }
        }
        try await until("alice blocked once the gateway is back", w) { try await blocked(s, "alice") }
        #expect(try await w.stop() == 0)
    }

    /// The brake as an hourly rate: past it the watch journals run-refused (brake-rate) and exits 3.
    @Test func theHourlyBrakeStopsTheWatchWithThree() async throws {
        let s = try Self.syncprovScenario(extraConfig: "watch:\n  max_disable_per_hour: 2\n")
        try await s.seedDemo()
        let w = try Watcher(s)
        try await watching(s, w)  // carol and dave were disabled at start: 2 in the last hour
        try deactivate(s, "alice")
        #expect(try await exitStatus(of: w.pid, tries: 1500) == 3, "\(w.output)")
        #expect(records(s).last?["cause"] == "brake-rate", "\(records(s).last ?? .null)")
        #expect(try await !blocked(s, "alice"))
    }

    /// systemd: READY=1 once the startup reconciliation is done, then WATCHDOG=1 pings.
    @Test func readyAndWatchdogReachTheNotifySocket() async throws {
        let s = try Self.syncprovScenario()
        try await s.seedDemo()
        let path = s.dir.path + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let w = try Watcher(s, environment: ["NOTIFY_SOCKET": path])
        var messages: [String] = []
        try await until("READY=1 and a watchdog ping", w) {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { messages.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
            return messages.contains("READY=1") && messages.contains("WATCHDOG=1")
        }
        // READY comes after the startup reconciliation's run-finished.
        #expect(records(s).contains { $0["event"] == "run-finished" })
        #expect(messages.firstIndex(of: "READY=1")! < messages.firstIndex(of: "WATCHDOG=1")!)
        #expect(try await w.stop() == 0)
    }

    @Test func scimHasNoWatch() async throws {
        let s = try Scenario()
        let text = try String(contentsOfFile: s.config, encoding: .utf8)
        let start = try #require(text.range(of: "source:\n")), end = try #require(text.range(of: "gateways:\n"))
        let scim = "source:\n  type: scim\n  url: http://127.0.0.1:9/scim/v2\n  token: t\n"
        try String(text[..<start.lowerBound] + scim + text[end.lowerBound...]).write(toFile: s.config, atomically: true, encoding: .utf8)
        let r = try runProcess(Repo.binary, ["watch", "--config", s.config])
        #expect(r.status == 1)
        #expect(r.stderr.contains("watch is not available with a scim source"), "\(r.stderr)")
    }
}
