import Foundation
import SyncCore
import Testing

/// Parses the JSON report and the journal of a refused run.
struct Refused {
    var status: Int32
    var report: JSONValue
    var journal: [JSONValue]
}

extension Scenario {
    func records() throws -> [JSONValue] {
        guard let text = try? String(contentsOfFile: journal, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    /// Runs `sync --output json` and checks that nothing was written to the gateway.
    func refusedRun(_ extra: [String] = []) async throws -> Refused {
        try await kong.resetStats()
        let r = try sync(["--output", "json"] + extra)
        let report = try JSONParser.parse(r.stdout)
        #expect(try await writes() == 0, "a refused run wrote to the gateway")
        return Refused(status: r.status, report: report, journal: try records())
    }
}

/// A misbehaving TCP front for slapd (`Fixtures/ldap/tcp_fault_proxy.py`).
final class FaultProxy: @unchecked Sendable {
    let dir = TempDir()
    var pid: pid_t = 0
    var port = 0

    init(_ arguments: [String]) throws {
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        pid = try spawn(
            "python3", [Repo.fixture("ldap/tcp_fault_proxy.py"), "--port-file", dir.path + "/port"] + arguments,
            stdout: null, stderr: null, stdin: null)
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: dir.path + "/port", encoding: .utf8), let p = Int(text) {
                port = p
                return
            }
            usleep(25_000)
        }
        throw FixtureError(description: "the fault proxy did not start")
    }

    deinit {
        kill(pid, SIGKILL)
        _ = waitFor(pid)
    }
}

@Suite("Fail-closed source: every incomplete read stops the run before any write (exit 4)")
struct SourceGateTests {
    func expectSourceRefusal(_ s: Scenario, cause: String = "source-error", detail: String) async throws {
        try await s.seedDemo()
        let run = try await s.refusedRun()
        #expect(run.status == 4, "\(run.report.canonical)")
        #expect(run.report["exit_code"] == .int(4))
        #expect(run.report["refused"]?["cause"] == .string(cause))
        let text = run.report["refused"]?["detail"]?.stringValue ?? ""
        #expect(text.contains(detail), "detail was: \(text)")
        #expect(run.journal.map { $0["event"]?.stringValue ?? "" } == ["run-started", "run-refused"])
        #expect(run.journal.last?["cause"] == .string(cause))
    }

    @Test func connectionRefused() async throws {
        let s = try Scenario(source: ["url": "ldap://127.0.0.1:1"])
        try await expectSourceRefusal(s, detail: "Can't contact LDAP server")
    }

    @Test func aServerThatNeverAnswers() async throws {
        let proxy = try FaultProxy(["--blackhole"])
        let s = try Scenario(source: ["url": "ldap://127.0.0.1:\(proxy.port)", "timeout": "2s"])
        try await expectSourceRefusal(s, detail: "ldap://127.0.0.1:\(proxy.port)")
    }

    @Test func theConnectionDropsInTheMiddleOfPaging() async throws {
        let ldap = try SlapdServer(users: 300)
        let upstream = ldap.url.replacingOccurrences(of: "ldap://", with: "")
        let proxy = try FaultProxy(["--upstream", upstream, "--cut-after", "6000"])
        let s = try Scenario(source: ["url": "ldap://127.0.0.1:\(proxy.port)"], ldap: ldap)
        try await expectSourceRefusal(s, detail: "page")
    }

    @Test func aWrongBindPassword() async throws {
        let s = try Scenario()
        _ = s.dir.write("bind-password", "not-the-password\n")
        try await expectSourceRefusal(s, detail: "Invalid credentials")
    }

    @Test func aSizeLimitHitInTheMiddleOfPaging() async throws {
        let ldap = try SlapdServer(users: 100, pagedTotalLimit: 30)
        let s = try Scenario(ldap: ldap)
        try await expectSourceRefusal(s, detail: "result 4")
    }

    @Test func aPageLargerThanTheServerAllows() async throws {
        let ldap = try SlapdServer(users: 100, pageSizeLimit: 5)
        let s = try Scenario(ldap: ldap)
        try await expectSourceRefusal(s, detail: "result 11")
    }

    @Test func aContinuationReference() async throws {
        let ldap = try SlapdServer(extraLDIF: [Repo.fixture("ldap/referral.ldif")])
        let s = try Scenario(ldap: ldap)
        try await expectSourceRefusal(s, detail: "continuation reference")
    }

