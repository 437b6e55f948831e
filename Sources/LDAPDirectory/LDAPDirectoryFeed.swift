import CLDAP
import Dispatch
import Logging
import SyncCore
import SyncEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Follows an LDAP directory for `idp-sync watch` with the LDAP Content Synchronization Operation
/// (RFC 4533, refreshAndPersist; OpenLDAP's syncprov) on `base_dn` with the source's filter.
///
/// The first refresh fills the feed's map entryUUID → user silently, then `.live(resumed: false)`;
/// every later add, modify or delete (leaving the filter is a delete) is a `.changed` with what the
/// map held before. The latest cookie is kept: after a dropped connection (`.disconnected`, then
/// backoff 0.5 s doubling to 30 s) the search resumes from it, the server sends only what changed
/// (deletions as delete states or syncIdSets, or a present phase whose unnamed entries are gone),
/// then `.live(resumed: true)`. e-syncRefreshRequired (4096), a cookie the server rejects (53 or 2
/// before anything else) or answers with an empty one: `.refreshRequired`, map and cookie dropped,
/// a fresh silent refresh, `.live(resumed: false)`.
///
/// A refresh is applied only when the server says it is done (`SyncSession`): a size limit
/// (result 4; the bind user of a watch needs none), any other non-success, a timeout or a dropped
/// connection during a refresh concludes nothing and is `.disconnected`, retried from the same
/// cookie. `disabled_filter` is evaluated by the server: one paged search `(&(filter)(disabled))`
/// for entryUUIDs after the first refresh (or a resumed one with more than `batchLimit` changes),
/// otherwise `(&(filter)(disabled)(|(entryUUID=…)…))` for the changed entries, on the same
/// connection, before the change is applied. The lookup runs after the sync search is registered,
/// so a later change to the entry arrives as a message of its own.
///
/// Throws only what retrying cannot fix: a bad bind, a server without the sync control, a missing
/// base_dn, a filter the server rejects, a referral. One `follow` at a time per instance.
public final class LDAPDirectoryFeed: DirectoryFeed, Sendable {
    public let settings: LDAPSettings
    private let logger: Logger
    /// The paged source's rules for turning an entry into a user (id, username, deactivation).
    private let reader: LDAPDirectorySource
    private let session = Mutex(SyncSession())
    private let counters = Mutex(Statistics())
    /// Test hook: the cookie the next (re)connect sends instead of the real one.
    let cookieOverride = Mutex<[UInt8]?>(nil)

    static let initialBackoff = 0.5
    static let maxBackoff = 30.0
    /// Silence in the persist phase after which a base search checks that the connection lives
    /// (a half-open TCP connection, a frozen server), answered within `timeout`.
    let idleProbeSeconds: Int
    /// The largest LDAP message accepted from the server.
    static let maxMessageBytes = 64 << 20
    /// Changed entries of a resumed refresh checked with `(|(entryUUID=…)…)` lookups (50 a search)
    /// before one paged `disabled_filter` search is cheaper.
    static let batchLimit = 200

    /// What the feed has read, for logs and tests.
    struct Statistics: Sendable {
        /// Sync searches sent (each connect, and each fresh start after refreshRequired).
        var searches = 0
        /// Entries received during the refresh phase of the latest search (present ones included).
        var refreshEntries = 0
        /// UUIDs named in syncIdSet messages during the refresh phase of the latest search.
        var refreshIDs = 0
        /// Searches other than the sync search (disabled_filter lookups, idle probes).
        var lookups = 0
    }

    public convenience init(settings: LDAPSettings, logger: Logger) {
        self.init(settings: settings, logger: logger, idleProbeSeconds: 30)
    }

    init(settings: LDAPSettings, logger: Logger, idleProbeSeconds: Int) {
        _ = Connection.ignoreOutsideConfiguration
        self.settings = settings
        self.logger = logger
        self.idleProbeSeconds = idleProbeSeconds
        self.reader = LDAPDirectorySource(settings: settings, logger: logger)
    }

    public func follow(
        _ deliver: @escaping @Sendable (FeedEvent) -> Void, shouldStop: @escaping @Sendable () -> Bool
    ) async throws {
        try await followOnOwnThread(deliver, shouldStop)
    }

    /// Test hook: what the feed knows now, by entryUUID.
    func knownUsers() -> [String: DirectoryUser] { session.withLock { $0.users } }

    func statistics() -> Statistics { counters.withLock { $0 } }

