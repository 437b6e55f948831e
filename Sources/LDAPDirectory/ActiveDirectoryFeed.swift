import CLDAP
import Dispatch
import Logging
import SyncCore
import SyncEngine
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Follows an Active Directory domain controller for `idp-sync watch` by polling `uSNChanged`
/// (AD has no RFC 4533), every `pollSeconds` on one kept connection.
///
/// The first read fills the feed's map objectGUID → user silently, then `.live(resumed: false)`.
/// It is taken after the rootDSE's `highestCommittedUSN` (the mark) is read, so a change made
/// while it runs is either in it or has a higher USN and comes with the next poll (`USNSession`).
/// Each poll reads the mark again (and the DC's `invocationId`), then, for `uSNChanged>=mark+1`:
/// 1. (only when `filter` or `disabled_filter` names `memberOf`) whether a group changed: a
///    membership change updates the group's `uSNChanged`, never the member's (`memberOf` is a
///    back link), so then the poll reads the whole filter instead of step 2;
/// 2. the entries the filter selects under `base_dn` (with `disabled_filter` evaluated by the
///    server, as the paged source does), each compared with the map: `.changed(before:now:)`;
/// 3. every object of the domain that changed, filter or not (objectGUID and `uSNChanged` only,
///    the domain scope control keeps the other naming contexts out): a known entry among them
///    that step 2 did not return left the filter or `base_dn` (now nil), unless it changed again
///    after the mark was read (then the next poll decides);
/// 4. the tombstones in the Deleted Objects container (Show Deleted control): a known one is
///    `.changed(now: nil)`.
///
/// Fails closed: a poll is applied only when every search of it completed. Any error, a size
/// limit (result 4), a timeout or a stop concludes nothing: `.disconnected`, reconnect with
/// backoff (0.5 s doubling to 30 s), continue from the same mark, then `.live(resumed: true)`.
/// A mark that went back (a restore) or a changed `invocationId` (another DC, a restore):
/// `.refreshRequired`, and a fresh silent read.
///
/// The bind user must be able to list the Deleted Objects container (Domain Admins can; others
/// need List Contents and Read Property on it, `dsacls … /G user:LCRP`): without that right AD
/// returns no tombstones and a deletion is seen only by the next full reconciliation.
/// Throws only what retrying cannot fix: a bad bind, a `base_dn` outside the domain's naming
/// context or missing, a filter the server rejects, a referral. One `follow` at a time.
public final class ActiveDirectoryFeed: DirectoryFeed, Sendable {
    public let settings: LDAPSettings
    public let pollSeconds: Int
    private let logger: Logger
    /// The paged source's rules for turning an entry into a user (id, username, ACCOUNTDISABLE).
    private let reader: LDAPDirectorySource
    private let session = Mutex(USNSession())
    private let counters = Mutex(Statistics())
    /// Test hook: the mark the next poll continues from instead of the real one.
    let markOverride = Mutex<USNSession.Mark?>(nil)

    static let capabilityOID = "1.2.840.113556.1.4.800"
    static let showDeletedOID = "1.2.840.113556.1.4.417"
    static let domainScopeOID = "1.2.840.113556.1.4.1339"
    /// wellKnownObjects GUID of the Deleted Objects container.
    static let deletedObjectsGUID = "18E2EA80684F11D2B9AA00C04F79F805"

    /// What the feed has read, for logs and tests.
    struct Statistics: Sendable {
        /// Complete silent reads (the first, and each after `.refreshRequired`).
        var fullReads = 0
        /// Polls applied.
        var polls = 0
        /// Polls that read the whole filter because a group changed.
        var completePolls = 0
        /// Connections made.
        var connections = 0
    }

    public init(settings: LDAPSettings, pollSeconds: Int, logger: Logger) {
        _ = Connection.ignoreOutsideConfiguration
        self.settings = settings
        self.pollSeconds = max(1, pollSeconds)
        self.logger = logger
        self.reader = LDAPDirectorySource(settings: settings, logger: logger)
    }

    public func follow(
        _ deliver: @escaping @Sendable (FeedEvent) -> Void, shouldStop: @escaping @Sendable () -> Bool
    ) async throws {
        try await followOnOwnThread(deliver, shouldStop)
    }

