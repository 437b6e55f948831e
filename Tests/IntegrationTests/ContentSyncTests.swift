import SyncCore
import SyncEngine
import Testing

@testable import LDAPDirectory

/// Hex text to bytes ("30 03 0a" → [0x30, 0x03, 0x0a]); spaces ignored.
private func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace }.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map {
        UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)!
    }
}

private let uuidBytes = "8c2e48c76c735e23b5ed260eb94bc491"
private let uuidText = "8c2e48c7-6c73-5e23-b5ed-260eb94bc491"
private let abc: [UInt8] = Array("abc".utf8)

@Suite("RFC 4533 values: encode, parse, UUIDs, times")
struct ContentSyncTests {
    @Test(
        arguments: [
            (ContentSync.Mode.refreshAndPersist, nil, false, "30 03 0a 01 03"),
            (.refreshAndPersist, Array("abc".utf8), false, "30 08 0a 01 03 04 03 616263"),
            (.refreshAndPersist, nil, true, "30 06 0a 01 03 01 01 ff"),
            (.refreshOnly, [], false, "30 05 0a 01 01 04 00"),
            (.refreshOnly, Array("abc".utf8), true, "30 0b 0a 01 01 04 03 616263 01 01 ff"),
        ] as [(ContentSync.Mode, [UInt8]?, Bool, String)])
    func requestValue(_ mode: ContentSync.Mode, _ cookie: [UInt8]?, _ reloadHint: Bool, _ expected: String) {
        #expect(ContentSync.requestValue(mode: mode, cookie: cookie, reloadHint: reloadHint) == hex(expected))
    }

    @Test func aLongCookieIsEncodedWithALongLength() {
        let cookie = [UInt8](repeating: 0x41, count: 300)
        let value = ContentSync.requestValue(mode: .refreshAndPersist, cookie: cookie)
        #expect(value.map { Array($0.prefix(9)) } == hex("30 82 01 33 0a 01 03 04 82"))
        #expect(value?.count == 4 + 3 + 4 + 300)
    }

    @Test(
        arguments: [
            // What slapd 2.5 sent for uid=user000298 (add, no cookie).
            ("30 15 0a 01 01 04 10 " + uuidBytes, ContentSync.StateValue(state: .add, uuid: uuidText, cookie: nil)),
            ("30 1a 0a 01 02 04 10 " + uuidBytes + " 04 03 616263", .init(state: .modify, uuid: uuidText, cookie: abc)),
            ("30 15 0a 01 00 04 10 " + uuidBytes, .init(state: .present, uuid: uuidText, cookie: nil)),
            ("30 15 0a 01 03 04 10 " + uuidBytes, .init(state: .delete, uuid: uuidText, cookie: nil)),
            ("30 14 0a 01 01 04 0f " + String(uuidBytes.dropLast(2)), nil),  // 15-byte UUID
            ("30 16 0a 01 01 04 11 " + uuidBytes + "00", nil),  // 17-byte UUID
            ("30 15 0a 01 04 04 10 " + uuidBytes, nil),  // no such state
            ("30 15 0a 01 ff 04 10 " + uuidBytes, nil),  // negative state
            ("30 15 0a 01 01 04 10 " + String(uuidBytes.dropLast(4)), nil),  // truncated
            ("30 7f 0a 01 01 04 10 " + uuidBytes, nil),  // sequence longer than the value
            ("30 19 0a 01 01 04 10 " + uuidBytes + " 04 7f 6162", nil),  // cookie longer than the value
            ("31 15 0a 01 01 04 10 " + uuidBytes, nil),  // not a SEQUENCE
            ("30 18 0a 01 01 04 10 " + uuidBytes + " 01 01 ff", nil),  // an element that has no place here
            ("30 15 0a 01 01 04 10 " + uuidBytes + " 00", nil),  // a byte after the value
            ("", nil), ("30", nil), ("30 00", nil),
        ] as [(String, ContentSync.StateValue?)])
    func stateControl(_ value: String, _ expected: ContentSync.StateValue?) {
        #expect(ContentSync.state(hex(value)) == expected)
    }