    // MARK: - The loop

    private enum Ending {
        case stopped
        /// `.refreshRequired` was delivered; start a fresh search at once.
        case restart
        case disconnected(String, wasLive: Bool)
    }

    /// `follow` on the calling thread (tests run it on a thread of their own, so a busy
    /// cooperative pool cannot keep the feed from starting).
    func followBlocking(_ deliver: @escaping @Sendable (FeedEvent) -> Void, _ shouldStop: @escaping @Sendable () -> Bool) throws {
        var settings = self.settings
        let outer = settings.shouldStop
        let stop: @Sendable () -> Bool = { shouldStop() || outer() }
        settings.shouldStop = stop
        session.withLock { $0 = SyncSession() }
        var backoff = Self.initialBackoff
        while !stop() {
            switch try followOnce(settings, deliver, stop) {
            case .stopped:
                return
            case .restart:
                continue
            case .disconnected(let reason, let wasLive):
                session.withLock { $0.interrupted() }
                if stop() { return }
                logger.warning("ldap feed disconnected", metadata: ["ldap.reason": .string(reason)])
                deliver(.disconnected(reason))
                if wasLive { backoff = Self.initialBackoff }
                if !Self.pause(backoff, stop) { return }
                backoff = min(backoff * 2, Self.maxBackoff)
            }
        }
    }

    /// Sleeps in 0.1 s slices (blocking the calling thread: the feed's own); false when asked to stop.
    static func pause(_ seconds: Double, _ stop: () -> Bool) -> Bool {
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {
            if stop() { return false }
            usleep(100_000)
        }
        return !stop()
    }

    private var attributes: [String] {
        var seen: Set<String> = []
        return
            ([settings.idAttribute, settings.usernameAttribute] + LDAPDirectorySource.stateAttributes + [
                "modifyTimestamp"
            ])
            .filter { seen.insert($0.lowercased()).inserted }
    }

