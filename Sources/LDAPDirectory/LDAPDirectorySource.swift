import CLDAP
import Dispatch
import Logging
import SyncCore
import SyncEngine

#if canImport(Glibc)
import Glibc
#endif

/// Reads every entitled user from an LDAP directory with the paged results control (RFC 2696).
///
/// Fails closed (docs/operations.md): the read is a snapshot only if every page ended with result 0,
/// the last cookie came back empty and no referral or continuation reference arrived. libldap's
/// blocking calls run on a serial queue of their own, never on the cooperative pool.
public final class LDAPDirectorySource: DirectorySource, @unchecked Sendable {
    public let settings: LDAPSettings
    /// objectGUID is binary and rendered as a GUID; any other id attribute is text.
    let idIsObjectGUID: Bool
    private let logger: Logger
    private let progress: (@Sendable (String) -> Void)?
    let queue = DispatchQueue(label: "idp-sync.ldap")

    /// The ppolicy value that means "locked by an administrator" (not a lockout after failed binds).
    static let administrativeLock = "000001010000Z"
    static let lockAttribute = "pwdAccountLockedTime"
    /// Active Directory: bit 0x2 (ACCOUNTDISABLE) of userAccountControl.
    static let adControlAttribute = "userAccountControl"
    /// 389-ds / Red Hat Directory Server: nsAccountLock: TRUE.
    static let nsLockAttribute = "nsAccountLock"
    static let stateAttributes = [lockAttribute, adControlAttribute, nsLockAttribute]

    /// Why an entry counts as disabled in the IdP, or nil (docs/report.md). A ppolicy lockout
    /// timestamp (failed binds) is not a deactivation.
    static func deactivation(_ values: [String: [[UInt8]]]) -> String? {
        deactivation(
            lock: values[lockAttribute.lowercased()], accountControl: values[adControlAttribute.lowercased()],
            nsLock: values[nsLockAttribute.lowercased()])
    }

    static func deactivation(lock: [[UInt8]]?, accountControl: [[UInt8]]?, nsLock: [[UInt8]]?) -> String? {
        if lock?.contains(where: { String(decoding: $0, as: UTF8.self) == administrativeLock }) == true {
            return "ppolicy administrative lock"
        }
        if let uac = accountControl?.first.flatMap({ Int64(String(decoding: $0, as: UTF8.self)) }), uac & 0x2 != 0 {
            return "userAccountControl ACCOUNTDISABLE"
        }
        if nsLock?.contains(where: { String(decoding: $0, as: UTF8.self).lowercased() == "true" }) == true {
            return "nsAccountLock"
        }
        return nil
    }

    /// `progress` gets a line per page (pages, users) when the caller shows progress.
    public init(settings: LDAPSettings, logger: Logger, progress: (@Sendable (String) -> Void)? = nil) {
        _ = Connection.ignoreOutsideConfiguration
        self.settings = settings
        self.idIsObjectGUID = settings.idAttribute.lowercased() == "objectguid"
        self.logger = logger
        self.progress = progress
    }