    @Test func duplicateIDs() async throws {
        let ldap = try SlapdServer(users: 20, leftEvery: 2)
        let s = try Scenario(source: ["id_attribute": "employeeType", "filter": "(employeeType=*)"], ldap: ldap)
        try await expectSourceRefusal(s, detail: "share employeeType")
    }

    @Test func anEmptyOU() async throws {
        let s = try Scenario(source: ["base_dn": "ou=system,dc=example,dc=org"])
        try await expectSourceRefusal(s, cause: "min-users", detail: "0 users")
    }

    @Test func fewerThanMinUsers() async throws {
        let s = try Scenario(policy: ["min_users": "1000"])
        try await expectSourceRefusal(s, cause: "min-users", detail: "fewer than policy.min_users 1000")
    }

    @Test func aShrinkIsRefusedUntilAccepted() async throws {
        let s = try Scenario(users: 40)
        try await s.seedDemo()
        #expect(try s.sync().status == 0)  // 46 users, recorded as the last good run
        let config = try String(contentsOfFile: s.config, encoding: .utf8)
        try config.replacingOccurrences(of: "  page_size: 20", with: "  page_size: 20\n  filter: (uid=user00000*)")
            .write(toFile: s.config, atomically: true, encoding: .utf8)
        let run = try await s.refusedRun()
        #expect(run.status == 4)
        #expect(run.report["refused"]?["cause"] == "shrink", "\(run.report.canonical.prefix(600))")
        #expect(run.report["refused"]?["detail"]?.stringValue?.contains("--accept-users 9") == true)
        #expect(try s.sync(["--accept-users", "8"]).status == 4)
        let accepted = try s.sync(["--accept-users", "9"])
        #expect(accepted.status == 0, "\(accepted.stdout)")
    }
}

@Suite("Brakes, accepted plans, exit codes")
struct BrakeTests {
    /// 12 consumers whose users are gone, grace 0: 12 disables planned.
    func scenario(maxDisable: Int = 10) async throws -> Scenario {
        let s = try Scenario(policy: ["grace_period": "0s", "max_disable": "\(maxDisable)", "max_disable_percent": "100"])
        try await s.kong.control(
            "POST", "/__test/generate",
            #"{"count": 12, "tags": ["idp-managed"], "username_prefix": "gone", "keys_per_consumer": 1}"#)
        return s
    }

    @Test func tooManyDisablesAreRefusedAndTheHashAcceptsExactlyThatPlan() async throws {
        let s = try await scenario()
        let dry = try s.sync(["--dry-run"])
        #expect(dry.status == 3)
        #expect(dry.stdout.contains("brake-count"))
        let run = try await s.refusedRun()
        #expect(run.status == 3)
        #expect(run.report["refused"]?["cause"] == "brake-count")
        let hash = try #require(run.report["plan_hash"]?.stringValue)
        #expect(run.journal.last?["event"] == "run-refused")
        #expect(run.journal.last?["plan_hash"] == .string(hash))

        let wrong = try await s.refusedRun(["--accept-plan", String(repeating: "0", count: 64)])
        #expect(wrong.status == 3)
        #expect(wrong.report["refused"]?["cause"] == "plan-mismatch")

        let text = try s.sync()
        #expect(text.stdout.contains("--accept-plan \(hash)"))
        let accepted = try s.sync(["--accept-plan", hash])
        #expect(accepted.status == 0, "\(accepted.stdout)")
        #expect(try await s.kong.stats()["by_route"]?["POST /consumers/{consumer}/plugins"] == .int(12))
    }

    @Test func thePercentBrake() async throws {
        let s = try Scenario(policy: ["grace_period": "0s", "max_disable": "100", "max_disable_percent": "10"])
        try await s.seedDemo()  // carol, dave (deactivated) and frank (missing): 3 of 5 managed
        let run = try await s.refusedRun()
        #expect(run.status == 3)
        #expect(run.report["refused"]?["cause"] == "brake-percent")
    }

    @Test func aConflictExitsOneWhileEverythingElseApplies() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        try await s.kong.seed([
            "consumers": [
                ["username": "gina", "custom_id": .string(DemoUsers.carol.replacingOccurrences(of: "8a31", with: "9a31")),
                 "tags": ["idp-managed", "idp-sync:disabled"],
                 "plugins": [["name": "request-termination", "config": ["status_code": 503], "enabled": false]]],
                ["username": "hank", "custom_id": "12121212-2222-3333-4444-555555555555",
                 "tags": ["idp-managed", "idp-sync:disabled"],
                 "plugins": [["name": "request-termination", "config": ["status_code": 403, "message": "left"]]]],
            ]
        ])
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 1)
        let report = try JSONParser.parse(r.stdout)
        #expect(report["counts"]?["conflict"] == .int(1))
        #expect(report["counts"]?["blocked"] == .int(1))
        #expect(report["counts"]?["disable"] == .int(2))
        #expect(report["errors"]?.arrayValue?.first?.stringValue?.contains("gina") == true)
        #expect(try await s.plugins("carol").count == 1)
    }
}

