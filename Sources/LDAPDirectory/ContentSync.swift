import CLDAP
import SyncCore

/// The values of RFC 4533 (LDAP Content Synchronization): the Sync Request control we send and the
/// Sync State control, Sync Info message and Sync Done control the server answers with. DER goes
/// through liblber (`ber_printf`/`ber_scanf` via the shims in `CLDAP/shim.h`).
///
/// Total and strict: the parsers return nil for anything malformed (wrong tags, lengths past the
/// value, bytes left over, an entryUUID that is not 16 bytes, a cookie over `maxCookieBytes`),
/// never trap. Deterministic.
enum ContentSync {
    static let requestOID = "1.3.6.1.4.1.4203.1.9.1.1"
    static let stateOID = "1.3.6.1.4.1.4203.1.9.1.2"
    static let doneOID = "1.3.6.1.4.1.4203.1.9.1.3"
    static let infoOID = "1.3.6.1.4.1.4203.1.9.1.4"
    /// The result code e-syncRefreshRequired: the server cannot continue from the cookie.
    static let refreshRequiredCode: Int32 = 4096
    /// The longest cookie accepted (OpenLDAP's are ~60 bytes per server id).
    static let maxCookieBytes = 8192

    enum Mode: Int32 {
        case refreshOnly = 1
        case refreshAndPersist = 3
    }

    /// syncStateValue's state.
    enum State: Int32, Sendable {
        case present = 0
        case add = 1
        case modify = 2
        case delete = 3
    }

    /// The Sync State control of one entry.
    struct StateValue: Equatable {
        var state: State
        /// The entryUUID as a lowercase 8-4-4-4-12 string.
        var uuid: String
        var cookie: [UInt8]?
    }

    /// A Sync Info intermediate message (syncInfoValue).
    enum Info: Equatable {
        case newCookie([UInt8])
        case refreshDelete(cookie: [UInt8]?, done: Bool)
        case refreshPresent(cookie: [UInt8]?, done: Bool)
        case idSet(cookie: [UInt8]?, refreshDeletes: Bool, uuids: [String])

        var cookie: [UInt8]? {
            switch self {
            case .newCookie(let cookie): return cookie
            case .refreshDelete(let cookie, _), .refreshPresent(let cookie, _), .idSet(let cookie, _, _): return cookie
            }
        }

        /// True when the message ends the refresh phase.
        var refreshDone: Bool {
            switch self {
            case .refreshDelete(_, let done), .refreshPresent(_, let done): return done
            case .newCookie, .idSet: return false
            }
        }
    }

    /// The Sync Done control on SearchResultDone.
    struct DoneValue: Equatable {
        var cookie: [UInt8]?
        var refreshDeletes: Bool
    }

    // Tags (ldap.h's are cast macros Swift does not import).
    static let tagCookie: ber_tag_t = 0x04  // OCTET STRING
    static let tagBoolean: ber_tag_t = 0x01
    static let tagSequence: ber_tag_t = 0x30
    static let tagSet: ber_tag_t = 0x31
    static let tagNewCookie: ber_tag_t = 0x80  // [0] IMPLICIT OCTET STRING
    static let tagRefreshDelete: ber_tag_t = 0xa1  // [1] SEQUENCE
    static let tagRefreshPresent: ber_tag_t = 0xa2  // [2] SEQUENCE
    static let tagIDSet: ber_tag_t = 0xa3  // [3] SEQUENCE
    static let lberError = ber_tag_t.max  // LBER_ERROR / LBER_DEFAULT

    /// The DER value of a Sync Request control, or nil if liblber fails (out of memory).
    static func requestValue(mode: Mode, cookie: [UInt8]?, reloadHint: Bool = false) -> [UInt8]? {
        var out: UnsafeMutablePointer<berval>? = nil
        let rc: Int32
        if let cookie {
            rc = cookie.withUnsafeBufferPointer { buffer in
                var value = berval(
                    bv_len: ber_len_t(buffer.count),
                    bv_val: UnsafeMutableRawPointer(mutating: buffer.baseAddress)?.assumingMemoryBound(to: CChar.self))
                return idpsync_sync_request_value(mode.rawValue, &value, reloadHint ? 1 : 0, &out)
            }
        } else {
            rc = idpsync_sync_request_value(mode.rawValue, nil, reloadHint ? 1 : 0, &out)
        }
        guard rc == 0, let out else { return nil }
        defer { ber_bvfree(out) }
        return bytes(out.pointee)
    }

    /// Parses a Sync State control value: SEQUENCE { state ENUMERATED, entryUUID OCTET STRING
    /// (16 bytes), cookie OCTET STRING OPTIONAL }.
    static func state(_ value: [UInt8]) -> StateValue? {
        BERReader.read(value) { reader in
            guard reader.peek() == tagSequence else { return nil }
            var state: ber_int_t = 0
            var uuid = berval(bv_len: 0, bv_val: nil)
            guard idpsync_ber_scan_enum_string(reader.ber, &state, &uuid) != lberError,
                let kind = State(rawValue: state), let id = uuidString(bytes(uuid))
            else { return nil }
            var result = StateValue(state: kind, uuid: id, cookie: nil)
            if reader.remaining > 0, reader.peek() == tagCookie {
                guard let cookie = reader.cookie() else { return nil }
                result.cookie = cookie
            }
            return reader.remaining == 0 ? result : nil
        }
    }