    /// Test hook: what the feed knows now, by objectGUID.
    func knownUsers() -> [String: DirectoryUser] { session.withLock { $0.users } }

    func statistics() -> Statistics { counters.withLock { $0 } }

    /// Test hook: the mark the feed continues from (nil before the first complete read).
    func currentMark() -> USNSession.Mark? { session.withLock { $0.mark } }

    // MARK: - The loop

    private enum Ending {
        case stopped
        case disconnected(String, wasLive: Bool)
    }

    /// A problem with this connection or one poll: reconnect, conclude nothing.
    private struct FeedProblem: Error, CustomStringConvertible {
        var description: String
    }

    private struct Stopped: Error {}

    /// `follow` on the calling thread (the selector runs it on the thread it probed from).
    func followBlocking(_ deliver: @escaping @Sendable (FeedEvent) -> Void, _ shouldStop: @escaping @Sendable () -> Bool) throws {
        var settings = self.settings
        let outer = settings.shouldStop
        let stop: @Sendable () -> Bool = { shouldStop() || outer() }
        settings.shouldStop = stop
        session.withLock { $0 = USNSession() }
        var backoff = LDAPDirectoryFeed.initialBackoff
        while !stop() {
            switch try followOnce(settings, deliver, stop) {
            case .stopped:
                return
            case .disconnected(let reason, let wasLive):
                session.withLock { $0.interrupted() }
                if stop() { return }
                logger.warning("ad feed disconnected", metadata: ["ldap.reason": .string(reason)])
                deliver(.disconnected(reason))
                if wasLive { backoff = LDAPDirectoryFeed.initialBackoff }
                if !LDAPDirectoryFeed.pause(backoff, stop) { return }
                backoff = min(backoff * 2, LDAPDirectoryFeed.maxBackoff)
            }
        }
    }

    /// Where this domain keeps what the polls read.
    private struct Domain {
        /// The domain's naming context (rootDSE `defaultNamingContext`).
        var namingContext: String
        var deletedObjects: String
    }

    /// One connection: bind, find the domain, then poll until stopped or something fails.
    private func followOnce(
        _ settings: LDAPSettings, _ deliver: @Sendable (FeedEvent) -> Void, _ stop: @Sendable () -> Bool
    ) throws -> Ending {
        let connection = try Connection(unbound: settings)
        defer { connection.close() }
        counters.withLock { $0.connections += 1 }
        do {
            try connection.establish()
        } catch {
            switch connection.failure {
            case LDAP_USER_CANCELLED: return .stopped
            case LDAP_INVALID_CREDENTIALS, LDAP_INAPPROPRIATE_AUTH, LDAP_CONFIDENTIALITY_REQUIRED: throw error
            default: return .disconnected("\(error)", wasLive: false)
            }
        }
        let showDeleted = try Self.control(Self.showDeletedOID, connection)
        defer { ldap_control_free(showDeleted) }
        let domainScope = try Self.control(Self.domainScopeOID, connection)
        defer { ldap_control_free(domainScope) }

        var wasLive = false
        do {
            let domain = try discover(connection, settings)
            while true {
                if stop() { return .stopped }
                let mark = try readMark(connection, settings)
                if let forged = markOverride.withLock({ value in
                    defer { value = nil }
                    return value
                }) {
                    session.withLock { $0.replaceMark(forged) }
                }
                var events: [FeedEvent]
                switch session.withLock({ $0.step(mark) }) {
                case .refreshRequired(let reason):
                    logger.warning("ad feed refresh required", metadata: ["ldap.reason": .string(reason)])
                    session.withLock { $0.reset() }
                    deliver(.refreshRequired("LDAP \(settings.url): \(reason)"))
                    events = try fullRead(connection, settings, mark)
                case .fullRead:
                    events = try fullRead(connection, settings, mark)
                case .poll(let since):
                    events = try poll(connection, settings, domain, since: since, mark: mark, showDeleted, domainScope)
                }
                for event in events {
                    if case .live(let resumed) = event {
                        wasLive = true
                        logger.info(
                            "ad feed live",
                            metadata: [
                                "ldap.resumed": .stringConvertible(resumed),
                                "ldap.entries": .stringConvertible(session.withLock { $0.users.count }),
                                "ldap.usn": .stringConvertible(mark.usn),
                            ])
                    }
                    deliver(event)
                }
                if !LDAPDirectoryFeed.pause(Double(pollSeconds), stop) { return .stopped }
            }
        } catch is Stopped {
            return .stopped
        } catch let problem as FeedProblem {
            return stop() ? .stopped : .disconnected(problem.description, wasLive: wasLive)
        }
    }

