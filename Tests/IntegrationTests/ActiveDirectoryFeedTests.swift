import Logging
import SyncCore
import SyncEngine
import Testing

@testable import LDAPDirectory

#if canImport(Glibc)
    import Glibc
#endif

extension SambaAD {
    /// Starts the fixture, waiting (up to 10 min) while another Samba holds 389/636 or the
    /// machine-wide /run/samba/samba.pid (another session's test), which can also show as a start
    /// that never answered.
    static func start(users: Int, disabledEvery: Int = 0) async throws -> SambaAD {
        let end = ContinuousClock.now + .seconds(600)
        while true {
            do {
                return try SambaAD(users: users, disabledEvery: disabledEvery)
            } catch let error as FixtureError
                where ["is taken", "already running", "did not answer"].contains(where: error.description.contains)
                && ContinuousClock.now < end
            {
                try await Task.sleep(for: .seconds(5))
            }
        }
    }

    static let filter = "(&(objectClass=user)(sAMAccountName=aduser*))"

    func settings(url: String? = nil, filter: String = SambaAD.filter, disabledFilter: String? = nil, timeout: Int = 5)
        -> LDAPSettings
    {
        LDAPSettings(
            url: url ?? env["AD_URL"]!, bindDN: env["AD_BIND_UPN"]!, bindPassword: env["AD_PASSWORD"]!,
            baseDN: env["AD_BASE_DN"]!, filter: filter, idAttribute: "objectGUID", usernameAttribute: "sAMAccountName",
            disabledFilter: disabledFilter, timeoutSeconds: timeout, caFile: env["AD_CA"]!)
    }

    func feed(url: String? = nil, filter: String = SambaAD.filter, disabledFilter: String? = nil, timeout: Int = 5)
        -> ActiveDirectoryFeed
    {
        ActiveDirectoryFeed(
            settings: settings(url: url, filter: filter, disabledFilter: disabledFilter, timeout: timeout),
            pollSeconds: 1,
            logger: Logger(label: "test"))
    }

    /// ldapmodify (or ldapdelete) as the domain's Administrator, straight to Samba.
    func modify(_ ldif: String, tool: String = "ldapmodify") throws {
        let r = try runProcess(
            "/usr/bin/\(tool)", ["-x", "-H", env["AD_URL"]!, "-D", env["AD_BIND_UPN"]!, "-w", env["AD_PASSWORD"]!],
            stdin: ldif, environment: ["LDAPTLS_CACERT": env["AD_CA"]!])
        guard r.status == 0 else { throw FixtureError(description: "\(tool): \(r.status) \(r.stderr)") }
    }

    func dn(_ name: String) -> String { "CN=\(name),\(env["AD_BASE_DN"]!)" }
}

extension FeedRun where Feed == ActiveDirectoryFeed {
    /// The key (objectGUID) of a known user by sAMAccountName.
    func key(_ name: String) -> String? { feed.knownUsers().first { $0.value.username == name }?.key }
}

private func isChange(of key: String?, now state: DirectoryUser.State?) -> (FeedEvent) -> Bool {
    {
        guard case .changed(let k, _, let now, _) = $0, k == key else { return false }
        return now?.state == state
    }
}

@Suite("Active Directory change feed (uSNChanged polling) against Samba's AD DC", .serialized)
struct ActiveDirectoryFeedTests {
    @Test func liveThenDisableDeleteLeaveTheFilterMoveAddDisabledFilterAndEnable() async throws {
        let ad = try await SambaAD.start(users: 20, disabledEvery: 10)
        defer { ad.stop() }
        let run = FeedRun(ad.feed(disabledFilter: "(description=left)"))
        defer { run.requestStop() }
        try await run.wait(60, "live", until: { $0.contains(where: isLive(false)) })
        #expect(run.events == [.live(resumed: false)])
        let known = run.feed.knownUsers()
        #expect(known.count == 20)
        #expect(known.allSatisfy { $0.key == $0.value.id.rawValue && MatchKey.isUUID($0.key) })
        #expect(
            known.values.filter { $0.state == .deactivated }.compactMap(\.username).sorted() == [
                "aduser0010", "aduser0020",
            ])
        #expect(known[run.key("aduser0010") ?? ""]?.deactivationReason == "userAccountControl ACCOUNTDISABLE")
        let keys = (1...6).map { run.key("aduser000\($0)") }
        let ten = run.key("aduser0010")