    /// One connection: bind, the sync search, its messages until it ends.
    private func followOnce(
        _ settings: LDAPSettings, _ deliver: @Sendable (FeedEvent) -> Void, _ stop: @Sendable () -> Bool
    ) throws -> Ending {
        let url = settings.url
        let connection = try Connection(unbound: settings)
        defer { connection.close() }
        guard let ld = connection.ld else { return .disconnected("LDAP \(url): no handle", wasLive: false) }
        _ = idpsync_ldap_set_max_incoming(ld, ber_len_t(Self.maxMessageBytes))
        do {
            try connection.establish()
        } catch {
            switch connection.failure {
            case LDAP_USER_CANCELLED: return .stopped
            case LDAP_INVALID_CREDENTIALS, LDAP_INAPPROPRIATE_AUTH, LDAP_CONFIDENTIALITY_REQUIRED: throw error
            default: return .disconnected("\(error)", wasLive: false)
            }
        }
        if let cookie = cookieOverride.withLock({ value in
            defer { value = nil }
            return value
        }) {
            session.withLock { $0.replaceCookie(cookie) }
        }
        let (opening, cookie) = session.withLock { ($0.begin(), $0.cookie) }
        opening.forEach(deliver)
        counters.withLock {
            $0.searches += 1
            $0.refreshEntries = 0
            $0.refreshIDs = 0
        }

        guard let value = ContentSync.requestValue(mode: .refreshAndPersist, cookie: cookie) else {
            return .disconnected("LDAP \(url): cannot encode the sync request control", wasLive: false)
        }
        var control: UnsafeMutablePointer<LDAPControl>? = nil
        var rc = value.withUnsafeBufferPointer { buffer in
            var bv = berval(
                bv_len: ber_len_t(buffer.count),
                bv_val: UnsafeMutableRawPointer(mutating: buffer.baseAddress)?.assumingMemoryBound(to: CChar.self))
            return ldap_control_create(ContentSync.requestOID, 1, &bv, 1, &control)
        }
        guard rc == LDAP_SUCCESS else {
            return .disconnected("\(connection.error(rc, "cannot create the sync request control"))", wasLive: false)
        }
        defer { ldap_control_free(control) }
        var serverControls: [UnsafeMutablePointer<LDAPControl>?] = [control, nil]
        let names = attributes
        var cAttributes: [UnsafeMutablePointer<CChar>?] = names.map { strdup($0) } + [nil]
        defer { for p in cAttributes { free(p) } }
        let filter = LDAPValue.parenthesized(settings.filter)
        var msgid: Int32 = 0
        // No time or size limit of our own: the persist phase lasts as long as the connection.
        rc = ldap_search_ext(
            ld, settings.baseDN, LDAP_SCOPE_SUBTREE, filter, &cAttributes, 0, &serverControls, nil, nil, 0, &msgid)
        guard rc == LDAP_SUCCESS else {
            return .disconnected(
                "\(connection.error(rc, "the sync search of \(settings.baseDN) could not be sent"))", wasLive: false)
        }
        logger.debug(
            "ldap feed searching",
            metadata: ["ldap.base": .string(settings.baseDN), "ldap.resume": .stringConvertible(cookie != nil)])

        var live = false
        var messages = 0
        var lastMessage = ContinuousClock.now
        let refreshDeadline = ContinuousClock.now + .seconds(settings.readDeadlineSeconds)
        func abandon() { ldap_abandon_ext(ld, msgid, nil, nil) }
        /// Delivers events; true when they end this search (`.refreshRequired`).
        func emit(_ events: [FeedEvent]) -> Bool {
            var restart = false
            for event in events {
                if case .live(let resumed) = event {
                    live = true
                    let known = session.withLock { $0.entries.count }
                    let stats = statistics()
                    logger.info(
                        "ldap feed live",
                        metadata: [
                            "ldap.resumed": .stringConvertible(resumed), "ldap.entries": .stringConvertible(known),
                            "ldap.refresh_entries": .stringConvertible(stats.refreshEntries),
                        ])
                }
                if case .refreshRequired(let reason) = event {
                    logger.warning("ldap feed refresh required", metadata: ["ldap.reason": .string(reason)])
                    restart = true
                }
                deliver(event)
            }
            return restart
        }

        while true {
            var message: OpaquePointer? = nil
            var wait = timeval(tv_sec: 0, tv_usec: 500_000)
            let type = ldap_result(ld, msgid, LDAP_MSG_ONE, &wait, &message)
            if type == 0 {
                if stop() {
                    abandon()
                    return .stopped
                }
                let silence = ContinuousClock.now - lastMessage
                if !live {
                    if silence > .seconds(settings.timeoutSeconds) {
                        abandon()
                        return .disconnected(
                            "LDAP \(url): no answer within \(settings.timeoutSeconds)s during the sync refresh of \(settings.baseDN); nothing concluded",
                            wasLive: false)
                    }
                    if ContinuousClock.now > refreshDeadline {
                        abandon()
                        return .disconnected(
                            "LDAP \(url): the sync refresh of \(settings.baseDN) did not finish within read_deadline \(TimeFormat.duration(Int64(settings.readDeadlineSeconds))); nothing concluded",
                            wasLive: false)
                    }
                } else if silence > .seconds(idleProbeSeconds) {
                    if let problem = probe(connection, settings) {
                        abandon()
                        return .disconnected(problem, wasLive: true)
                    }
                    lastMessage = ContinuousClock.now
                }
                continue
            }
            guard type > 0, let message else {
                let code = idpsync_ldap_result_code(ld)
                if code == LDAP_USER_CANCELLED || stop() { return .stopped }
                return .disconnected(
                    "\(connection.error(code, "the sync search of \(settings.baseDN) ended"))", wasLive: live)
            }
            defer { ldap_msgfree(message) }
            lastMessage = ContinuousClock.now
            messages += 1
            do {
                switch UInt(type) {
                case UInt(LDAP_RES_SEARCH_ENTRY):
                    if try handleEntry(connection, message, names, settings, emit) { return .restart }
                case UInt(LDAP_RES_INTERMEDIATE):
                    if try handleInfo(connection, message, settings, emit) { return .restart }
                case UInt(LDAP_RES_SEARCH_REFERENCE):
                    abandon()
                    throw SourceError(
                        "LDAP \(url): a continuation reference arrived in the sync search (part of \(settings.baseDN) lives on another server); use a base_dn the server holds entirely"
                    )
                case UInt(LDAP_RES_SEARCH_RESULT):
                    return try handleResult(
                        connection, message, settings, sentCookie: cookie != nil, messages: messages, live: live, emit)
                default:
                    break
                }
            } catch let problem as FeedProblem {
                abandon()
                return .disconnected(problem.description, wasLive: live)
            }
            if session.withLock({ $0.footprint }) > Connection.maxEntries {
                abandon()
                throw SourceError(
                    "LDAP \(url): more than \(Connection.maxEntries) entries under \(settings.baseDN); refusing to follow on"
                )
            }
        }
    }