    // MARK: - Reads

    /// The whole filter, silently, after `mark` was read.
    private func fullRead(_ connection: Connection, _ settings: LDAPSettings, _ mark: USNSession.Mark) throws
        -> [FeedEvent]
    {
        let entries = try matched(connection, settings, since: nil)
        counters.withLock { $0.fullReads += 1 }
        return session.withLock { $0.filled(entries, at: mark) }
    }

    /// One poll of what changed since `since` (the last mark), all read after `mark`.
    private func poll(
        _ connection: Connection, _ settings: LDAPSettings, _ domain: Domain, since: Int64, mark: USNSession.Mark,
        _ showDeleted: UnsafeMutablePointer<LDAPControl>, _ domainScope: UnsafeMutablePointer<LDAPControl>
    ) throws -> [FeedEvent] {
        let changedSince = "(uSNChanged>=\(since + 1))"
        var found = USNSession.Poll()
        if Self.followsMembership(settings) {
            var groups = 0
            try search(
                connection, settings, "groups changed", base: domain.namingContext,
                filter: "(&(objectClass=group)\(changedSince))", attributes: ["1.1"], controls: [domainScope]
            ) { _, _ in groups += 1 }
            found.complete = groups > 0
        }
        found.matched = try matched(connection, settings, since: found.complete ? nil : since)
        try search(
            connection, settings, "changed objects", base: domain.namingContext, filter: changedSince,
            attributes: ["objectGUID", "uSNChanged"], controls: [domainScope]
        ) { _, values in
            if let entry = usnEntry(values, user: nil) { found.changed[entry.key] = entry.usn }
        }
        try search(
            connection, settings, "deleted objects", base: domain.deletedObjects, scope: LDAP_SCOPE_ONELEVEL,
            filter: "(&(isDeleted=TRUE)\(changedSince))", attributes: ["objectGUID", "uSNChanged", "whenChanged"],
            controls: [showDeleted],
            hint:
                "the bind user must be able to list \(domain.deletedObjects) with the Show Deleted control (Domain Admins can; otherwise grant List Contents and Read Property on it: dsacls \"\(domain.deletedObjects)\" /G DOMAIN\\user:LCRP)"
        ) { _, values in
            if let entry = usnEntry(values, user: nil) { found.deleted.append(entry) }
        }
        counters.withLock {
            $0.polls += 1
            if found.complete { $0.completePolls += 1 }
        }
        if !found.matched.isEmpty || !found.changed.isEmpty || !found.deleted.isEmpty {
            logger.debug(
                "ad feed poll",
                metadata: [
                    "ldap.usn": .stringConvertible(mark.usn), "ldap.matched": .stringConvertible(found.matched.count),
                    "ldap.changed": .stringConvertible(found.changed.count),
                    "ldap.deleted": .stringConvertible(found.deleted.count),
                    "ldap.complete": .stringConvertible(found.complete),
                ])
        }
        return session.withLock { $0.apply(found, at: mark) }
    }

    private var attributes: [String] {
        var seen: Set<String> = []
        return
            ([settings.idAttribute, settings.usernameAttribute] + LDAPDirectorySource.stateAttributes + [
                "objectGUID", "uSNChanged", "whenChanged",
            ]).filter { seen.insert($0.lowercased()).inserted }
    }