    /// Parses a Sync Info message value (syncInfoValue, a CHOICE of four tagged alternatives).
    static func info(_ value: [UInt8]) -> Info? {
        BERReader.read(value) { reader in
            switch reader.peek() {
            case tagNewCookie:
                guard let cookie = reader.cookie(), reader.remaining == 0 else { return nil }
                return .newCookie(cookie)
            case tagRefreshDelete, tagRefreshPresent:
                let tag = reader.peek()
                guard let end = reader.enter(), end == 0 else { return nil }
                var cookie: [UInt8]? = nil
                if reader.more(before: end), reader.peek() == tagCookie {
                    guard let value = reader.cookie() else { return nil }
                    cookie = value
                }
                var done = true  // refreshDone BOOLEAN DEFAULT TRUE
                if reader.more(before: end), reader.peek() == tagBoolean {
                    guard let value = reader.bool() else { return nil }
                    done = value
                }
                guard reader.remaining == 0 else { return nil }
                return tag == tagRefreshDelete
                    ? .refreshDelete(cookie: cookie, done: done) : .refreshPresent(cookie: cookie, done: done)
            case tagIDSet:
                guard let end = reader.enter(), end == 0 else { return nil }
                var cookie: [UInt8]? = nil
                if reader.more(before: end), reader.peek() == tagCookie {
                    guard let value = reader.cookie() else { return nil }
                    cookie = value
                }
                var deletes = false  // refreshDeletes BOOLEAN DEFAULT FALSE
                if reader.more(before: end), reader.peek() == tagBoolean {
                    guard let value = reader.bool() else { return nil }
                    deletes = value
                }
                guard reader.more(before: end), reader.peek() == tagSet, let setEnd = reader.enter(), setEnd == end
                else {
                    return nil
                }
                var uuids: [String] = []
                while reader.more(before: setEnd) {
                    guard reader.peek() == tagCookie, let raw = reader.string(), let uuid = uuidString(raw) else {
                        return nil
                    }
                    uuids.append(uuid)
                }
                guard reader.remaining == 0 else { return nil }
                return .idSet(cookie: cookie, refreshDeletes: deletes, uuids: uuids)
            default:
                return nil
            }
        }
    }

    /// Parses a Sync Done control value: SEQUENCE { cookie OCTET STRING OPTIONAL,
    /// refreshDeletes BOOLEAN DEFAULT FALSE }.
    static func done(_ value: [UInt8]) -> DoneValue? {
        BERReader.read(value) { reader in
            guard reader.peek() == tagSequence, let end = reader.enter(), end == 0 else { return nil }
            var result = DoneValue(cookie: nil, refreshDeletes: false)
            if reader.more(before: end), reader.peek() == tagCookie {
                guard let cookie = reader.cookie() else { return nil }
                result.cookie = cookie
            }
            if reader.more(before: end), reader.peek() == tagBoolean {
                guard let deletes = reader.bool() else { return nil }
                result.refreshDeletes = deletes
            }
            return reader.remaining == 0 ? result : nil
        }
    }

    /// 16 raw bytes as the lowercase 8-4-4-4-12 UUID string (as slapd renders entryUUID); nil
    /// for any other length.
    static func uuidString(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 16 else { return nil }
        return LDAPValue.hyphenated(Hex.encode(bytes))
    }

    static func bytes(_ value: berval) -> [UInt8] {
        guard let base = value.bv_val, value.bv_len > 0 else { return [] }
        return base.withMemoryRebound(to: UInt8.self, capacity: Int(value.bv_len)) {
            Array(UnsafeBufferPointer(start: $0, count: Int(value.bv_len)))
        }
    }
}

/// A bounds-checked walk over one BER value with liblber. Positions are "bytes remaining", so a
/// constructed element's end is the remaining count at which it stops; nothing reads past it.
struct BERReader {
    let ber: OpaquePointer

    /// Runs `body` over a copy of `bytes` (ber_init copies); nil for empty input or a liblber failure.
    static func read<T>(_ bytes: [UInt8], _ body: (BERReader) -> T?) -> T? {
        guard !bytes.isEmpty, bytes.count < Int(Int32.max) else { return nil }
        let element: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var value = berval(
                bv_len: ber_len_t(buffer.count),
                bv_val: UnsafeMutableRawPointer(mutating: buffer.baseAddress)?.assumingMemoryBound(to: CChar.self))
            return ber_init(&value)
        }
        guard let element else { return nil }
        defer { ber_free(element, 1) }
        return body(BERReader(ber: element))
    }

    var remaining: Int { Int(ber_remaining(ber)) }

    /// The next element's tag, or `ContentSync.lberError` at the end or on garbage.
    func peek() -> ber_tag_t {
        var length: ber_len_t = 0
        return ber_peek_tag(ber, &length)
    }

    /// True while elements remain before `end` (a value from `enter()`).
    func more(before end: Int) -> Bool { remaining > end }

    /// Steps into the constructed element here; returns where it ends, or nil if its length runs
    /// past the value.
    func enter() -> Int? {
        var length: ber_len_t = 0
        guard ber_skip_tag(ber, &length) != ContentSync.lberError, length <= ber_len_t(remaining) else { return nil }
        return remaining - Int(length)
    }

    /// The next element's contents (copied).
    func string() -> [UInt8]? {
        var value = berval(bv_len: 0, bv_val: nil)
        guard idpsync_ber_scan_string(ber, &value) != ContentSync.lberError else { return nil }
        return ContentSync.bytes(value)
    }

    /// A cookie: a string of at most `maxCookieBytes`.
    func cookie() -> [UInt8]? {
        var length: ber_len_t = 0
        guard ber_peek_tag(ber, &length) != ContentSync.lberError, length <= ber_len_t(ContentSync.maxCookieBytes)
        else {
            return nil
        }
        return string()
    }

    func bool() -> Bool? {
        var value: ber_int_t = 0
        guard idpsync_ber_scan_bool(ber, &value) != ContentSync.lberError else { return nil }
        return value != 0
    }
}