    public func snapshot() async throws -> DirectorySnapshot {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.read() })
            }
        }
    }

    /// The entry's id as text (binary-safe; objectGUID as a GUID string), or nil.
    func userID(_ values: [String: [[UInt8]]]) -> String? {
        values[settings.idAttribute.lowercased()]?.first.flatMap { LDAPValue.id($0, attribute: settings.idAttribute) }
    }

    /// A user from one entry's values, or nil without a readable id.
    func user(_ values: [String: [[UInt8]]]) -> DirectoryUser? {
        guard let id = userID(values) else { return nil }
        let username = values[settings.usernameAttribute.lowercased()]?.first.flatMap {
            String(validating: $0, as: UTF8.self)
        }
        let reason = Self.deactivation(values)
        return DirectoryUser(
            id: UserID(id), username: username, state: reason == nil ? .active : .deactivated, deactivationReason: reason)
    }

    /// Binds and checks the connection only (for `check-config --connect`).
    public func checkConnection() async throws -> String {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            queue.async {
                continuation.resume(
                    with: Result {
                        let connection = try Connection(settings: self.settings)
                        connection.close()
                    })
            }
        }
        return "\(settings.url): bound as \(settings.bindDN ?? "anonymous")"
    }

    /// Binds, then proves with two bounded searches what a run relies on: `base_dn` exists, the
    /// filter is accepted, and the bind user can read the id and username of an entry it selects.
    public func checkReadiness() async -> [ReadinessCheck] {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: self.readiness()) }
        }
    }

    func readiness() -> [ReadinessCheck] {
        let connection: Connection
        do {
            connection = try Connection(settings: settings)
        } catch {
            return [ReadinessCheck("source", .failed, "\(error)")]
        }
        defer { connection.close() }
        var checks = [ReadinessCheck("source", .ok, "\(settings.url): bound as \(settings.bindDN ?? "anonymous")")]
        do {
            let base = try connection.probe(scope: LDAP_SCOPE_BASE, filter: "(objectClass=*)", attributes: ["1.1"])
            if base.code == LDAP_NO_SUCH_OBJECT {
                let matched = base.matched.map { "; the closest entry the server has is \"\($0)\"" } ?? ""
                checks.append(
                    ReadinessCheck("source", .failed, "base_dn \(settings.baseDN) does not exist on \(settings.url)\(matched)"))
                return checks
            }
            guard base.code == LDAP_SUCCESS, base.first != nil else {
                checks.append(ReadinessCheck("source", .failed, base.describe("reading base_dn \(settings.baseDN)", settings.url)))
                return checks
            }
            checks.append(ReadinessCheck("source", .ok, "base_dn \(settings.baseDN) exists"))
            let filter = LDAPValue.parenthesized(settings.filter)
            let sample = try connection.probe(
                scope: LDAP_SCOPE_SUBTREE, filter: filter, attributes: [settings.idAttribute, settings.usernameAttribute])
            guard sample.code == LDAP_SUCCESS || sample.code == LDAP_SIZELIMIT_EXCEEDED else {
                let what = sample.code == LDAP_FILTER_ERROR ? "filter \(filter) is not a valid LDAP filter (RFC 4515)" : "searching with filter \(filter)"
                checks.append(ReadinessCheck("source", .failed, sample.describe(what, settings.url)))
                return checks
            }
            guard let (dn, values) = sample.first else {
                checks.append(
                    ReadinessCheck(
                        "source", .warning,
                        "filter \(filter) selects no entry under \(settings.baseDN): a run would read 0 users and be refused by min_users"))
                return checks
            }
            var unreadable: [String] = []
            if userID(values) == nil { unreadable.append("id_attribute \(settings.idAttribute)") }
            if values[settings.usernameAttribute.lowercased()]?.first == nil { unreadable.append("username_attribute \(settings.usernameAttribute)") }
            if unreadable.isEmpty {
                checks.append(ReadinessCheck("source", .ok, "filter \(filter) selects entries; \(dn) has a readable \(settings.idAttribute) and \(settings.usernameAttribute)"))
            } else {
                checks.append(
                    ReadinessCheck(
                        "source", .failed,
                        "\(dn) is selected but its \(unreadable.joined(separator: " and ")) cannot be read: check the attribute names and the bind user's read access"))
            }
        } catch {
            checks.append(ReadinessCheck("source", .failed, "\(error)"))
        }
        return checks
    }

    /// What a read asks for, in the order `user(_:_:_:)` takes it.
    var readAttributes: [String] { [settings.idAttribute, settings.usernameAttribute] + Self.stateAttributes }

    /// An entry as a read decodes it: the user (nil without a readable id), and the DN and the
    /// raw id, pointing into the message (for messages; valid until it is freed).
    struct DecodedEntry {
        var user: DirectoryUser?
        var dn = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        var rawID: UnsafeBufferPointer<UInt8>? = nil
    }

    /// A user straight from an entry message, walked once (nothing kept but the user).
    /// `selection` is `readAttributes`.
    func decode(_ message: OpaquePointer, _ connection: Connection, _ selection: AttributeSelection) -> DecodedEntry {
        let guid = idIsObjectGUID
        var entry = DecodedEntry()
        var id: CompactText? = nil, username: String? = nil
        var state: [[[UInt8]]?] = [nil, nil, nil]
        var seen = 0
        connection.walkEntry(message, selection) { entry.dn = $0 } visit: { index, values in
            // The first occurrence of an attribute counts, as ldap_get_values_len would have it.
            guard seen & (1 << index) == 0 else { return }
            seen |= 1 << index
            switch index {
            case 0:
                entry.rawID = values.first
                id = values.first.flatMap { LDAPValue.id($0, objectGUID: guid) }
            case 1: username = values.first.flatMap(String.init(utf8Checking:))
            default: state[index - 2] = values.map(Connection.bytes)
            }
        }
        guard let id else { return entry }
        let reason = Self.deactivation(lock: state[0], accountControl: state[1], nsLock: state[2])
        entry.user = DirectoryUser(
            id: UserID(id), username: username, state: reason == nil ? .active : .deactivated, deactivationReason: reason)
        return entry
    }

    /// The id as matching compares it (`MatchKey.normalize`): a packed UUID is already normalised.
    static func matchKey(_ id: UserID) -> CompactText {
        MatchKey.key(id.value, as: .id)
    }

    static func hash(_ key: CompactText) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(key)
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    /// Two entries with one id: the run stops; the message names the entries that share it.
    struct SharedID: Error {
        var id: UserID
        var raw: [UInt8]
        var dn: String
    }

    private func read() throws -> DirectorySnapshot {
        let connection = try Connection(settings: settings)
        defer { connection.close() }
        let filter = LDAPValue.parenthesized(settings.filter)
        let selection = AttributeSelection(readAttributes)
        var users: [DirectoryUser] = []
        // Two entries with one id stop the read. Only 64-bit hashes of the normalised ids are kept
        // (8 bytes a user); a repeated hash is confirmed against the users read so far.
        var seen: Set<UInt64> = []
        do {
            try connection.pagedSearch(
                filter: filter, attributes: selection.names,
                pageDone: progress.map { report in { page in report("directory: page \(page), \(users.count) users") } }
            ) { (message: OpaquePointer) in
                let entry = self.decode(message, connection, selection)
                guard let user = entry.user else {
                    throw SourceError(
                        "LDAP \(settings.url): entry \(Connection.boundedDN(entry.dn)) has no readable \(settings.idAttribute); check id_attribute and the bind user's read access")
                }
                let key = Self.matchKey(user.id)
                if !seen.insert(Self.hash(key)).inserted, users.contains(where: { Self.matchKey($0.id) == key }) {
                    throw SharedID(id: user.id, raw: entry.rawID.map(Array.init) ?? [], dn: Connection.boundedDN(entry.dn))
                }
                users.append(user)
            }
        } catch let shared as SharedID {
            throw SourceError("LDAP \(settings.url): entries \(sharing(shared, connection, filter)) share \(settings.idAttribute) \(shared.id)")
        }
        if let disabledFilter = settings.disabledFilter {
            var disabled: Set<String> = []
            try connection.pagedSearch(
                filter: "(&\(filter)\(LDAPValue.parenthesized(disabledFilter)))", attributes: [settings.idAttribute]
            ) { _, values in
                if let id = self.userID(values) { disabled.insert(MatchKey.normalize(id, as: .id)) }
            }
            for i in users.indices where users[i].state == .active && disabled.contains(MatchKey.normalize(users[i].id.rawValue, as: .id)) {
                users[i].state = .deactivated
                users[i].deactivationReason = "matches disabled_filter"
            }
        }
        logger.debug("ldap read complete", metadata: ["ldap.users": .stringConvertible(users.count)])
        return DirectorySnapshot(sourceType: "ldap", scope: settings.baseDN, users: users)
    }
}