@Suite("Locks, partial failures, crashes, signals, full disks")
struct FailureTests {
    @Test func aSecondRunExitsOneNamingTheHolderAndAKilledHolderNeverBlocks() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let holder = try spawn(
            "python3",
            ["-c", "import fcntl,os,sys,time; f=open(sys.argv[1],'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
                + "f.truncate(0); f.write(str(os.getpid())+'\\n'); f.flush(); open(sys.argv[1]+'.ready','w'); time.sleep(60)",
             s.journal + ".lock"], stdout: null, stderr: null, stdin: null)
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: s.journal + ".lock.ready") { usleep(25_000) }
        let blocked = try s.sync()
        #expect(blocked.status == 1)
        #expect(blocked.stderr.contains("pid \(holder)"))
        #expect(try await s.writes() == 0)
        #expect(try s.sync(["--dry-run"]).status == 0)  // dry runs take no lock
        kill(holder, SIGKILL)
        _ = waitFor(holder)
        let after = try s.sync()
        #expect(after.status == 0, "\(after.stderr)")
        #expect(FileManager.default.fileExists(atPath: s.journal + ".lock"))
    }

    @Test func failedWritesAreJournaledTheRestApplyAndTheNextRunConverges() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let frank = s.consumers["frank"]!
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "PATCH", "path_regex": "^/consumers/\#(frank)$", "status": 500, "body": {"message": "An unexpected error occurred"}}]}"#)
        let first = try s.sync(["--output", "json"])
        #expect(first.status == 1)
        let outcomes = try s.records().filter { $0["event"] == "outcome" }
        #expect(outcomes.filter { $0["outcome"] == "applied" }.count == 4)
        let failed = outcomes.filter { $0["outcome"] == "failed" }
        #expect(failed.count == 1)
        #expect(failed.first?["consumer"]?["username"] == "frank")
        #expect(failed.first?["error"]?.stringValue?.contains("500") == true)
        #expect(try s.records().last?["outcome"] == "failed")

        try await s.kong.control("DELETE", "/__test/faults")
        let second = try s.sync()
        #expect(second.status == 0)
        #expect(try await s.consumer("frank")["tags"]?.arrayValue?.contains(.string(Marks.orphaned)) == true)
        try await s.kong.resetStats()
        #expect(try s.sync().status == 0)
        #expect(try await s.writes() == 0)
    }

    /// Starts `sync` in the background with every plugin POST slowed down (5 s), and sends `signal`
    /// the moment its first disable intent is in the journal (the intent is fsynced just before its
    /// POST, so the write is in flight or next). A dedicated thread watches and signals: the test's
    /// cooperative threads may be busy with other tests, and the run must not finish first.
    /// Returns the pid (signalled, not yet reaped); throws when the run never got there.
    func startSlowRun(_ s: Scenario, signal: Int32) async throws -> pid_t {
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "POST", "path_regex": "/plugins$", "status": null, "delay_ms": 5000}]}"#)
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let pid = try spawn(Repo.binary, ["sync", "--config", s.config], stdout: null, stderr: null, stdin: null)
        final class Watch: @unchecked Sendable {
            let done = DispatchSemaphore(value: 0)
            var sawIntent = false
        }
        let watch = Watch()
        let journal = s.journal
        let thread = Thread {
            let needle = #""action":"disable""#
            for _ in 0..<30_000 {  // at most 150 s
                if let text = try? String(contentsOfFile: journal, encoding: .utf8),
                    text.split(separator: "\n").contains(where: { $0.contains(#""event":"intent""#) && $0.contains(needle) })
                {
                    kill(pid, signal)
                    watch.sawIntent = true
                    break
                }
                usleep(5_000)
            }
            if !watch.sawIntent { kill(pid, SIGKILL) }
            watch.done.signal()
        }
        thread.start()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                watch.done.wait()
                continuation.resume()
            }
        }
        guard watch.sawIntent else {
            _ = waitFor(pid)
            throw FixtureError(description: "the run never reached its first disable (no intent in the journal)")
        }
        return pid
    }

    @Test func aRunKilledDuringApplyLeavesAJournalThatVerifiesAndTheNextRunConverges() async throws {
        let s = try Scenario(concurrency: 1)
        try await s.seedDemo()
        let pid = try await startSlowRun(s, signal: SIGKILL)
        #expect(waitFor(pid) == 128 + SIGKILL)
        let records = try s.records()
        #expect(records.last?["event"] == "intent")
        let verify = try runProcess(Repo.binary, ["journal", "verify", "--journal", s.journal])
        #expect(verify.status == 0, "\(verify.stdout)")

        try await s.kong.control("DELETE", "/__test/faults")
        let again = try s.sync()
        #expect(again.status == 0, "\(again.stderr)")
        let started = try s.records().last { $0["event"] == "run-started" }
        // Both actions (carol, dave) were in the first wave, whose intents are durable together.
        #expect(started?["previous_run_interrupted"]?["intents_without_outcome"]?.arrayValue?.count == 2)
        #expect(try await s.plugins("carol").count == 1)
        #expect(try await s.plugins("dave").count == 1)
        #expect(try runProcess(Repo.binary, ["journal", "verify", "--journal", s.journal]).status == 0)
        try await s.kong.resetStats()
        #expect(try s.sync().status == 0)
        #expect(try await s.writes() == 0)
    }

    @Test func sigtermFinishesTheWriteInFlightAndStops() async throws {
        let s = try Scenario(concurrency: 1)
        try await s.seedDemo()
        let pid = try await startSlowRun(s, signal: SIGTERM)
        #expect(waitFor(pid) == 1)
        let records = try s.records()
        let intents = records.filter { $0["event"] == "intent" }.compactMap { $0["seq"]?.intValue }
        let answered = Set(records.filter { $0["event"] == "outcome" }.compactMap { $0["intent"]?.intValue })
        #expect(Set(intents) == answered, "an intent was left without its outcome")
        #expect(records.last?["event"] == "run-finished")
        #expect(records.last?["stopped"] == true)
        // Both disables were in one wave, their intents durable together; the signal came during
        // carol's (held 5 s by the server), so dave's never started and is answered as such.
        let outcomes = records.filter { $0["event"] == "outcome" && $0["action"] == "disable" }
        #expect(outcomes.last?["consumer"]?["username"] == "dave")
        #expect(outcomes.last?["error"] == "not attempted: stopped by a signal")
    }

    @Test func writesRunConcurrentlyAndTheJournalKeepsADeterministicOrder() async throws {
        func run() async throws -> (Int64, [String]) {
            let s = try Scenario(policy: ["grace_period": "0s", "max_disable": "100", "max_disable_percent": "100"])
            try await s.kong.control(
                "POST", "/__test/generate", #"{"count": 16, "tags": ["idp-managed"], "username_prefix": "gone"}"#)
            try await s.kong.control(
                "POST", "/__test/faults",
                #"{"rules": [{"method": "POST", "path_regex": "/plugins$", "status": null, "delay_ms": 1000}]}"#)
            let r = try s.sync()
            #expect(r.status == 0, "\(r.stderr)")
            let order = try s.records().filter { $0["event"] == "intent" || $0["event"] == "outcome" }.map {
                "\($0["event"]!.stringValue!) \($0["action"]!.stringValue!) \($0["consumer"]!["username"]!.stringValue!)"
            }
            return (try await s.kong.stats()["max_writes_in_flight"]?.intValue ?? 0, order)
        }
        let (inFlight, first) = try await run()
        let (_, second) = try await run()
        #expect(first.count == 64)  // 16 × (flag + disable) × (intent + outcome)
        #expect(first == second)
        // What the server saw: the plugin POSTs (held 1 s each, so a loaded machine still starts the
        // other seven meanwhile) overlapped, 8 (the gateway's concurrency) at once.
        #expect(inFlight == 8, "at most \(inFlight) writes were in flight at once")
    }

    @Test(arguments: [0, 700])
    func aJournalThatCannotBeWrittenMeansNoGatewayWrite(_ limit: Int) async throws {
        let s = try Scenario()
        try await s.seedDemo()
        // RLIMIT_FSIZE: 0 bytes fails run-started; 700 bytes takes run-started but not the first intent.
        let r = try runProcess("/usr/bin/prlimit", ["--fsize=\(limit)", Repo.binary, "sync", "--config", s.config])
        // (The limit applies to the captured output files too, so only the exit code and the journal speak.)
        #expect(r.status == 1)
        #expect(try await s.writes() == 0)
        let events = try s.records().map { $0["event"]?.stringValue ?? "" }
        #expect(events == (limit == 0 ? [] : ["run-started"]))
    }
}