    /// A problem with this connection or what the server sent on it: reconnect, conclude nothing.
    private struct FeedProblem: Error, CustomStringConvertible {
        var description: String
    }

    /// One entry with its Sync State control. Returns true when the search must start over.
    private func handleEntry(
        _ connection: Connection, _ message: OpaquePointer, _ names: [String], _ settings: LDAPSettings,
        _ emit: ([FeedEvent]) -> Bool
    ) throws -> Bool {
        // The controls first: walking the entry decodes it in place (see `walkEntry`).
        let state = syncState(connection, message)
        let (dn, values) = connection.entryValues(message, attributes: names)
        guard let state else {
            throw FeedProblem(
                description:
                    "LDAP \(settings.url): entry \(dn) came without a readable Sync State control; nothing concluded")
        }
        let phase = session.withLock { $0.phase }
        if phase == .refreshing {
            counters.withLock { $0.refreshEntries += 1 }
            // A modify only exists in the persist phase: the refresh is over, whatever the server said.
            if state.state == .modify {
                try evaluateStaged(connection, settings)
                if emit(session.withLock { $0.finishRefresh() }) { return true }
            }
        }
        var user: DirectoryUser? = nil
        if state.state == .add || state.state == .modify {
            user = reader.user(values)
            if user == nil {
                logger.warning(
                    "ldap feed entry without a readable id; kept as it was",
                    metadata: ["ldap.dn": .string(dn), "ldap.id_attribute": .string(settings.idAttribute)])
            }
            if let found = user, found.state == .active, session.withLock({ $0.phase }) == .persisting,
                try !disabledKeys(connection, settings, among: [state.uuid]).isEmpty
            {
                user = Self.disabled(found)
            }
        }
        let changedAt = values["modifytimestamp"]?.first.flatMap(LDAPValue.generalizedTime).map(Double.init)
        return emit(
            session.withLock {
                $0.entry(state.state, key: state.uuid, user: user, changedAt: changedAt, cookie: state.cookie)
            })
    }

    /// A Sync Info intermediate message (others are ignored). Returns true when the search must start over.
    private func handleInfo(
        _ connection: Connection, _ message: OpaquePointer, _ settings: LDAPSettings, _ emit: ([FeedEvent]) -> Bool
    ) throws -> Bool {
        guard let ld = connection.ld else { return false }
        var oid: UnsafeMutablePointer<CChar>? = nil
        var data: UnsafeMutablePointer<berval>? = nil
        let rc = ldap_parse_intermediate(ld, message, &oid, &data, nil, 0)
        defer {
            if let oid { ldap_memfree(oid) }
            if let data { ber_bvfree(data) }
        }
        guard rc == LDAP_SUCCESS else {
            throw FeedProblem(
                description: "\(connection.error(rc, "cannot parse an intermediate message of the sync search"))")
        }
        guard let oid, String(cString: oid) == ContentSync.infoOID else { return false }
        guard let data, let info = ContentSync.info(ContentSync.bytes(data.pointee)) else {
            throw FeedProblem(
                description: "LDAP \(settings.url): a malformed Sync Info message arrived; nothing concluded")
        }
        let phase = session.withLock { $0.phase }
        if phase == .refreshing, case .idSet(_, _, let uuids) = info {
            counters.withLock { $0.refreshIDs += uuids.count }
        }
        if phase == .refreshing && info.refreshDone { try evaluateStaged(connection, settings) }
        return emit(session.withLock { $0.info(info) })
    }