extension LDAPDirectorySource {
    /// The DNs of the entries that hold `shared`'s id (at most 10), the one that repeated it among them.
    func sharing(_ shared: SharedID, _ connection: Connection, _ filter: String) -> String {
        var dns: [String] = []
        if !shared.raw.isEmpty {
            let equality = "(\(settings.idAttribute)=\(LDAPValue.escapeAllBytes(shared.raw)))"
            try? connection.pagedSearch(filter: "(&\(filter)\(equality))", attributes: ["1.1"]) { dn, _ in
                if dns.count < 10 { dns.append(dn) }
            }
        }
        if !dns.contains(shared.dn) { dns.append(shared.dn) }
        return dns.count > 1 ? dns.joined(separator: " and ") : "\(shared.dn) and an earlier entry"
    }
}

extension LDAPDirectorySource {
    /// Looks one user up by id or username: first with the configured filter, then without it.
    public func lookup(_ value: String, by field: MatchRule.UserField) async throws -> DirectoryLookup {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.lookupNow(value, by: field) })
            }
        }
    }

    private func lookupNow(_ value: String, by field: MatchRule.UserField) throws -> DirectoryLookup {
        let connection = try Connection(settings: settings)
        defer { connection.close() }
        let attribute = field == .id ? settings.idAttribute : settings.usernameAttribute
        let equality = "(\(attribute)=\(LDAPValue.escapeFilter(value)))"
        let filter = LDAPValue.parenthesized(settings.filter)
        var found: DirectoryUser? = nil
        try connection.pagedSearch(
            filter: "(&\(filter)\(equality))",
            attributes: [settings.idAttribute, settings.usernameAttribute] + Self.stateAttributes
        ) { _, values in found = self.user(values) }
        if var user = found {
            if user.state == .active, let disabled = settings.disabledFilter {
                var hit = false
                try connection.pagedSearch(
                    filter: "(&\(filter)\(equality)\(LDAPValue.parenthesized(disabled)))", attributes: ["1.1"]
                ) { _, _ in hit = true }
                if hit {
                    user.state = .deactivated
                    user.deactivationReason = "matches disabled_filter"
                }
            }
            return .present(user)
        }
        var dn: String? = nil
        try connection.pagedSearch(filter: equality, attributes: ["1.1"]) { entryDN, _ in dn = entryDN }
        return dn.map { .outsideFilter(dn: $0) } ?? .absent
    }
}