    @Test(
        arguments: [
            ("80 03 616263", ContentSync.Info.newCookie(abc)),
            ("80 00", .newCookie([])),
            ("a1 05 04 03 616263", .refreshDelete(cookie: abc, done: true)),
            ("a1 00", .refreshDelete(cookie: nil, done: true)),
            ("a1 03 01 01 00", .refreshDelete(cookie: nil, done: false)),
            ("a2 08 04 03 616263 01 01 ff", .refreshPresent(cookie: abc, done: true)),
            ("a2 03 01 01 00", .refreshPresent(cookie: nil, done: false)),
            ("a3 17 01 01 ff 31 12 04 10 " + uuidBytes, .idSet(cookie: nil, refreshDeletes: true, uuids: [uuidText])),
            ("a3 02 31 00", .idSet(cookie: nil, refreshDeletes: false, uuids: [])),
            (
                "a3 2b 04 03 616263 31 24 04 10 " + uuidBytes + " 04 10 000102030405060708090a0b0c0d0e0f",
                .idSet(cookie: abc, refreshDeletes: false, uuids: [uuidText, "00010203-0405-0607-0809-0a0b0c0d0e0f"])
            ),
            ("a3 03 01 01 ff", nil),  // no set of UUIDs
            ("a3 13 31 11 04 0f " + String(uuidBytes.dropLast(2)), nil),  // a 15-byte UUID
            ("a3 14 31 ff 04 10 " + uuidBytes, nil),  // set longer than the element
            ("a3 04 31 02 01 00", nil),  // a set member that is not an OCTET STRING
            ("a3 05 31 00 01 01 ff", nil),  // an element after the set
            ("a1 00 00", nil), ("80 03 616263 00", nil), ("a2 03 02 01 00", nil),
            ("a4 00", nil), ("04 03 616263", nil), ("", nil), ("80", nil), ("80 05 6162", nil), ("a1 05 04", nil),
        ] as [(String, ContentSync.Info?)])
    func syncInfo(_ value: String, _ expected: ContentSync.Info?) {
        #expect(ContentSync.info(hex(value)) == expected)
    }

    @Test(
        arguments: [
            // What slapd 2.5 sent at the end of a refreshOnly search.
            (
                "30 39 04 34 " + String(Hex.encode(Array("rid=000,csn=20261207044434.798322Z#000000#000#000000".utf8)))
                    + " 01 01 ff",
                ContentSync.DoneValue(
                    cookie: Array("rid=000,csn=20261207044434.798322Z#000000#000#000000".utf8), refreshDeletes: true)
            ),
            ("30 03 01 01 ff", .init(cookie: nil, refreshDeletes: true)),
            ("30 00", .init(cookie: nil, refreshDeletes: false)),
            ("30 05 04 03 616263", .init(cookie: abc, refreshDeletes: false)),
            ("30 05 04 04 616263", nil), ("30 00 00", nil), ("30 03 02 01 00", nil), ("a1 00", nil), ("", nil),
        ] as [(String, ContentSync.DoneValue?)])
    func syncDone(_ value: String, _ expected: ContentSync.DoneValue?) {
        #expect(ContentSync.done(hex(value)) == expected)
    }

    @Test func cookiesAreBounded() {
        let big = [UInt8](repeating: 0x41, count: ContentSync.maxCookieBytes + 1)
        let ok = [UInt8](repeating: 0x41, count: ContentSync.maxCookieBytes)
        func newCookie(_ c: [UInt8]) -> [UInt8] { [0x80, 0x82, UInt8(c.count >> 8), UInt8(c.count & 0xff)] + c }
        #expect(ContentSync.info(newCookie(big)) == nil)
        #expect(ContentSync.info(newCookie(ok)) == .newCookie(ok))
    }