    /// The entries the filter selects (changed after `since`, or all), with `disabled_filter`
    /// evaluated by the server.
    private func matched(_ connection: Connection, _ settings: LDAPSettings, since: Int64?) throws
        -> [USNSession.Entry]
    {
        let changed = since.map { "(uSNChanged>=\($0 + 1))" } ?? ""
        let filter = LDAPValue.parenthesized(settings.filter)
        var entries: [USNSession.Entry] = []
        try search(
            connection, settings, "filter", filter: changed.isEmpty ? filter : "(&\(filter)\(changed))",
            attributes: attributes
        ) { dn, values in
            let user = reader.user(values)
            if user == nil {
                logger.warning(
                    "ad feed entry without a readable id; kept as it was",
                    metadata: ["ldap.dn": .string(dn), "ldap.id_attribute": .string(settings.idAttribute)])
            }
            guard let entry = usnEntry(values, user: user) else {
                throw FeedProblem(
                    description:
                        "LDAP \(settings.url): entry \(dn) came without a readable objectGUID and uSNChanged; nothing concluded"
                )
            }
            entries.append(entry)
        }
        guard let disabledFilter = settings.disabledFilter else { return entries }
        var disabled: Set<String> = []
        try search(
            connection, settings, "disabled_filter",
            filter: "(&\(filter)\(LDAPValue.parenthesized(disabledFilter))\(changed))", attributes: ["objectGUID"]
        ) { _, values in
            if let raw = values["objectguid"]?.first, let key = LDAPValue.guidString(raw) { disabled.insert(key) }
        }
        for i in entries.indices where entries[i].user?.state == .active && disabled.contains(entries[i].key) {
            entries[i].user?.state = .deactivated
            entries[i].user?.deactivationReason = "matches disabled_filter"
        }
        return entries
    }

    /// An entry's key, uSNChanged and whenChanged; nil without a readable objectGUID or uSNChanged.
    private func usnEntry(_ values: [String: [[UInt8]]], user: DirectoryUser?) -> USNSession.Entry? {
        guard let raw = values["objectguid"]?.first, let key = LDAPValue.guidString(raw),
            let usn = values["usnchanged"]?.first.flatMap({ Int64(String(decoding: $0, as: UTF8.self)) })
        else { return nil }
        let changedAt = values["whenchanged"]?.first.flatMap(LDAPValue.generalizedTime).map(Double.init)
        return USNSession.Entry(key, user, usn: usn, changedAt: changedAt)
    }

    /// A complete paged search, or a `FeedProblem` (nothing concluded); `Stopped` when asked to
    /// stop; a `SourceError` for what retrying cannot fix.
    private func search(
        _ connection: Connection, _ settings: LDAPSettings, _ what: String, base: String? = nil,
        scope: Int32 = LDAP_SCOPE_SUBTREE, filter: String, attributes: [String],
        controls: [UnsafeMutablePointer<LDAPControl>] = [],
        hint: String = "check base_dn and the bind user's rights (referrals are not followed)",
        entry: (String, [String: [[UInt8]]]) throws -> Void
    ) throws {
        do {
            try connection.pagedSearch(
                base: base, scope: scope, filter: filter, attributes: attributes, controls: controls, entry: entry)
        } catch let error as SourceError {
            if settings.shouldStop() { throw Stopped() }
            switch connection.searchFailure {
            case LDAP_FILTER_ERROR:
                throw SourceError(
                    "\(error.description) (\(what) search \(filter)); check filter and disabled_filter (RFC 4515)")
            case LDAP_NO_SUCH_OBJECT, LDAP_INVALID_DN_SYNTAX, LDAP_INSUFFICIENT_ACCESS, LDAP_REFERRAL,
                LDAP_UNAVAILABLE_CRITICAL_EXTENSION:
                throw SourceError("\(error.description) (\(what) search); \(hint)")
            default:
                throw FeedProblem(description: "\(error.description) (\(what) search); nothing concluded")
            }
        }
    }

    /// The rootDSE's highestCommittedUSN and the DC's invocationId (on its NTDS Settings object).
    private func readMark(_ connection: Connection, _ settings: LDAPSettings) throws -> USNSession.Mark {
        let root = try rootDSE(connection, settings, ["highestCommittedUSN", "dsServiceName"])
        guard let usn = root["highestcommittedusn"]?.first.flatMap({ Int64(String(decoding: $0, as: UTF8.self)) }),
            let service = root["dsservicename"]?.first.flatMap({ String(validating: $0, as: UTF8.self) })
        else {
            throw FeedProblem(
                description:
                    "LDAP \(settings.url): the rootDSE has no highestCommittedUSN or dsServiceName (is this Active Directory?); nothing concluded"
            )
        }
        let ntds = try base(connection, settings, service, ["invocationId"])
        guard let raw = ntds["invocationid"]?.first, let invocation = LDAPValue.guidString(raw) else {
            throw FeedProblem(
                description: "LDAP \(settings.url): \(service) shows no readable invocationId; nothing concluded")
        }
        return USNSession.Mark(invocationID: invocation, usn: usn)
    }