    /// The end of the sync search.
    private func handleResult(
        _ connection: Connection, _ message: OpaquePointer, _ settings: LDAPSettings, sentCookie: Bool, messages: Int,
        live: Bool, _ emit: ([FeedEvent]) -> Bool
    ) throws -> Ending {
        guard let ld = connection.ld else { return .disconnected("LDAP \(settings.url): no handle", wasLive: live) }
        var code: Int32 = 0
        var text: UnsafeMutablePointer<CChar>? = nil
        var controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>? = nil
        let rc = ldap_parse_result(ld, message, &code, nil, &text, nil, &controls, 0)
        defer {
            if let text { ldap_memfree(text) }
            if let controls { ldap_controls_free(controls) }
        }
        guard rc == LDAP_SUCCESS else {
            return .disconnected("\(connection.error(rc, "cannot parse the end of the sync search"))", wasLive: live)
        }
        let serverText = TextEscape.bounded(text.map { String(cString: $0) } ?? "")
        var what =
            "the sync search of \(settings.baseDN) ended with result \(code) (\(String(cString: ldap_err2string(code))))"
        if !serverText.isEmpty { what += ": \(serverText)" }
        let head = "LDAP \(settings.url): \(what)"

        if code == LDAP_SUCCESS {
            var done: ContentSync.DoneValue? = nil
            if let found = ldap_control_find(ContentSync.doneOID, controls, nil), found.pointee.ldctl_value.bv_len > 0 {
                done = ContentSync.done(ContentSync.bytes(found.pointee.ldctl_value))
                if done == nil {
                    return .disconnected(
                        "\(head); its Sync Done control is malformed; nothing concluded", wasLive: live)
                }
            } else if ldap_control_find(ContentSync.doneOID, controls, nil) != nil {
                done = ContentSync.DoneValue(cookie: nil, refreshDeletes: false)
            }
            if session.withLock({ $0.phase }) == .refreshing && done != nil { try evaluateStaged(connection, settings) }
            let events = session.withLock { $0.done(done) }
            let reachedLive = live || events.contains { if case .live = $0 { true } else { false } }
            if emit(events) { return .restart }
            return .disconnected("\(head); resuming from the cookie", wasLive: reachedLive)
        }
        if code == ContentSync.refreshRequiredCode
            || (sentCookie && messages == 1 && (code == LDAP_UNWILLING_TO_PERFORM || code == LDAP_PROTOCOL_ERROR))
        {
            guard sentCookie else { return .disconnected(head, wasLive: live) }
            session.withLock { $0.reset() }
            _ = emit([
                .refreshRequired(
                    code == ContentSync.refreshRequiredCode ? head : "\(head) (the server rejected the cookie)")
            ])
            return .restart
        }
        switch code {
        case LDAP_UNAVAILABLE_CRITICAL_EXTENSION:
            throw SourceError(
                "\(head); the server does not offer LDAP Content Synchronization (RFC 4533): OpenLDAP needs the syncprov overlay on this database"
            )
        case LDAP_NO_SUCH_OBJECT:
            throw SourceError("\(head); check base_dn")
        case LDAP_FILTER_ERROR:
            throw SourceError(
                "\(head); filter \(LDAPValue.parenthesized(settings.filter)) is not a valid LDAP filter (RFC 4515)")
        case LDAP_INSUFFICIENT_ACCESS, LDAP_INVALID_DN_SYNTAX, LDAP_REFERRAL:
            throw SourceError("\(head); check base_dn and the bind user's rights (referrals are not followed)")
        case LDAP_SIZELIMIT_EXCEEDED:
            return .disconnected(
                "\(head): an incomplete read, nothing concluded; the bind user of a watch needs no size limit (slapd: limits … size=unlimited)",
                wasLive: live)
        default:
            return .disconnected(
                live ? "\(head); resuming from the cookie" : "\(head); nothing concluded", wasLive: live)
        }
    }

    // MARK: - Helpers

    /// The Sync State control of an entry, or nil when it has none or a malformed one.
    private func syncState(_ connection: Connection, _ message: OpaquePointer) -> ContentSync.StateValue? {
        guard let ld = connection.ld else { return nil }
        var controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>? = nil
        guard ldap_get_entry_controls(ld, message, &controls) == LDAP_SUCCESS, let controls else { return nil }
        defer { ldap_controls_free(controls) }
        guard let found = ldap_control_find(ContentSync.stateOID, controls, nil) else { return nil }
        return ContentSync.state(ContentSync.bytes(found.pointee.ldctl_value))
    }

    private static func disabled(_ user: DirectoryUser) -> DirectoryUser {
        var user = user
        user.state = .deactivated
        user.deactivationReason = "matches disabled_filter"
        return user
    }

    /// Before a refresh is applied: which of its changed entries match `disabled_filter`.
    private func evaluateStaged(_ connection: Connection, _ settings: LDAPSettings) throws {
        guard settings.disabledFilter != nil else { return }
        // A fresh refresh asks for every disabled entry; a resumed one for its few changed ones.
        let (any, resuming, keys) = session.withLock { s in (s.hasStagedActive, s.resuming, s.resuming ? s.stagedActiveKeys : []) }
        guard any else { return }
        let disabled = try disabledKeys(
            connection, settings, among: !resuming || keys.count > Self.batchLimit ? nil : keys)
        session.withLock { $0.markDisabled(disabled) }
    }