    @Test func parsersNeverTrapOnCraftedBytes() {
        // Every truncation and every one-byte change of valid values, then random bytes.
        let valid = [
            hex("30 1a 0a 01 02 04 10 " + uuidBytes + " 04 03 616263"),
            hex("a3 2b 04 03 616263 31 24 04 10 " + uuidBytes + " 04 10 000102030405060708090a0b0c0d0e0f"),
            hex("a2 08 04 03 616263 01 01 ff"), hex("30 05 04 03 616263"),
        ]
        var inputs: [[UInt8]] = []
        for value in valid {
            for n in 0...value.count { inputs.append(Array(value.prefix(n))) }
            for i in value.indices {
                for byte: UInt8 in [0x00, 0x01, 0x7f, 0x80, 0x81, 0x84, 0xff] {
                    var changed = value
                    changed[i] = byte
                    inputs.append(changed)
                }
            }
        }
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<3000 {
            let count = Int(next() % 48)
            let start: [UInt8] = [[0x30], [0x80], [0xa1], [0xa2], [0xa3]][Int(next() % 5)]
            inputs.append(start + (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) })
        }
        for input in inputs {
            _ = ContentSync.state(input)
            _ = ContentSync.info(input)
            _ = ContentSync.done(input)
        }
        #expect(inputs.count > 3000)
    }

    @Test(arguments: [
        (Array(0..<16) as [UInt8], "00010203-0405-0607-0809-0a0b0c0d0e0f" as String?),
        (hex(uuidBytes), uuidText), (hex("ffffffffffffffffffffffffffffffff"), "ffffffff-ffff-ffff-ffff-ffffffffffff"),
        (Array(0..<15), nil), (Array(0..<17), nil), ([], nil),
    ])
    func uuidString(_ bytes: [UInt8], _ expected: String?) {
        #expect(ContentSync.uuidString(bytes) == expected)
    }

    @Test(
        arguments: [
            ("20261207044434Z", 1_796_618_674 as Int64?), ("20261207044434.798322Z", 1_796_618_674),
            ("202612070444Z", 1_796_618_640),
            ("2026120704Z", 1_796_616_000), ("20261207054434+0100", 1_796_618_674),
            ("20261207034434-01", 1_796_618_674),
            ("20261207044434", nil), ("20261307044434Z", nil), ("20261207244434Z", nil), ("20261207046034Z", nil),
            ("20261207044434.Z", nil), ("20261207044434Zx", nil), ("00001207044434Z", nil), ("garbage", nil), ("", nil),
            ("2026120704443\u{0}Z", nil),
        ] as [(String, Int64?)])
    func generalizedTime(_ text: String, _ expected: Int64?) {
        #expect(LDAPValue.generalizedTime(Array(text.utf8)) == expected)
    }
}

@Suite("RFC 4533 client state: refresh, persist, resume")
struct SyncSessionTests {
    static func user(_ name: String, _ state: DirectoryUser.State = .active) -> DirectoryUser {
        DirectoryUser(id: UserID("id-" + name), username: name, state: state)
    }
    let a = Self.user("a"), b = Self.user("b"), c = Self.user("c")
    let cookie1: [UInt8] = Array("c1".utf8), cookie2: [UInt8] = Array("c2".utf8)

    /// A session that went live with a and b known, at cookie1.
    func liveSession() -> SyncSession {
        var s = SyncSession()
        #expect(s.begin().isEmpty)
        #expect(s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: nil).isEmpty)
        #expect(s.entry(.add, key: "kb", user: b, changedAt: nil, cookie: nil).isEmpty)
        #expect(s.info(.refreshPresent(cookie: cookie1, done: true)) == [.live(resumed: false)])
        return s
    }

    @Test func theFirstRefreshIsSilentThenLive() {
        let s = liveSession()
        #expect(s.users == ["ka": a, "kb": b])
        #expect(s.cookie == cookie1)
        #expect(s.phase == .persisting)
    }