    /// The domain's naming context and its Deleted Objects container; `base_dn` must lie in it.
    private func discover(_ connection: Connection, _ settings: LDAPSettings) throws -> Domain {
        let root = try rootDSE(connection, settings, ["defaultNamingContext"])
        guard let nc = root["defaultnamingcontext"]?.first.flatMap({ String(validating: $0, as: UTF8.self) }) else {
            throw FeedProblem(description: "LDAP \(settings.url): the rootDSE names no defaultNamingContext")
        }
        guard Self.isWithin(settings.baseDN, nc) else {
            throw SourceError(
                "LDAP \(settings.url): base_dn \(settings.baseDN) is not in the domain \(nc) this server holds; the Active Directory feed follows one domain (use a base_dn inside \(nc), or a DC of that domain)"
            )
        }
        let head = try base(connection, settings, nc, ["wellKnownObjects"])
        let known = (head["wellknownobjects"] ?? []).compactMap { String(validating: $0, as: UTF8.self) }
        return Domain(
            namingContext: nc, deletedObjects: Self.deletedObjectsDN(wellKnownObjects: known, namingContext: nc))
    }

    private func rootDSE(_ connection: Connection, _ settings: LDAPSettings, _ attributes: [String]) throws -> [String:
        [[UInt8]]]
    {
        try base(connection, settings, "", attributes)
    }

    /// One entry's attributes by a base search, stop-aware and bounded by `timeout`.
    private func base(_ connection: Connection, _ settings: LDAPSettings, _ dn: String, _ attributes: [String]) throws
        -> [String: [[UInt8]]]
    {
        do {
            return try connection.readEntry(dn, attributes: attributes)
        } catch let error as SourceError {
            if settings.shouldStop() { throw Stopped() }
            throw FeedProblem(description: "\(error.description); nothing concluded")
        }
    }

    // MARK: - Helpers

    /// A control without a value, critical.
    private static func control(_ oid: String, _ connection: Connection) throws -> UnsafeMutablePointer<LDAPControl> {
        var control: UnsafeMutablePointer<LDAPControl>? = nil
        let rc = ldap_control_create(oid, 1, nil, 0, &control)
        guard rc == LDAP_SUCCESS, let control else { throw connection.error(rc, "cannot create control \(oid)") }
        return control
    }

    /// Whether the filters select by group membership, which polling an entry's own uSNChanged
    /// cannot see (`memberOf` is a back link: a membership change updates only the group).
    static func followsMembership(_ settings: LDAPSettings) -> Bool {
        ([settings.filter] + [settings.disabledFilter].compactMap { $0 }).contains {
            $0.lowercased().contains("memberof")
        }
    }

    /// The Deleted Objects container from the domain head's `wellKnownObjects`
    /// (`B:32:18E2EA80684F11D2B9AA00C04F79F805:<dn>`), or `CN=Deleted Objects,<nc>`. Total.
    static func deletedObjectsDN(wellKnownObjects: [String], namingContext: String) -> String {
        let prefix = "b:32:\(deletedObjectsGUID.lowercased()):"
        for value in wellKnownObjects where value.lowercased().hasPrefix(prefix) {
            let dn = String(value.dropFirst(prefix.count))
            if !dn.isEmpty { return dn }
        }
        return "CN=Deleted Objects,\(namingContext)"
    }

    /// Whether `dn` is `suffix` or lies under it, ignoring case and spaces around separators. Total.
    static func isWithin(_ dn: String, _ suffix: String) -> Bool {
        func normalized(_ text: String) -> String {
            var out = ""
            var pendingSpace = false
            for ch in text.lowercased() {
                if ch == " " {
                    pendingSpace = true
                    continue
                }
                if pendingSpace, !out.isEmpty, out.last != ",", out.last != "=", ch != ",", ch != "=" {
                    out.append(" ")
                }
                pendingSpace = false
                out.append(ch)
            }
            return out
        }
        let a = normalized(dn)
        let b = normalized(suffix)
        return !b.isEmpty && (a == b || a.hasSuffix("," + b))
    }
}