        // Disabled (544 | ACCOUNTDISABLE).
        try ad.modify(
            "dn: \(ad.dn("aduser0001"))\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
        try await run.wait(20, "the disable", until: { $0.contains(where: isChange(of: keys[0], now: .deactivated)) })
        // Deleted; out of the filter (renamed); disabled_filter; an attribute we do not model; out of base_dn (moved); a new user.
        try ad.modify("\(ad.dn("aduser0002"))\n", tool: "ldapdelete")
        try ad.modify(
            "dn: \(ad.dn("aduser0003"))\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: other0003\n")
        try ad.modify("dn: \(ad.dn("aduser0004"))\nchangetype: modify\nreplace: description\ndescription: unrelated\n")
        try ad.modify("dn: \(ad.dn("aduser0006"))\nchangetype: modify\nreplace: description\ndescription: left\n")
        try ad.modify(
            "dn: \(ad.dn("aduser0005"))\nchangetype: moddn\nnewrdn: CN=aduser0005\ndeleteoldrdn: 1\nnewsuperior: CN=Computers,DC=example,DC=test\n"
        )
        try ad.modify(
            "dn: \(ad.dn("aduser0100"))\nchangetype: add\nobjectClass: user\nsAMAccountName: aduser0100\nuserAccountControl: 544\n"
        )
        try ad.modify(
            "dn: \(ad.dn("aduser0010"))\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n")
        try await run.wait(20, "six more changes", until: { changes($0).count >= 7 })
        try await run.settle(quiet: 3)

        let seen = changes(run.events)
        #expect(seen.count == 7, "\(run.events)")
        let byKey = Dictionary(seen.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let disabled = byKey[keys[0] ?? ""]
        #expect(disabled?.before?.state == .active)
        #expect(disabled?.now?.state == .deactivated)
        #expect(disabled?.now?.deactivationReason == "userAccountControl ACCOUNTDISABLE")
        #expect(disabled?.now?.username == "aduser0001")
        if let at = disabled?.changedAt {
            #expect(abs(at - Double(time(nil))) < 120, "whenChanged \(at)")
        } else {
            Issue.record("no changedAt")
        }
        for (index, name) in [(1, "aduser0002"), (2, "aduser0003"), (4, "aduser0005")] {
            #expect(byKey[keys[index] ?? ""]?.before?.username == name, "\(name)")
            #expect(byKey[keys[index] ?? ""].map { $0.now == nil } == true, "\(name)")
        }
        #expect(byKey[keys[1] ?? ""]?.changedAt != nil)  // the tombstone's whenChanged
        #expect(byKey[keys[3] ?? ""] == nil, "an unrelated attribute is no change")
        #expect(byKey[keys[5] ?? ""]?.now?.deactivationReason == "matches disabled_filter")
        #expect(byKey[keys[5] ?? ""]?.before?.state == .active)
        let added = seen.first { $0.before == nil }
        #expect(added?.now?.username == "aduser0100" && added?.now?.state == .active)
        #expect(added?.now?.id.rawValue == added?.key)
        #expect(byKey[ten ?? ""]?.now?.state == .active)
        #expect(seen.filter { $0.now == nil }.count == 3)
        #expect(run.feed.knownUsers().count == 18)
        #expect(run.feed.statistics().fullReads == 1)
        #expect(!run.events.contains(where: isDisconnected))
        await run.stop()
        #expect(run.result.map { if case .success = $0 { true } else { false } } == true)
    }

    @Test func aFailedPollIsADisconnectThenResumesWithWhatChangedMeanwhile() async throws {
        let ad = try await SambaAD.start(users: 20)
        defer { ad.stop() }
        // A plain TCP front for Samba's LDAPS port: killing it makes the next poll fail and the
        // port dead, while Samba stays up for the changes made meanwhile.
        let upstream = ["--upstream", "127.0.0.1:636", "--cut-after", "1000000000000000"]
        var proxy: FaultProxy? = try FaultProxy(upstream)
        let port = proxy!.port
        let run = FeedRun(ad.feed(url: "ldaps://127.0.0.1:\(port)"))
        defer { run.requestStop() }
        try await run.wait(60, "live", until: { $0.contains(where: isLive(false)) })
        let seven = run.key("aduser0007")
        let eight = run.key("aduser0008")
        #expect(run.feed.knownUsers().count == 20)

        proxy = nil  // SIGKILL: the kept connection drops, reconnects are refused
        try await run.wait(20, "disconnected", until: { $0.contains(where: isDisconnected) })
        try ad.modify(
            "dn: \(ad.dn("aduser0007"))\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
        try ad.modify("\(ad.dn("aduser0008"))\n", tool: "ldapdelete")
        // A few refused reconnects, then the port answers again.
        try await Task.sleep(for: .seconds(2))
        #expect(!run.events.contains(where: isLive(true)))
        #expect(changes(run.events).isEmpty, "nothing is concluded while disconnected")
        proxy = try FaultProxy(["--port", String(port)] + upstream)
        try await run.wait(60, "resumed", until: { $0.contains(where: isLive(true)) })
        try await run.settle(quiet: 2.5)

        let events = run.events
        let seen = changes(events)
        #expect(seen.count == 2, "\(events)")
        #expect(seen.first { $0.key == seven }?.now?.state == .deactivated)
        #expect(seen.filter { $0.now == nil }.map(\.key) == [eight], "nothing else is reported gone")
        // Order: disconnected, then the changes made meanwhile, then live(resumed: true).
        let firstDrop = try #require(events.firstIndex(where: isDisconnected))
        let resumed = try #require(events.firstIndex(where: isLive(true)))
        let changeIndices = events.indices.filter { if case .changed = events[$0] { true } else { false } }
        #expect(changeIndices.allSatisfy { $0 > firstDrop && $0 < resumed })
        #expect(events.filter(isLive(false)).count == 1)
        #expect(!events.contains(where: isRefreshRequired))
        #expect(run.feed.statistics().fullReads == 1, "resumed from the mark, not by reading everything")
        #expect(run.feed.knownUsers().count == 19)

        // Still following after the resume.
        try ad.modify(
            "dn: \(ad.dn("aduser0009"))\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
        try await run.wait(20, "a change after the resume", until: { changes($0).count == 3 })
        await run.stop()
        _ = proxy
    }

    @Test func aFrozenServerTimesOutThePollAndIsResumedFrom() async throws {
        let ad = try await SambaAD.start(users: 5)
        defer { ad.stop() }
        let group = -pid_t(ad.env["AD_PID"]!)!
        let run = FeedRun(ad.feed(timeout: 2))
        defer { run.requestStop() }
        try await run.wait(60, "live", until: { $0.contains(where: isLive(false)) })
        kill(group, SIGSTOP)
        defer { kill(group, SIGCONT) }
        // The next poll's rootDSE read gets no answer: after `timeout` it is a disconnect.
        try await run.wait(20, "disconnected", until: { $0.contains(where: isDisconnected) })
        let reason = run.events.compactMap { if case .disconnected(let r) = $0 { r } else { nil } }.first ?? ""
        #expect(
            reason.contains("no answer within 2s") || reason.contains("Timed out") || reason.contains("(-5)"),
            "\(reason)")
        kill(group, SIGCONT)
        try await run.wait(60, "resumed", until: { $0.contains(where: isLive(true)) })
        #expect(changes(run.events).isEmpty)
        #expect(run.feed.statistics().fullReads == 1)
        #expect(run.feed.knownUsers().count == 5)
        await run.stop()
    }

    @Test func aRestoredOrAnotherServerRequiresARefreshAndTheSelectorPicksThisFeed() async throws {
        let ad = try await SambaAD.start(users: 5)
        defer { ad.stop() }
        let run = FeedRun(ad.feed())
        defer { run.requestStop() }
        try await run.wait(60, "live", until: { $0.contains(where: isLive(false)) })
        let mark = try #require(run.feed.currentMark())
        #expect(MatchKey.isUUID(mark.invocationID))

        // The server's highestCommittedUSN is below what we had: a restore.
        run.feed.markOverride.withLock {
            $0 = USNSession.Mark(invocationID: mark.invocationID, usn: mark.usn + 1_000_000)
        }
        try await run.wait(20, "refresh after a USN rollback", until: { $0.filter(isLive(false)).count == 2 })
        // Another DC (or a restore) answers: its invocationId differs.
        run.feed.markOverride.withLock {
            $0 = USNSession.Mark(invocationID: "00000000-0000-0000-0000-000000000000", usn: mark.usn)
        }
        try await run.wait(20, "refresh after an invocationId change", until: { $0.filter(isLive(false)).count == 3 })
        let refreshes = run.events.compactMap { if case .refreshRequired(let reason) = $0 { reason } else { nil } }
        #expect(refreshes.count == 2)
        #expect(refreshes.first?.contains("went back") == true)
        #expect(refreshes.last?.contains("invocationId") == true)
        #expect(changes(run.events).isEmpty, "a fresh read is silent")
        #expect(run.feed.statistics().fullReads == 3)
        #expect(run.feed.knownUsers().count == 5)
        #expect(run.feed.currentMark()?.invocationID == mark.invocationID)
        await run.stop()

        // The factory the CLI uses probes the rootDSE and follows with uSNChanged polling.
        let selector = LDAPFeedSelector(settings: ad.settings(), pollSeconds: 1, logger: Logger(label: "test"))
        let selected = FeedRun(selector)
        defer { selected.requestStop() }
        try await selected.wait(60, "live through the selector", until: { $0.contains(where: isLive(false)) })
        #expect(selector.kind == .activeDirectory)
        try ad.modify(
            "dn: \(ad.dn("aduser0001"))\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
        try await selected.wait(20, "a change through the selector", until: { !changes($0).isEmpty })
        #expect(changes(selected.events).first?.now?.state == .deactivated)
        await selected.stop()
    }

    @Test func aMemberOfFilterFollowsGroupMembership() async throws {
        let ad = try await SambaAD.start(users: 6)
        defer { ad.stop() }
        let group = "CN=kong-users,\(ad.env["AD_BASE_DN"]!)"
        try ad.modify(
            """
            dn: \(group)
            changetype: add
            objectClass: group
            sAMAccountName: kong-users
            member: \(ad.dn("aduser0001"))
            member: \(ad.dn("aduser0002"))
            member: \(ad.dn("aduser0003"))

            """)
        let run = FeedRun(ad.feed(filter: "(&(objectClass=user)(memberOf=\(group)))"))
        defer { run.requestStop() }
        try await run.wait(60, "live", until: { $0.contains(where: isLive(false)) })
        #expect(
            run.feed.knownUsers().values.map { $0.username ?? "" }.sorted() == [
                "aduser0001", "aduser0002", "aduser0003",
            ])
        let two = run.key("aduser0002")

        // Membership lives on the group: the members' uSNChanged does not move.
        try ad.modify("dn: \(group)\nchangetype: modify\ndelete: member\nmember: \(ad.dn("aduser0002"))\n")
        try ad.modify("dn: \(group)\nchangetype: modify\nadd: member\nmember: \(ad.dn("aduser0004"))\n")
        try await run.wait(20, "two membership changes", until: { changes($0).count >= 2 })
        try await run.settle(quiet: 2.5)
        let seen = changes(run.events)
        #expect(seen.count == 2, "\(run.events)")
        #expect(seen.first { $0.key == two }.map { $0.now == nil && $0.before?.username == "aduser0002" } == true)
        #expect(seen.first { $0.before == nil }?.now?.username == "aduser0004")
        #expect(run.feed.statistics().completePolls >= 1)
        #expect(run.feed.statistics().fullReads == 1)
        await run.stop()
    }
}

@Suite("The LDAP feed selector")
struct LDAPFeedSelectorTests {
    @Test func anOpenLDAPServerGetsTheRFC4533Feed() async throws {
        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let selector = LDAPFeedSelector(
            settings: LDAPSettings(
                url: server.url, bindDN: server.bindDN, bindPassword: server.password, baseDN: server.baseDN,
                timeoutSeconds: 5),
            pollSeconds: 1, logger: Logger(label: "test"))
        let run = FeedRun(selector)
        try await run.wait(30, "live", until: { $0.contains(where: isLive(false)) })
        #expect(selector.kind == .contentSync)
        await run.stop()
    }

    @Test func aDownServerIsRetriedUntilStoppedAndABadPasswordThrows() async throws {
        let down = FeedRun(
            LDAPFeedSelector(
                settings: LDAPSettings(url: "ldap://127.0.0.1:1", bindDN: nil, bindPassword: nil, baseDN: "dc=x"),
                pollSeconds: 1, logger: Logger(label: "test")))
        try await down.wait(10, "two disconnects", until: { $0.filter(isDisconnected).count >= 2 })
        await down.stop()
        #expect((down.stopLatency ?? .seconds(99)) < .seconds(5))
        #expect(down.feed.kind == nil)

        let server = try SlapdServer(sizeLimit: nil, syncprov: true)
        let bad = FeedRun(
            LDAPFeedSelector(
                settings: LDAPSettings(
                    url: server.url, bindDN: server.bindDN, bindPassword: "wrong", baseDN: server.baseDN,
                    timeoutSeconds: 5),
                pollSeconds: 1, logger: Logger(label: "test")))
        try await bad.wait(15, "the bind failure", until: { _ in bad.result != nil })
        guard case .failure(let error) = bad.result else {
            Issue.record("no error: \(bad.events)")
            return
        }
        #expect("\(error)".contains("bind"))
    }
}

@Suite("uSNChanged polling: USN bookkeeping and diffing")
struct USNSessionTests {
    static let invocation = "8a314da2-415e-5001-a7d0-fe5138d85bff"
    static func mark(_ usn: Int64, _ invocation: String = invocation) -> USNSession.Mark {
        USNSession.Mark(invocationID: invocation, usn: usn)
    }
    static func user(_ name: String, _ state: DirectoryUser.State = .active) -> DirectoryUser {
        DirectoryUser(
            id: UserID("id-\(name)"), username: name, state: state,
            deactivationReason: state == .active ? nil : "userAccountControl ACCOUNTDISABLE")
    }
    static let alice = user("alice")
    static let bob = user("bob")
    static let carol = user("carol")

    /// alice, bob and carol known at USN 100.
    static func session() -> USNSession {
        var s = USNSession()
        _ = s.filled([.init("a", alice, usn: 10), .init("b", bob, usn: 20), .init("c", carol, usn: 30)], at: mark(100))
        return s
    }

    @Test(
        arguments: [
            (nil, mark(5), USNSession.Step.fullRead),
            (mark(100), mark(100), .poll(since: 100)),
            (mark(100), mark(250), .poll(since: 100)),
            (mark(100), mark(99), .refreshRequired("went back")),
            (mark(100), mark(250, "00000000-0000-0000-0000-000000000000"), .refreshRequired("invocationId")),
        ] as [(USNSession.Mark?, USNSession.Mark, USNSession.Step)])
    func step(_ known: USNSession.Mark?, _ server: USNSession.Mark, _ expected: USNSession.Step) {
        var s = USNSession()
        if let known { s.replaceMark(known) }
        switch (s.step(server), expected) {
        case (.refreshRequired(let reason), .refreshRequired(let word)): #expect(reason.contains(word), "\(reason)")
        case (let got, _): #expect(got == expected)
        }
    }

    @Test func theFirstReadIsSilentAndSkipsEntriesWithoutAnId() {
        var s = USNSession()
        let events = s.filled([.init("a", Self.alice, usn: 3), .init("x", nil, usn: 4)], at: Self.mark(50))
        #expect(events == [.live(resumed: false)])
        #expect(s.users == ["a": Self.alice])
        #expect(s.mark == Self.mark(50))
    }

    /// (what the poll read, the events, who is known after) against alice, bob and carol at 100,
    /// polled with the server at 110.
    @Test(
        arguments: [
            ("nothing changed", USNSession.Poll(), [], ["a", "b", "c"]),
            (
                "disabled",
                USNSession.Poll(
                    matched: [.init("a", user("alice", .deactivated), usn: 105, changedAt: 7)], changed: ["a": 105]),
                [.changed(key: "a", before: alice, now: user("alice", .deactivated), changedAt: 7)], ["a", "b", "c"]
            ),
            (
                "same state", USNSession.Poll(matched: [.init("a", alice, usn: 105)], changed: ["a": 105]), [],
                ["a", "b", "c"]
            ),
            (
                "left the filter or base_dn", USNSession.Poll(changed: ["b": 103, "z": 104]),
                [.changed(key: "b", before: bob, now: nil, changedAt: nil)], ["a", "c"]
            ),
            ("changed after the mark: next poll", USNSession.Poll(changed: ["b": 111]), [], ["a", "b", "c"]),
            (
                "deleted", USNSession.Poll(changed: [:], deleted: [.init("c", nil, usn: 107, changedAt: 9)]),
                [.changed(key: "c", before: carol, now: nil, changedAt: 9)], ["a", "b"]
            ),
            ("an unknown tombstone", USNSession.Poll(deleted: [.init("z", nil, usn: 107)]), [], ["a", "b", "c"]),
            (
                "added", USNSession.Poll(matched: [.init("d", user("dave"), usn: 104)], changed: ["d": 104]),
                [.changed(key: "d", before: nil, now: user("dave"), changedAt: nil)], ["a", "b", "c", "d"]
            ),
            (
                "modified then deleted: one change, the later",
                USNSession.Poll(
                    matched: [.init("a", user("alice", .deactivated), usn: 104)], changed: ["a": 104],
                    deleted: [.init("a", nil, usn: 108)]),
                [.changed(key: "a", before: alice, now: nil, changedAt: nil)], ["b", "c"]
            ),
            (
                "added then deleted: nothing",
                USNSession.Poll(
                    matched: [.init("d", user("dave"), usn: 104)], deleted: [.init("d", nil, usn: 108)]), [],
                ["a", "b", "c"]
            ),
            (
                "in USN order, then by key",
                USNSession.Poll(
                    matched: [.init("a", user("alice", .deactivated), usn: 108), .init("d", user("dave"), usn: 104)],
                    changed: ["a": 108, "d": 104, "c": 104]),
                [
                    .changed(key: "c", before: carol, now: nil, changedAt: nil),
                    .changed(key: "d", before: nil, now: user("dave"), changedAt: nil),
                    .changed(key: "a", before: alice, now: user("alice", .deactivated), changedAt: nil),
                ], ["a", "b", "d"]
            ),
            (
                "no readable id: kept", USNSession.Poll(matched: [.init("a", nil, usn: 105)], changed: ["a": 105]), [],
                ["a", "b", "c"]
            ),
            (
                "complete read: the absent are gone",
                USNSession.Poll(
                    matched: [.init("a", alice, usn: 10), .init("c", carol, usn: 30)], complete: true),
                [.changed(key: "b", before: bob, now: nil, changedAt: nil)], ["a", "c"]
            ),
            (
                "complete read: absent but changed after the mark",
                USNSession.Poll(
                    matched: [.init("a", alice, usn: 10), .init("c", carol, usn: 30)], complete: true,
                    changed: ["b": 112]), [],
                ["a", "b", "c"]
            ),
        ] as [(String, USNSession.Poll, [FeedEvent], [String])])
    func poll(_ name: String, _ poll: USNSession.Poll, _ expected: [FeedEvent], _ known: [String]) {
        var s = Self.session()
        #expect(s.apply(poll, at: Self.mark(110)) == expected, "\(name)")
        #expect(s.users.keys.sorted() == known, "\(name)")
        #expect(s.mark == Self.mark(110), "\(name)")
    }

    @Test func anInterruptedPollConcludesNothingAndTheNextSaysResumed() {
        var s = Self.session()
        s.interrupted()
        #expect(s.users.count == 3)
        #expect(s.mark == Self.mark(100))
        #expect(s.step(Self.mark(120)) == .poll(since: 100))
        let events = s.apply(USNSession.Poll(changed: ["b": 103]), at: Self.mark(120))
        #expect(events == [.changed(key: "b", before: Self.bob, now: nil, changedAt: nil), .live(resumed: true)])
        #expect(s.apply(USNSession.Poll(), at: Self.mark(121)) == [])

        var fresh = USNSession()
        fresh.interrupted()  // before the first read: nothing to resume from
        #expect(fresh.step(Self.mark(5)) == .fullRead)
        s.reset()
        #expect(s.users.isEmpty && s.mark == nil && s.step(Self.mark(5)) == .fullRead)
    }

    @Test(
        arguments: [
            ("CN=Users,DC=example,DC=test", "DC=example,DC=test", true),
            ("cn=users, dc=Example, dc=TEST", "DC=example,DC=test", true),
            ("DC=example,DC=test", "DC=example,DC=test", true),
            ("OU=x,DC=child,DC=example,DC=test", "DC=example,DC=test", true),
            ("CN=Users,DC=otherexample,DC=test", "DC=example,DC=test", false),
            ("CN=Users,DC=example,DC=org", "DC=example,DC=test", false),
            ("CN=Users,DC=example,DC=test", "", false),
        ])
    func isWithin(_ dn: String, _ suffix: String, _ expected: Bool) {
        #expect(ActiveDirectoryFeed.isWithin(dn, suffix) == expected)
    }

    @Test(
        arguments: [
            (["B:32:18E2EA80684F11D2B9AA00C04F79F805:CN=Deleted Objects,DC=a,DC=b"], "CN=Deleted Objects,DC=a,DC=b"),
            (
                [
                    "B:32:aa312825768811d1aded00c04fd8d5cd:CN=Computers,DC=a,DC=b",
                    "b:32:18e2ea80684f11d2b9aa00c04f79f805:CN=Gelöschte Objekte,DC=a,DC=b",
                ], "CN=Gelöschte Objekte,DC=a,DC=b"
            ),
            ([], "CN=Deleted Objects,DC=a,DC=b"),
            (["B:32:18E2EA80684F11D2B9AA00C04F79F805:"], "CN=Deleted Objects,DC=a,DC=b"),
        ] as [([String], String)])
    func deletedObjects(_ values: [String], _ expected: String) {
        #expect(ActiveDirectoryFeed.deletedObjectsDN(wellKnownObjects: values, namingContext: "DC=a,DC=b") == expected)
    }

    @Test(
        arguments: [
            ("(objectClass=user)", nil, false),
            ("(&(objectClass=user)(memberOf=CN=k,DC=a))", nil, true),
            ("(memberof:1.2.840.113556.1.4.1941:=CN=k,DC=a)", nil, true),
            ("(objectClass=user)", "(!(MemberOf=CN=ok,DC=a))", true),
        ] as [(String, String?, Bool)])
    func followsMembership(_ filter: String, _ disabled: String?, _ expected: Bool) {
        let settings = LDAPSettings(
            url: "ldap://x", bindDN: nil, bindPassword: nil, baseDN: "DC=a", filter: filter, disabledFilter: disabled)
        #expect(ActiveDirectoryFeed.followsMembership(settings) == expected)
    }
}