    @Test func persistChangesCarryBeforeAndNow() {
        var s = liveSession()
        let left = DirectoryUser(
            id: a.id, username: "a", state: .deactivated, deactivationReason: "matches disabled_filter")
        #expect(
            s.entry(.modify, key: "ka", user: left, changedAt: 5, cookie: cookie2) == [
                .changed(key: "ka", before: a, now: left, changedAt: 5)
            ])
        #expect(
            s.entry(.add, key: "kc", user: c, changedAt: 6, cookie: nil) == [
                .changed(key: "kc", before: nil, now: c, changedAt: 6)
            ])
        #expect(
            s.entry(.delete, key: "kb", user: nil, changedAt: nil, cookie: nil) == [
                .changed(key: "kb", before: b, now: nil, changedAt: nil)
            ])
        // A change to attributes we do not model, an unknown delete, an unreadable entry: nothing.
        #expect(s.entry(.modify, key: "kc", user: c, changedAt: 7, cookie: nil).isEmpty)
        #expect(s.entry(.delete, key: "kz", user: nil, changedAt: nil, cookie: nil).isEmpty)
        #expect(s.entry(.modify, key: "kc", user: nil, changedAt: nil, cookie: nil).isEmpty)
        #expect(
            s.info(.idSet(cookie: nil, refreshDeletes: true, uuids: ["kc"])) == [
                .changed(key: "kc", before: c, now: nil, changedAt: nil)
            ])
        #expect(s.users == ["ka": left])
        #expect(s.cookie == cookie2)
    }

    @Test func aResumedRefreshInDeleteModeDeliversOnlyWhatChanged() {
        var s = liveSession()
        s.interrupted()
        #expect(s.begin().isEmpty)
        #expect(s.resuming)
        #expect(s.entry(.add, key: "kc", user: c, changedAt: 9, cookie: nil).isEmpty)
        #expect(s.info(.idSet(cookie: nil, refreshDeletes: true, uuids: ["kb"])).isEmpty)
        #expect(s.entry(.delete, key: "ka", user: nil, changedAt: nil, cookie: nil).isEmpty)
        #expect(
            s.info(.refreshDelete(cookie: cookie2, done: true)) == [
                .changed(key: "kc", before: nil, now: c, changedAt: 9),
                .changed(key: "kb", before: b, now: nil, changedAt: nil),
                .changed(key: "ka", before: a, now: nil, changedAt: nil), .live(resumed: true),
            ])
        #expect(s.users == ["kc": c])
        #expect(s.cookie == cookie2)
    }

    @Test func aResumedPresentPhaseDeletesWhatItDidNotName() {
        var s = liveSession()
        s.interrupted()
        _ = s.begin()
        let b2 = DirectoryUser(id: b.id, username: "b2")
        #expect(s.info(.idSet(cookie: nil, refreshDeletes: false, uuids: ["kz"])).isEmpty)
        #expect(s.entry(.add, key: "kb", user: b2, changedAt: nil, cookie: nil).isEmpty)
        // ka was not named: gone. kb changed. Nothing else is concluded.
        #expect(
            s.info(.refreshPresent(cookie: cookie2, done: true)) == [
                .changed(key: "kb", before: b, now: b2, changedAt: nil),
                .changed(key: "ka", before: a, now: nil, changedAt: nil),
                .live(resumed: true),
            ])
        #expect(s.users == ["kb": b2])
    }

    @Test func aPresentPhaseWithEveryoneNamedDeletesNothing() {
        var s = liveSession()
        s.interrupted()
        _ = s.begin()
        #expect(s.entry(.present, key: "ka", user: nil, changedAt: nil, cookie: nil).isEmpty)
        #expect(s.info(.idSet(cookie: nil, refreshDeletes: false, uuids: ["kb"])).isEmpty)
        #expect(s.info(.refreshPresent(cookie: nil, done: false)).isEmpty)  // present phase over, delete phase next
        #expect(s.info(.refreshDelete(cookie: nil, done: true)) == [.live(resumed: true)])
        #expect(s.users == ["ka": a, "kb": b])
        #expect(s.cookie == cookie1)  // none sent: the old one stays
    }

    @Test func anInterruptedRefreshConcludesNothing() {
        var s = liveSession()
        s.interrupted()
        _ = s.begin()
        _ = s.entry(.delete, key: "ka", user: nil, changedAt: nil, cookie: nil)
        _ = s.info(.idSet(cookie: cookie2, refreshDeletes: true, uuids: ["kb"]))
        s.interrupted()  // result 4, a dropped connection, a timeout
        #expect(s.users == ["ka": a, "kb": b])
        #expect(s.cookie == cookie1)
        // Not even a present phase ended by a Done without its control.
        _ = s.begin()
        #expect(s.done(nil).isEmpty)
        #expect(s.users == ["ka": a, "kb": b])
    }

    @Test func aFirstRefreshThatBreaksLeavesNothingKnown() {
        var s = SyncSession()
        _ = s.begin()
        _ = s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: nil)
        s.interrupted()
        #expect(s.users.isEmpty && s.cookie == nil)
        #expect(s.begin().isEmpty)  // never live: no refreshRequired
        #expect(!s.resuming)
    }

    @Test func anEmptyCookieInAResumedRefreshMeansTheServerLostOurs() {
        var s = liveSession()
        s.interrupted()
        _ = s.begin()
        _ = s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: nil)
        let events = s.info(.refreshDelete(cookie: [], done: true))
        #expect(events.count == 1)
        if case .refreshRequired = events.first {} else { Issue.record("\(events)") }
        #expect(s.users.isEmpty && s.cookie == nil)
        #expect(s.begin().isEmpty && !s.resuming)
    }

    @Test func noCookieToResumeFromAfterLiveIsARefreshRequired() {
        var s = SyncSession()
        _ = s.begin()
        _ = s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: nil)
        #expect(s.info(.refreshDelete(cookie: nil, done: true)) == [.live(resumed: false)])  // no cookie given
        s.interrupted()
        let events = s.begin()
        if case .refreshRequired = events.first {} else { Issue.record("\(events)") }
        #expect(s.users.isEmpty)
        _ = s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: nil)
        #expect(s.info(.refreshDelete(cookie: cookie1, done: true)) == [.live(resumed: false)])
    }

    @Test(arguments: [(false, ["ka", "kc"]), (true, ["kb", "kc"])] as [(Bool, Set<String>)])
    func aDoneControlEndsTheRefresh(_ refreshDeletes: Bool, _ expected: Set<String>) {
        // refreshDeletes FALSE: it was a present phase (kb not named: gone); TRUE: deletions were sent.
        var s = liveSession()
        s.interrupted()
        _ = s.begin()
        _ = s.entry(.present, key: "ka", user: nil, changedAt: nil, cookie: nil)
        _ = s.entry(.add, key: "kc", user: c, changedAt: nil, cookie: nil)
        if refreshDeletes { _ = s.entry(.delete, key: "ka", user: nil, changedAt: nil, cookie: nil) }
        let events = s.done(.init(cookie: cookie2, refreshDeletes: refreshDeletes))
        #expect(events.last == .live(resumed: true))
        #expect(Set(s.users.keys) == expected)
        #expect(s.phase == .idle)
        #expect(s.cookie == cookie2)
    }

    @Test func aFreshRefreshThatEndsEarlyLeavesNothingKnown() {
        for end in ["interrupted", "done without the control"] {
            var s = SyncSession()
            #expect(s.begin().isEmpty)
            _ = s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: cookie1)
            _ = s.entry(.add, key: "kb", user: b, changedAt: nil, cookie: nil)
            #expect(s.hasStagedActive)
            if end == "interrupted" { s.interrupted() } else { #expect(s.done(nil).isEmpty) }
            #expect(s.users.isEmpty && s.cookie == nil, "\(end)")
            #expect(!s.hasStagedActive)
            #expect(s.footprint == 0)
            // The next search starts fresh again and goes live silently.
            #expect(s.begin().isEmpty)
            _ = s.entry(.add, key: "kc", user: c, changedAt: nil, cookie: nil)
            #expect(s.info(.refreshPresent(cookie: cookie2, done: true)) == [.live(resumed: false)])
            #expect(s.users == ["kc": c])
        }
    }

    @Test func disabledFilterMarksStagedActiveEntries() {
        var s = SyncSession()
        _ = s.begin()
        let locked = Self.user("l", .deactivated)
        _ = s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: nil)
        _ = s.entry(.add, key: "kl", user: locked, changedAt: nil, cookie: nil)
        _ = s.entry(.add, key: "kb", user: b, changedAt: nil, cookie: nil)
        #expect(s.stagedActiveKeys == ["ka", "kb"])
        s.markDisabled(["kb", "kl", "kz"])
        _ = s.finishRefresh()
        #expect(s.users["kb"]?.state == .deactivated)
        #expect(s.users["kb"]?.deactivationReason == "matches disabled_filter")
        #expect(s.users["kl"] == locked)
        #expect(s.users["ka"] == a)
    }

    @Test func messagesOutsideASearchChangeNothing() {
        var s = SyncSession()
        #expect(s.entry(.add, key: "ka", user: a, changedAt: nil, cookie: cookie1).isEmpty)
        #expect(s.info(.refreshDelete(cookie: cookie1, done: true)).isEmpty)
        #expect(s.users.isEmpty && s.cookie == nil)
    }
}