    /// The entryUUIDs (lowercased) of entries that match the filter and `disabled_filter`: among
    /// `keys`, or all of them for nil. A failed search is a `FeedProblem` (reconnect, nothing applied).
    private func disabledKeys(_ connection: Connection, _ settings: LDAPSettings, among keys: [String]?) throws -> Set<
        String
    > {
        guard let disabledFilter = settings.disabledFilter else { return [] }
        let base = "\(LDAPValue.parenthesized(settings.filter))\(LDAPValue.parenthesized(disabledFilter))"
        var filters: [String] = []
        if let keys {
            var start = 0
            while start < keys.count {
                let chunk = keys[start..<min(start + 50, keys.count)]
                let any = chunk.map { "(entryUUID=\(LDAPValue.escapeFilter($0)))" }.joined()
                filters.append("(&\(base)(|\(any)))")
                start += 50
            }
        } else {
            filters = ["(&\(base))"]
        }
        var found: Set<String> = []
        for filter in filters {
            counters.withLock { $0.lookups += 1 }
            do {
                try connection.pagedSearch(filter: filter, attributes: ["entryUUID"]) { _, values in
                    if let raw = values["entryuuid"]?.first, let text = String(validating: raw, as: UTF8.self) {
                        found.insert(text.lowercased())
                    }
                }
            } catch let error as SourceError {
                throw FeedProblem(description: "\(error.description) (disabled_filter lookup; nothing concluded)")
            }
        }
        return found
    }

    /// After a silence in the persist phase: a base search proves the connection still answers.
    /// Returns the problem, or nil.
    private func probe(_ connection: Connection, _ settings: LDAPSettings) -> String? {
        guard let ld = connection.ld else { return "LDAP \(settings.url): no handle" }
        counters.withLock { $0.lookups += 1 }
        var none: [UnsafeMutablePointer<CChar>?] = [strdup("1.1"), nil]
        defer { free(none[0]) }
        var limit = timeval(tv_sec: settings.timeoutSeconds, tv_usec: 0)
        var msgid: Int32 = 0
        var rc = ldap_search_ext(
            ld, settings.baseDN, LDAP_SCOPE_BASE, "(objectClass=*)", &none, 0, nil, nil, &limit, 1, &msgid)
        if rc == LDAP_SUCCESS { rc = Connection.awaitResult(ld, msgid, settings: settings) }
        guard rc == LDAP_SUCCESS || rc == LDAP_USER_CANCELLED else {
            return "\(connection.error(rc, "the connection of the sync search stopped answering"))"
        }
        return nil
    }
}

/// A feed that can follow on the calling thread: each `follow` is this on a `DedicatedThread`.
protocol BlockingFollow {
    func followBlocking(_ deliver: @escaping @Sendable (FeedEvent) -> Void, _ shouldStop: @escaping @Sendable () -> Bool) throws
}

extension BlockingFollow {
    /// `follow` for every LDAP feed: `followBlocking` on a thread of its own for as long as the feed
    /// lives (a dispatch queue would hold one of the few threads libdispatch runs blocking work on,
    /// for hours, and starve everything else queued), with SIGPIPE blocked there (libldap writes
    /// without MSG_NOSIGNAL).
    func followOnOwnThread(
        _ deliver: @escaping @Sendable (FeedEvent) -> Void, _ shouldStop: @escaping @Sendable () -> Bool
    ) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            DedicatedThread.start {
                continuation.resume(with: Result { try withSIGPIPEBlocked { try self.followBlocking(deliver, shouldStop) } })
            }
        }
    }
}

extension LDAPDirectoryFeed: BlockingFollow {}
extension ActiveDirectoryFeed: BlockingFollow {}
extension LDAPFeedSelector: BlockingFollow {}

/// Runs a closure on a new detached POSIX thread (no Foundation in the sources).
enum DedicatedThread {
    final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func start(_ body: @escaping () -> Void) {
        let work = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            work.body()
            return nil
        }, work)
        if rc == 0 {
            pthread_detach(thread)
        } else {
            // No thread to be had: run here rather than never.
            Unmanaged<Work>.fromOpaque(work).takeRetainedValue().body()
        }
    }
}
