import Foundation
import Logging
import SyncCore
import SyncEngine
import Synchronization
import Testing

@testable import LDAPDirectory

#if canImport(Glibc)
import Glibc
#endif

/// A feed following in a task, its events collected under a lock.
final class FeedRun<Feed: DirectoryFeed & BlockingFollow>: Sendable {
    let feed: Feed
    private let collected = Mutex<[FeedEvent]>([])
    private let stopped = Mutex(false)
    private let outcome = Mutex<Result<Void, any Error>?>(nil)
    private let stopRequested = Mutex<ContinuousClock.Instant?>(nil)
    private let ended = Mutex<ContinuousClock.Instant?>(nil)

    /// The feed follows on a thread of its own, as `follow` does in the product: with every suite
    /// running at once, tests that wait on processes keep the two-thread cooperative pool busy, and
    /// a feed started from it would start late.
    init(_ feed: Feed) {
        self.feed = feed
        let thread = Thread { [self] in
            do {
                try withSIGPIPEBlocked {
                    try feed.followBlocking(
                        { event in self.collected.withLock { $0.append(event) } }, { self.stopped.withLock { $0 } })
                }
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            ended.withLock { $0 = ContinuousClock.now }
        }
        thread.start()
    }

    var events: [FeedEvent] { collected.withLock { $0 } }
    var result: Result<Void, any Error>? { outcome.withLock { $0 } }

    /// Polls (never blocking the test's thread) until `condition` holds on the events, for at most `seconds`.
    func wait(_ seconds: Double = 60, _ what: String = "", until condition: ([FeedEvent]) -> Bool) async throws {
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {
            if condition(events) { return }
            if result != nil { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        if condition(events) { return }
        Issue.record("timed out waiting for \(what); events: \(events); result: \(String(describing: result))")
        throw FixtureError(description: "timed out waiting for \(what)")
    }

    /// Waits until no event arrived for `quiet` seconds.
    func settle(quiet: Double = 1.5) async throws {
        var count = events.count
        var since = ContinuousClock.now
        while ContinuousClock.now - since < .milliseconds(Int(quiet * 1000)) {
            try await Task.sleep(nanoseconds: 100_000_000)
            if events.count != count {
                count = events.count
                since = ContinuousClock.now
            }
        }
    }

    /// Asks the feed to stop without waiting (for a `defer`).
    func requestStop() {
        stopRequested.withLock { $0 = $0 ?? ContinuousClock.now }
        stopped.withLock { $0 = true }
    }

    /// From the stop request to `follow` returning, measured on the feed's own thread (the test's
    /// task may itself wait long for a thread of the busy cooperative pool).
    var stopLatency: Duration? {
        guard let requested = stopRequested.withLock({ $0 }), let end = ended.withLock({ $0 }) else { return nil }
        return end - requested
    }

    /// Asks the feed to stop and waits for `follow` to return.
    func stop() async {
        requestStop()
        while result == nil { try? await Task.sleep(nanoseconds: 20_000_000) }
    }
}

func isLive(_ resumed: Bool) -> (FeedEvent) -> Bool {
    { if case .live(resumed) = $0 { true } else { false } }
}

func isDisconnected(_ event: FeedEvent) -> Bool { if case .disconnected = event { true } else { false } }
func isRefreshRequired(_ event: FeedEvent) -> Bool { if case .refreshRequired = event { true } else { false } }

/// The `.changed` events, in order.
func changes(_ events: [FeedEvent]) -> [(key: String, before: DirectoryUser?, now: DirectoryUser?, changedAt: Double?)]
{
    events.compactMap {
        if case .changed(let key, let before, let now, let at) = $0 { (key, before, now, at) } else { nil }
    }
}

@Suite("LDAP change feed (RFC 4533) against a real slapd with syncprov")
struct LDAPFeedTests {
    static let left = "(employeeType=left)"

    func settings(
        _ server: SlapdServer, filter: String = "(objectClass=inetOrgPerson)", disabledFilter: String? = left,
        timeout: Int = 5
    )
        -> LDAPSettings
    {
        LDAPSettings(
            url: server.url, bindDN: server.bindDN, bindPassword: server.password, baseDN: server.baseDN,
            filter: filter,
            disabledFilter: disabledFilter, timeoutSeconds: timeout)
    }

    func feed(_ settings: LDAPSettings) -> LDAPDirectoryFeed {
        LDAPDirectoryFeed(settings: settings, logger: Logger(label: "test"))
    }

    /// Runs ldapmodify as the rootdn.
    func modify(_ server: SlapdServer, _ ldif: String) throws {
        let r = try runProcess(
            "/usr/bin/ldapmodify", ["-x", "-H", server.url, "-D", "cn=admin,dc=example,dc=org", "-w", "admin-secret"],
            stdin: ldif,
            environment: ["LDAPNOINIT": "1"])
        guard r.status == 0 else { throw FixtureError(description: "ldapmodify: \(r.status) \(r.stderr)") }
    }

    func dn(_ uid: String) -> String { "uid=\(uid),ou=people,dc=example,dc=org" }

    func user(_ id: String, _ name: String, _ state: DirectoryUser.State = .active, _ reason: String? = nil)
        -> DirectoryUser
    {
        DirectoryUser(id: UserID(id), username: name, state: state, deactivationReason: reason)
    }

    // 1.
    @Test func liveThenModifyAddDeleteAndLeavingTheFilter() async throws {
        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let run = FeedRun(feed(settings(server, filter: "(&(objectClass=inetOrgPerson)(!(employeeType=contractor)))")))
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        #expect(run.events == [.live(resumed: false)])
        let known = run.feed.knownUsers()
        #expect(known.count == 6)
        #expect(known[DemoUsers.alice] == user(DemoUsers.alice, "alice"))
        #expect(known[DemoUsers.carol]?.deactivationReason == "ppolicy administrative lock")
        #expect(known[DemoUsers.dave] == user(DemoUsers.dave, "dave", .deactivated, "matches disabled_filter"))

        try modify(server, "dn: \(dn("alice"))\nchangetype: modify\nreplace: employeeType\nemployeeType: left\n")
        try modify(
            server, "dn: \(dn("frank"))\nchangetype: add\nobjectClass: inetOrgPerson\nuid: frank\ncn: Frank\nsn: F\n")
        try modify(server, "dn: \(dn("bob"))\nchangetype: delete\n")
        // Out of the filter: a delete per RFC 4533, now nil.
        try modify(server, "dn: \(dn("erin"))\nchangetype: modify\nreplace: employeeType\nemployeeType: contractor\n")
        try await run.wait(until: { changes($0).count >= 4 })
        try await run.settle(quiet: 1)
        let seen = changes(run.events)
        #expect(seen.count == 4, "\(run.events)")
        guard seen.count == 4 else { return await run.stop() }
        #expect(seen[0].key == DemoUsers.alice)
        #expect(seen[0].before == user(DemoUsers.alice, "alice"))
        #expect(seen[0].now == user(DemoUsers.alice, "alice", .deactivated, "matches disabled_filter"))
        #expect(seen[0].changedAt != nil)
        #expect(seen[1].before == nil)
        #expect(seen[1].now?.username == "frank" && seen[1].now?.state == .active)
        #expect(seen[1].now?.id.rawValue == seen[1].key)  // id_attribute entryUUID: the key
        #expect(seen[2].key == DemoUsers.bob)
        #expect(seen[2].before == user(DemoUsers.bob, "bob"))
        #expect(seen[2].now == nil)
        #expect(seen[3].key == DemoUsers.erin)
        #expect(seen[3].before?.username == "erin")
        #expect(seen[3].now == nil)
        if let at = seen[0].changedAt {
            let now = Double(time(nil))
            #expect(abs(at - now) < 120, "modifyTimestamp \(at) vs now \(now)")
        }
        #expect(run.feed.knownUsers().count == 5)
        await run.stop()
        #expect(run.events.count == 5)
    }

    // 2.
    @Test func changesDuringTheFirstRefreshAreNotLost() async throws {
        // The design: syncprov registers the persistent search before it reads the refresh content,
        // so a change lands in the refresh content (the silent map) or comes after it as a persist
        // message (a .changed after .live); disabled_filter is read after the refresh, and a change
        // after that arrives as a message of its own. Whatever the timing, the map at the end must
        // equal a fresh paged read.
        let server = try SlapdServer(users: 20000, sizeLimit: nil, syncprov: true)
        var ldif = ""
        for i in stride(from: 1, through: 400, by: 2) {
            let uid = "user" + String(repeating: "0", count: 6 - String(i).count) + String(i)
            ldif += "dn: \(dn(uid))\nchangetype: modify\nreplace: employeeType\nemployeeType: left\n\n"
        }
        for i in stride(from: 2, through: 400, by: 2) {
            let uid = "user" + String(repeating: "0", count: 6 - String(i).count) + String(i)
            ldif += "dn: \(dn(uid))\nchangetype: delete\n\n"
        }
        let run = FeedRun(feed(settings(server, timeout: 15)))
        // 400 writes while the feed reads 20,006 entries: started once the sync search is out,
        // waited for without blocking the test's thread.
        try await run.wait(120, "the sync search", until: { _ in run.feed.statistics().searches >= 1 })
        let dir = TempDir()
        let input = open(dir.write("changes.ldif", ldif), O_RDONLY)
        let output = open(dir.path + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer {
            close(input)
            close(output)
        }
        let writer = try spawn(
            "/usr/bin/ldapmodify", ["-x", "-H", server.url, "-D", "cn=admin,dc=example,dc=org", "-w", "admin-secret"],
            stdout: output, stderr: output, stdin: input, extraEnvironment: ["LDAPNOINIT": "1"])
        let written = try await exitStatus(of: writer, tries: 3000)
        #expect(written == 0)
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        try await run.settle(quiet: 1.5)
        let snapshot = try await LDAPDirectorySource(
            settings: LDAPSettings(
                url: server.url, bindDN: server.bindDN, bindPassword: server.password, baseDN: server.baseDN,
                pageSize: 500,
                disabledFilter: Self.left), logger: Logger(label: "test")
        ).snapshot()
        let known = run.feed.knownUsers()
        #expect(snapshot.users.count == 19806)
        #expect(known.count == snapshot.users.count)
        let mismatched = snapshot.users.filter { known[$0.id.rawValue] != $0 }
        #expect(mismatched.isEmpty, "\(mismatched.prefix(5))")
        let delivered = changes(run.events).count
        let liveAt = run.events.firstIndex(where: isLive(false)) ?? 0
        print(
            "400 writes during the first refresh: \(delivered) delivered after .live (\(liveAt) events before it), the rest in the silent map"
        )
        #expect(liveAt == 0)
        #expect(!run.events.contains(where: isDisconnected))
        await run.stop()
    }

    // 3.
    @Test func aReconnectResumesFromTheCookieWithoutReadingEverything() async throws {
        let server = try SlapdServer(users: 300, sizeLimit: nil, syncprov: true, debugLevel: "768")
        let run = FeedRun(feed(settings(server, disabledFilter: nil)))
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        let first = run.feed.statistics()
        #expect(first.refreshEntries == 306)
        let firstLog = try String(contentsOfFile: server.logPath, encoding: .utf8)
        #expect(firstLog.components(separatedBy: "ENTRY dn=").count - 1 >= 306)

        server.stop()
        try await run.wait(until: { $0.filter(isDisconnected).count >= 2 })  // the drop, then a failed retry
        try server.restart()
        try modify(
            server,
            "dn: \(dn("user000007"))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        )
        try modify(server, "dn: \(dn("user000008"))\nchangetype: delete\n")
        try await run.wait(until: { $0.contains(where: isLive(true)) && changes($0).count >= 2 })
        try await run.settle(quiet: 1)
        await run.stop()

        let seen = changes(run.events)
        #expect(seen.count == 2, "\(seen)")
        let user7 = "cb9ef77e-3677-5cf4-8f6a-679607ba8f66"
        let user8 = "08283e28-aff7-53f8-b8b8-7586672d1a32"
        #expect(seen.first { $0.key == user7 }?.now?.deactivationReason == "ppolicy administrative lock")
        #expect(seen.first { $0.key == user7 }?.before?.state == .active)
        let gone = seen.first { $0.key == user8 }
        #expect(gone != nil && gone?.now == nil && gone?.before?.username == "user000008")
        #expect(!run.events.contains(where: isRefreshRequired))
        #expect(run.events.filter(isLive(false)).count == 1)
        #expect(run.feed.knownUsers().count == 305)

        // The resumed search did not send every entry again: slapd's log since the restart (one
        // line per entry sent) and the feed's own count of the refresh both say so.
        let resumed = run.feed.statistics()
        #expect(resumed.searches >= 2)
        #expect(resumed.refreshEntries < 20, "\(resumed)")
        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        let sent = log.components(separatedBy: "ENTRY dn=").count - 1
        #expect(sent < 20, "slapd sent \(sent) entries after the restart")
        print(
            "resumed refresh: \(resumed.refreshEntries) entries, \(resumed.refreshIDs) UUIDs in syncIdSets; slapd sent \(sent) entries since the restart"
        )
    }

    // 3b.
    @Test func changesMissedAcrossARestartArriveThroughThePresentPhase() async throws {
        // The feed reaches slapd through a proxy. The proxy goes away (the feed is cut off while
        // slapd runs), entries change and one is deleted, slapd restarts (its session log of
        // deletions lives in memory), the proxy comes back: slapd cannot list the deletions, so it
        // names every entry still there (syncIdSet) and sends the changed ones; the entry it did
        // not name is concluded deleted from the feed's map.
        let server = try SlapdServer(users: 300, sizeLimit: nil, syncprov: true, debugLevel: "768")
        let upstream = "127.0.0.1:" + server.env["LDAP_PORT"]!
        var proxy: FaultProxy? = try FaultProxy(["--upstream", upstream, "--cut-after", "1000000000000"])
        let port = proxy!.port
        var s = settings(server, disabledFilter: nil)
        s.url = "ldap://127.0.0.1:\(port)"
        let run = FeedRun(feed(s))
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        proxy = nil  // SIGKILL: the connection drops
        try await run.wait(until: { $0.contains(where: isDisconnected) })
        try modify(
            server,
            "dn: \(dn("user000007"))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        )
        try modify(server, "dn: \(dn("user000008"))\nchangetype: delete\n")
        try modify(server, "dn: \(dn("zed"))\nchangetype: add\nobjectClass: inetOrgPerson\nuid: zed\ncn: Zed\nsn: Z\n")
        try server.restart()
        proxy = try FaultProxy(["--port", String(port), "--upstream", upstream, "--cut-after", "1000000000000"])
        try await run.wait(until: { $0.contains(where: isLive(true)) })
        try await run.settle(quiet: 1)
        await run.stop()
        let seen = changes(run.events)
        let user7 = "cb9ef77e-3677-5cf4-8f6a-679607ba8f66"
        let user8 = "08283e28-aff7-53f8-b8b8-7586672d1a32"
        #expect(seen.count == 3, "\(seen)")
        #expect(seen.first { $0.key == user7 }?.now?.state == .deactivated)
        #expect(seen.first { $0.key == user8 }.map { $0.now == nil && $0.before?.username == "user000008" } == true)
        #expect(seen.first { $0.now?.username == "zed" }?.before == nil)
        #expect(!run.events.contains(where: isRefreshRequired))
        #expect(run.feed.knownUsers().count == 306)
        let stats = run.feed.statistics()
        #expect(stats.refreshIDs >= 300, "\(stats)")  // the present phase named them by UUID only
        #expect(stats.refreshEntries < 20, "\(stats)")
        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        let sent = log.components(separatedBy: "ENTRY dn=").count - 1
        #expect(sent < 20, "slapd sent \(sent) entries after the restart")
        print(
            "present phase after a restart: \(stats.refreshEntries) entries, \(stats.refreshIDs) UUIDs in syncIdSets; slapd sent \(sent) entries"
        )
    }

    // 4a.
    @Test func aServerRestoredFromAnOlderBackupRequiresARefresh() async throws {
        // slapd writes its contextCSN at shutdown (and at checkpoints), so an offline slapcat
        // carries the state it was taken at; a cookie newer than that is rejected with 53.
        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let run = FeedRun(feed(settings(server)))
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        try modify(server, "dn: \(dn("bob"))\nchangetype: modify\nreplace: employeeType\nemployeeType: left\n")
        try await run.wait(until: { changes($0).count == 1 })
        server.stop()
        let backup = server.fixtureDir + "/backup.ldif"
        let conf = server.fixtureDir + "/slapd.conf"
        let dump = try runProcess("/usr/sbin/slapcat", ["-f", conf, "-l", backup])
        #expect(dump.status == 0, "\(dump.stderr)")
        try server.restart()
        try await run.wait(until: { $0.contains(where: isLive(true)) })
        try modify(server, "dn: \(dn("alice"))\nchangetype: modify\nreplace: employeeType\nemployeeType: left\n")
        try await run.wait(until: { changes($0).count == 2 })  // the feed's cookie is now newer than the backup

        server.stop()
        for file in ["data.mdb", "lock.mdb"] { unlink(server.fixtureDir + "/db/" + file) }
        let load = try runProcess("/usr/sbin/slapadd", ["-q", "-f", conf, "-l", backup])
        #expect(load.status == 0, "\(load.stderr)")
        let restoredAt = run.events.count
        try server.restart()
        try await run.wait(until: { $0.contains(where: isRefreshRequired) && $0.filter(isLive(false)).count == 2 })
        try await run.settle(quiet: 1)
        await run.stop()
        let after = run.events[restoredAt...].filter { !isDisconnected($0) }
        #expect(after.count == 2, "\(run.events)")  // refreshRequired, live(false)
        if case .refreshRequired(let reason) = after.first {
            #expect(reason.contains("53") && reason.contains("rejected the cookie"), "\(reason)")
        }
        #expect(after.last == .live(resumed: false))
        #expect(run.feed.knownUsers()[DemoUsers.alice] == user(DemoUsers.alice, "alice"))  // as restored
        #expect(run.feed.knownUsers()[DemoUsers.bob]?.state == .deactivated)
    }

    // 4b.
    @Test func aCookieTheServerDoesNotKnowRequiresARefresh() async throws {
        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let run = FeedRun(feed(settings(server)))
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        run.feed.cookieOverride.withLock { $0 = Array("garbage-cookie".utf8) }
        try server.restart()
        try await run.wait(until: { $0.contains(where: isRefreshRequired) && $0.filter(isLive(false)).count == 2 })
        try await run.settle(quiet: 1)
        await run.stop()
        let after = Array(run.events.drop { !isDisconnected($0) }).filter { !isDisconnected($0) }
        #expect(after.count == 2, "\(run.events)")
        if case .refreshRequired(let reason) = after.first {
            #expect(reason.contains("did not continue from the cookie"), "\(reason)")
        }
        #expect(after.last == .live(resumed: false))
        #expect(run.feed.knownUsers().count == 6)
        #expect(run.feed.statistics().searches == 3)  // first, with the bad cookie, fresh
    }

    @Test func aSizeLimitDuringTheRefreshIsAnIncompleteRead() async throws {
        let server = try SlapdServer(users: 120, sizeLimit: 50, syncprov: true)
        let run = FeedRun(feed(settings(server)))
        try await run.wait(until: { $0.contains(where: isDisconnected) })
        try await Task.sleep(nanoseconds: 1_000_000_000)
        await run.stop()
        #expect(!run.events.contains(where: isLive(false)))
        #expect(changes(run.events).isEmpty)
        if case .disconnected(let reason) = run.events.first {
            #expect(reason.contains("result 4") && reason.contains("needs no size limit"), "\(reason)")
        }
        #expect(run.feed.knownUsers().isEmpty)
        #expect(run.events.filter(isDisconnected).count >= 2)  // retried after 0.5 s
    }

    @Test func aServerWithoutSyncprovOrABadPasswordThrows() async throws {
        let plain = try SlapdServer(sizeLimit: nil)
        let run = FeedRun(feed(settings(plain)))
        try await run.wait(until: { _ in run.result != nil })
        await run.stop()
        guard case .failure(let error) = run.result else {
            Issue.record("follow did not throw")
            return
        }
        #expect("\(error)".contains("syncprov"), "\(error)")
        #expect(run.events.isEmpty)

        var wrong = settings(plain)
        wrong.bindPassword = "wrong-pass-4711"
        let bad = FeedRun(feed(wrong))
        try await bad.wait(until: { _ in bad.result != nil })
        guard case .failure(let error) = bad.result else {
            Issue.record("follow did not throw")
            return
        }
        #expect("\(error)".contains("Invalid credentials") && !"\(error)".contains("wrong-pass-4711"), "\(error)")
    }

    @Test func aFrozenServerIsNoticedByTheIdleProbe() async throws {
        // SIGSTOP keeps the TCP connection open and silent, like a half-open connection: after
        // idleProbeSeconds of silence a base search must answer within the timeout.
        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let feed = LDAPDirectoryFeed(
            settings: settings(server, timeout: 2), logger: Logger(label: "test"), idleProbeSeconds: 1)
        let run = FeedRun(feed)
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        kill(server.pid, SIGSTOP)
        try await run.wait(10, "the probe to fail", until: { $0.contains(where: isDisconnected) })
        kill(server.pid, SIGCONT)
        try await run.wait(until: { $0.contains(where: isLive(true)) })
        await run.stop()
        if case .disconnected(let reason) = run.events.first(where: isDisconnected) {
            #expect(reason.contains("stopped answering"), "\(reason)")
        }
        #expect(changes(run.events).isEmpty)
        #expect(run.feed.statistics().lookups >= 1)
    }

    @Test func stopEndsFollowPromptlyAndADownServerIsRetried() async throws {
        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let url = server.url
        server.stop()
        var s = settings(server)
        s.url = url
        let run = FeedRun(feed(s))
        try await run.wait(until: { $0.filter(isDisconnected).count >= 2 })
        #expect(run.result == nil)  // a server that is down is retried, not an error
        try server.restart()
        try await run.wait(until: { $0.contains(where: isLive(false)) })
        await run.stop()
        #expect((run.stopLatency ?? .seconds(99)) < .seconds(5))  // 0.5 s slices
        if case .failure(let error) = run.result { Issue.record("\(error)") }
    }
}

@Suite("LDAP change feed against a fake server that misbehaves in ways slapd will not")
struct FakeFeedTests {
    func follow(_ mode: String) throws -> (PortFileServer, FeedRun<LDAPDirectoryFeed>) {
        let server = try PortFileServer(script: "ldap/fake_ldap_server.py", ["--mode", mode])
        let feed = LDAPDirectoryFeed(
            settings: LDAPSettings(
                url: "ldap://127.0.0.1:\(server.port)", bindDN: "cn=sync,ou=system,dc=example,dc=org",
                bindPassword: "x",
                baseDN: "ou=people,dc=example,dc=org", timeoutSeconds: 5),
            logger: Logger(label: "test"))
        return (server, FeedRun(feed))
    }

    @Test func eSyncRefreshRequiredStartsOverSilently() async throws {
        // The server closes after each refresh; the feed comes back with its cookie and is told
        // 4096: it says so, forgets its map and cookie, and reads everything again without a cookie.
        let (server, run) = try follow("sync-refresh-required")
        try await run.wait(until: { $0.contains(where: isRefreshRequired) && $0.filter(isLive(false)).count >= 2 })
        await run.stop()
        _ = server
        let events = Array(run.events.prefix(4))
        #expect(events.count == 4)
        guard events.count == 4 else { return }
        #expect(events[0] == .live(resumed: false))
        #expect(isDisconnected(events[1]))
        if case .refreshRequired(let reason) = events[2] {
            #expect(reason.contains("result 4096"), "\(reason)")
        } else {
            Issue.record("\(events)")
        }
        #expect(events[3] == .live(resumed: false))
        #expect(changes(run.events).isEmpty)
        #expect(
            Set(run.feed.knownUsers().keys) == [
                "a4c21bba-c026-5fcb-9d0d-d0c6ce42ed97", "abb2f2c9-5b6c-5cf9-97a3-374637e6e57d",
            ])
    }

    @Test func malformedSyncMessagesAreDisconnectsNotTraps() async throws {
        let (server, run) = try follow("sync-hostile")
        try await run.wait(until: { $0.filter(isDisconnected).count >= 3 })
        await run.stop()
        _ = server
        let reasons = run.events.compactMap { if case .disconnected(let reason) = $0 { reason } else { nil } }
        #expect(reasons.count >= 3 && reasons.count == run.events.count, "\(run.events)")
        guard reasons.count >= 3 else { return }
        #expect(reasons[0].contains("without a readable Sync State control"), "\(reasons[0])")
        #expect(reasons[1].contains("malformed Sync Info"), "\(reasons[1])")
        #expect(reasons[2].contains("without a readable Sync State control"), "\(reasons[2])")
        #expect(run.feed.knownUsers().isEmpty)
        if case .failure(let error) = run.result { Issue.record("\(error)") }
    }
}
