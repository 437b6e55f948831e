import CLDAP
import SyncCore
import SyncEngine

#if canImport(Glibc)
import Glibc
#endif

/// One bound libldap handle, used from one serial queue only.
final class Connection {
    let settings: LDAPSettings
    /// The handle; nil once closed.
    private(set) var ld: OpaquePointer?
    /// libldap's result code when `establish()` failed (LDAP_INVALID_CREDENTIALS, LDAP_SERVER_DOWN,
    /// LDAP_USER_CANCELLED, ...), so callers that retry can tell a bad bind from a dropped network.
    private(set) var failure: Int32 = LDAP_SUCCESS
    /// The non-success result code that ended the last search (`pagedSearch`, `readEntry`), or
    /// success; so callers that retry can tell a rejected filter or a missing base from a dropped
    /// connection.
    private(set) var searchFailure: Int32 = LDAP_SUCCESS

    /// The system CA bundle used for ldaps/StartTLS when the config has no `ca_file`.
    static let systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

    /// libldap reads `ldaprc`/`.ldaprc` in the working directory, `$HOME`, `LDAPRC`, `LDAPCONF` and
    /// every `LDAP*` variable (LDAPTLS_REQCERT=never!) at its first call. `LDAPNOINIT` turns all of
    /// that off, so only the config file decides; set before any libldap call, on one thread.
    /// The variable is removed again once libldap has initialised, so programs we might start
    /// (and the tests' ldapsearch) do not inherit it.
    static let ignoreOutsideConfiguration: Void = {
        let had = getenv("LDAPNOINIT") != nil
        setenv("LDAPNOINIT", "1", 1)
        var version: Int32 = 0
        _ = ldap_get_option(nil, LDAP_OPT_PROTOCOL_VERSION, &version)  // libldap's one-time initialisation
        if !had { unsetenv("LDAPNOINIT") }
    }()

    /// A handle with every option set, bound (after StartTLS when configured).
    convenience init(settings: LDAPSettings) throws {
        try self.init(unbound: settings)
        try establish()
    }

    /// A handle with every option set and no traffic yet; `establish()` does StartTLS and the bind.
    init(unbound settings: LDAPSettings) throws {
        _ = Self.ignoreOutsideConfiguration
        self.settings = settings
        var handle: OpaquePointer? = nil
        let rc = ldap_initialize(&handle, settings.url)
        guard rc == LDAP_SUCCESS, let handle else {
            throw SourceError("LDAP \(settings.url): invalid url (\(String(cString: ldap_err2string(rc))))")
        }
        ld = handle
        idpsync_ldap_set_int(handle, LDAP_OPT_PROTOCOL_VERSION, LDAP_VERSION3)
        idpsync_ldap_set_timeval(handle, LDAP_OPT_NETWORK_TIMEOUT, settings.timeoutSeconds)
        idpsync_ldap_set_timeval(handle, LDAP_OPT_TIMEOUT, settings.timeoutSeconds)
        idpsync_ldap_set_off(handle, LDAP_OPT_REFERRALS)
        // Every TLS option we rely on is set here, on every connection: certificate checks on, the
        // configured CA (or the system bundle, which /etc/ldap/ldap.conf would have named), TLS 1.2+.
        idpsync_ldap_set_int(handle, LDAP_OPT_X_TLS_REQUIRE_CERT, LDAP_OPT_X_TLS_DEMAND)
        idpsync_ldap_set_string(handle, LDAP_OPT_X_TLS_CACERTFILE, settings.caFile ?? Self.systemCABundle)
        idpsync_ldap_clear_string(handle, LDAP_OPT_X_TLS_CACERTDIR)
        idpsync_ldap_set_int(handle, LDAP_OPT_X_TLS_PROTOCOL_MIN, 0x303)  // LDAP_OPT_X_TLS_PROTOCOL_TLS1_2 ((3 << 8) + 3)
        // libldap ignores per-handle TLS options until a new TLS context is made. Making one loads
        // the CA bundle (~20 ms of CPU, 3 MB held): only for a connection that will speak TLS. With
        // referrals off, an ldap:// connection without StartTLS never does.
        if settings.speaksTLS {
            idpsync_ldap_set_int(handle, LDAP_OPT_X_TLS_NEWCTX, 0)
        }
    }

    /// StartTLS when configured, then the bind (none without `bind_dn`). On failure `failure`
    /// holds libldap's result code.
    func establish() throws {
        guard let handle = ld else { throw SourceError("LDAP \(settings.url): not connected") }
        if settings.startTLS {
            let rc = ldap_start_tls_s(handle, nil, nil)
            failure = rc
            guard rc == LDAP_SUCCESS else { throw error(rc, "StartTLS failed; check ca_file and the certificate's name") }
        }
        if let dn = settings.bindDN {
            let password = settings.bindPassword ?? ""
            var rc: Int32 = 0
            password.withCString { pointer in
                var cred = berval(bv_len: ber_len_t(strlen(pointer)), bv_val: UnsafeMutablePointer(mutating: pointer))
                var msgid: Int32 = 0
                rc = ldap_sasl_bind(handle, dn, nil, &cred, nil, nil, &msgid)
                if rc == LDAP_SUCCESS { rc = Self.awaitResult(handle, msgid, settings: settings) }
            }
            failure = rc
            guard rc == LDAP_SUCCESS else {
                if rc == LDAP_USER_CANCELLED { throw SourceError("LDAP \(settings.url): stopped by a signal during the bind") }
                let hint =
                    rc == LDAP_INVALID_CREDENTIALS
                    ? "check bind_dn and the bind password"
                    : settings.speaksTLS
                        ? "check url, ca_file and that the server certificate names this host (an IP needs an IP subjectAltName)"
                        : "check url and the network"
                throw error(rc, "bind as \(dn) failed; \(hint)")
            }
        }
    }

    /// Waits for the result of operation `msgid` in half-second slices, so SIGTERM ends the wait
    /// within half a second; returns its result code (LDAP_TIMEOUT after `timeout` of silence,
    /// LDAP_USER_CANCELLED when asked to stop).
    static func awaitResult(_ ld: OpaquePointer, _ msgid: Int32, settings: LDAPSettings) -> Int32 {
        let started = ContinuousClock.now
        while true {
            var message: OpaquePointer? = nil
            var wait = timeval(tv_sec: 0, tv_usec: 500_000)
            let type = ldap_result(ld, msgid, LDAP_MSG_ALL, &wait, &message)
            if type > 0, let message {
                var code: Int32 = 0
                let rc = ldap_parse_result(ld, message, &code, nil, nil, nil, nil, 1)
                return rc == LDAP_SUCCESS ? code : rc
            }
            if type < 0 { return idpsync_ldap_result_code(ld) }
            if settings.shouldStop() || ContinuousClock.now - started > .seconds(settings.timeoutSeconds) {
                ldap_abandon_ext(ld, msgid, nil, nil)
                return settings.shouldStop() ? LDAP_USER_CANCELLED : LDAP_TIMEOUT
            }
        }
    }

    func close() {
        if let ld { ldap_unbind_ext_s(ld, nil, nil) }
        ld = nil
    }

    deinit { close() }

    /// What one bounded search (at most one entry) answered, for `check-config --connect`.
    struct Probe {
        var code: Int32
        var matched: String?
        var message: String?
        var first: (dn: String, values: [String: [[UInt8]]])?

        func describe(_ what: String, _ url: String) -> String {
            var text = "LDAP \(url): \(what): \(String(cString: ldap_err2string(code))) (\(code))"
            if let message, !message.isEmpty { text += ": \(message)" }
            return text
        }
    }

    /// One search under `base_dn` with a size limit of one entry and the configured timeout.
    func probe(scope: Int32, filter: String, attributes: [String]) throws -> Probe {
        guard let ld else { throw SourceError("LDAP \(settings.url): not connected") }
        var cAttributes: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for p in cAttributes { free(p) } }
        var timeout = timeval(tv_sec: settings.timeoutSeconds, tv_usec: 0)
        var result: OpaquePointer? = nil
        let rc = ldap_search_ext_s(ld, settings.baseDN, scope, filter, &cAttributes, 0, nil, nil, &timeout, 1, &result)
        defer { if let result { ldap_msgfree(result) } }
        var probe = Probe(code: rc)
        guard let result else { return probe }
        if let entry = ldap_first_entry(ld, result) {
            probe.first = entryValues(entry, attributes: attributes)
        }
        var code: Int32 = 0
        var matched: UnsafeMutablePointer<CChar>? = nil
        var text: UnsafeMutablePointer<CChar>? = nil
        if ldap_parse_result(ld, result, &code, &matched, &text, nil, nil, 0) == LDAP_SUCCESS {
            probe.code = code
            if let matched, matched.pointee != 0 { probe.matched = TextEscape.bounded(String(cString: matched), limit: 512) }
            if let text { probe.message = TextEscape.bounded(String(cString: text)) }
        }
        if let matched { ldap_memfree(matched) }
        if let text { ldap_memfree(text) }
        return probe
    }

    /// One entry's attributes (names lowercased) by a base search of `dn` ("" is the rootDSE),
    /// waiting in half-second slices so a stop ends it within half a second; `timeout` bounds the
    /// wait. Throws unless the entry arrived and the search ended with success (the result code
    /// is then in `searchFailure`).
    func readEntry(_ dn: String, attributes: [String]) throws -> [String: [[UInt8]]] {
        guard let ld else { throw SourceError("LDAP \(settings.url): not connected") }
        searchFailure = LDAP_SUCCESS
        let what = dn.isEmpty ? "the rootDSE" : dn
        var cAttributes: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for p in cAttributes { free(p) } }
        var limit = timeval(tv_sec: settings.timeoutSeconds, tv_usec: 0)
        var msgid: Int32 = 0
        var rc = ldap_search_ext(
            ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", &cAttributes, 0, nil, nil, &limit, 1, &msgid)
        guard rc == LDAP_SUCCESS else { throw error(rc, "reading \(what) failed") }
        let started = ContinuousClock.now
        var values: [String: [[UInt8]]]? = nil
        while true {
            var message: OpaquePointer? = nil
            var wait = timeval(tv_sec: 0, tv_usec: 500_000)
            let type = ldap_result(ld, msgid, LDAP_MSG_ONE, &wait, &message)
            if type == 0 {
                if settings.shouldStop() {
                    ldap_abandon_ext(ld, msgid, nil, nil)
                    throw SourceError("LDAP \(settings.url): stopped by a signal while reading \(what)")
                }
                if ContinuousClock.now - started > .seconds(settings.timeoutSeconds) {
                    ldap_abandon_ext(ld, msgid, nil, nil)
                    throw SourceError("LDAP \(settings.url): no answer within \(settings.timeoutSeconds)s reading \(what)")
                }
                continue
            }
            guard type > 0, let message else {
                throw error(idpsync_ldap_result_code(ld), "reading \(what) failed")
            }
            defer { ldap_msgfree(message) }
            switch UInt(type) {
            case UInt(LDAP_RES_SEARCH_ENTRY):
                values = entryValues(message, attributes: attributes).values
            case UInt(LDAP_RES_SEARCH_RESULT):
                var code: Int32 = 0
                rc = ldap_parse_result(ld, message, &code, nil, nil, nil, nil, 0)
                guard rc == LDAP_SUCCESS else { throw error(rc, "cannot parse the result of reading \(what)") }
                guard code == LDAP_SUCCESS else {
                    searchFailure = code
                    throw SourceError(
                        "LDAP \(settings.url): reading \(what) ended with result \(code) (\(String(cString: ldap_err2string(code))))")
                }
                guard let values else { throw SourceError("LDAP \(settings.url): reading \(what) returned no entry") }
                return values
            default:
                continue
            }
        }
    }

    func error(_ rc: Int32, _ what: String) -> SourceError {
        var text = "LDAP \(settings.url): \(what): \(String(cString: ldap_err2string(rc))) (\(rc))"
        if let ld, let diagnostic = idpsync_ldap_diagnostic(ld) {
            let message = String(cString: diagnostic)
            ldap_memfree(diagnostic)
            if !message.isEmpty { text += ": \(TextEscape.bounded(message))" }
        }
        return SourceError(text)
    }

    /// Runs a paged search (default: the subtree of `base_dn`) and hands each entry's DN and values
    /// (attribute names lowercased); `controls` go with every page besides the paging control.
    /// Throws unless the whole result set arrived.
    func pagedSearch(
        base: String? = nil, scope: Int32 = LDAP_SCOPE_SUBTREE, filter: String, attributes: [String],
        controls: [UnsafeMutablePointer<LDAPControl>] = [], pageDone: ((Int) -> Void)? = nil,
        entry: (String, [String: [[UInt8]]]) throws -> Void
    ) throws {
        try pagedSearch(
            base: base, scope: scope, filter: filter, attributes: attributes, controls: controls, pageDone: pageDone,
            message: { message in
                let (dn, values) = entryValues(message, attributes: attributes)
                try entry(dn, values)
            })
    }

    /// The paged search itself: `message` gets each entry message (valid during the call) to
    /// decode as it likes, with `walkEntry`.
    func pagedSearch(
        base: String? = nil, scope: Int32 = LDAP_SCOPE_SUBTREE, filter: String, attributes: [String],
        controls: [UnsafeMutablePointer<LDAPControl>] = [], pageDone: ((Int) -> Void)? = nil,
        message entry: (OpaquePointer) throws -> Void
    ) throws {
        guard let ld else { throw SourceError("LDAP \(settings.url): not connected") }
        let baseDN = base ?? settings.baseDN
        searchFailure = LDAP_SUCCESS
        var cookie = berval(bv_len: 0, bv_val: nil)
        var cookieOwned = false
        defer { if cookieOwned { ber_memfree(cookie.bv_val) } }
        var page = 0
        var entries = 0
        var seenCookies: Set<[UInt8]> = []
        let deadline = ContinuousClock.now + .seconds(settings.readDeadlineSeconds)
        var cAttributes: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for p in cAttributes { free(p) } }
        repeat {
            page += 1
            var control: UnsafeMutablePointer<LDAPControl>? = nil
            var rc = ldap_create_page_control(ld, ber_int_t(settings.pageSize), &cookie, 1, &control)
            guard rc == LDAP_SUCCESS else { throw error(rc, "cannot create the paged results control") }
            defer { ldap_control_free(control) }
            var serverControls: [UnsafeMutablePointer<LDAPControl>?] = [control] + controls + [nil]
            var timeout = timeval(tv_sec: settings.timeoutSeconds, tv_usec: 0)
            var msgid: Int32 = 0
            rc = ldap_search_ext(
                ld, baseDN, scope, filter, &cAttributes, 0, &serverControls, nil, &timeout, 0,
                &msgid)
            guard rc == LDAP_SUCCESS else { throw error(rc, "search of \(baseDN) failed") }

            var finished = false
            var entriesOnPage = 0
            var lastAnswer = ContinuousClock.now
            while !finished {
                var message: OpaquePointer? = nil
                // Wait in half-second slices: a stop request or the deadline ends the read promptly;
                // `timeout` still bounds the silence between two messages.
                var wait = timeval(tv_sec: 0, tv_usec: 500_000)
                let type = ldap_result(ld, msgid, LDAP_MSG_ONE, &wait, &message)
                if type == 0 {
                    if settings.shouldStop() {
                        ldap_abandon_ext(ld, msgid, nil, nil)
                        throw SourceError("LDAP \(settings.url): stopped by a signal during the read")
                    }
                    if ContinuousClock.now > deadline {
                        ldap_abandon_ext(ld, msgid, nil, nil)
                        throw deadlineError(page: page, entries: entries, base: baseDN)
                    }
                    if ContinuousClock.now - lastAnswer < .seconds(settings.timeoutSeconds) { continue }
                    ldap_abandon_ext(ld, msgid, nil, nil)
                    throw SourceError(
                        "LDAP \(settings.url): no answer within \(settings.timeoutSeconds)s on page \(page) of \(baseDN); the directory is not trustworthy this run")
                }
                lastAnswer = ContinuousClock.now
                guard type > 0, let message else {
                    throw error(idpsync_ldap_result_code(ld), "search of \(baseDN) failed on page \(page)")
                }
                defer { ldap_msgfree(message) }
                switch UInt(type) {
                case UInt(LDAP_RES_SEARCH_ENTRY):
                    entriesOnPage += 1
                    entries += 1
                    if entries > Self.maxEntries {
                        throw SourceError(
                            "LDAP \(settings.url): more than \(Self.maxEntries) entries under \(baseDN); refusing to read on")
                    }
                    try entry(message)
                case UInt(LDAP_RES_SEARCH_REFERENCE):
                    searchFailure = LDAP_REFERRAL
                    throw SourceError(
                        "LDAP \(settings.url): a continuation reference arrived on page \(page) (part of \(baseDN) lives on another server); use a base_dn the server holds entirely")
                case UInt(LDAP_RES_SEARCH_RESULT):
                    try finishPage(ld, message, page: page, base: baseDN, cookie: &cookie, cookieOwned: &cookieOwned)
                    finished = true
                default:
                    throw SourceError("LDAP \(settings.url): unexpected message type \(type) during the search")
                }
            }
            pageDone?(page)
            if cookie.bv_len > 0 {
                // Bounded paging (docs/operations.md): a cookie seen before would loop for ever; a server
                // that hands out fresh cookies must bring entries with them (at most `pageSlack`
                // pages beyond one entry each), and the whole read has `read_deadline`.
                let bytes = Array(UnsafeRawBufferPointer(start: cookie.bv_val, count: Int(cookie.bv_len)))
                // 389-ds hands out the same cookie (its paged-results slot) on every page, so a repeat
                // alone is normal; a repeat that brought no entry would loop for ever.
                if !seenCookies.insert(bytes).inserted && entriesOnPage == 0 {
                    throw SourceError(
                        "LDAP \(settings.url): page \(page) brought no entry and a paging cookie it had already given; the read would never end, so the directory is not trustworthy this run")
                }
                if page > entries + Self.pageSlack {
                    throw SourceError(
                        "LDAP \(settings.url): \(page) pages for \(entries) entries and the paging cookie never empties; the directory is not trustworthy this run")
                }
                if ContinuousClock.now > deadline { throw deadlineError(page: page, entries: entries, base: baseDN) }
                if settings.shouldStop() { throw SourceError("LDAP \(settings.url): stopped by a signal during the read") }
            }
        } while cookie.bv_len > 0
    }

    /// Pages a read may take beyond one entry per page.
    static let pageSlack = 10
    /// The most entries one read accepts (memory bound; far above any real directory).
    static let maxEntries = 20_000_000

    func deadlineError(page: Int, entries: Int, base: String? = nil) -> SourceError {
        SourceError(
            "LDAP \(settings.url): the read of \(base ?? settings.baseDN) did not finish within read_deadline \(TimeFormat.duration(Int64(settings.readDeadlineSeconds))) (\(page) pages, \(entries) entries); the directory is not trustworthy this run")
    }

    /// One entry's DN (bounded for messages) and the values of `attributes` (names lowercased).
    func entryValues(_ message: OpaquePointer, attributes: [String]) -> (dn: String, values: [String: [[UInt8]]]) {
        let selection = AttributeSelection(attributes)
        var values: [String: [[UInt8]]] = [:]
        var dn = "?"
        walkEntry(message, selection) { entryDN in
            dn = Self.boundedDN(entryDN)
        } visit: { index, list in
            let name = selection.lowercased[index]
            // The first occurrence counts, as ldap_get_values_len would have it.
            if values[name] == nil { values[name] = list.map(Self.bytes) }
        }
        return (dn, values)
    }

    /// A DN as printed in messages: bounded, control characters escaped.
    static func boundedDN(_ dn: UnsafeBufferPointer<UInt8>) -> String {
        TextEscape.bounded(String(decoding: dn, as: UTF8.self), limit: 512)
    }

    /// A value's bytes, copied out of the message.
    static func bytes(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8] { Array(value) }

    /// Walks an entry once, as ldapsearch does (`ldap_get_dn_ber`, then `ldap_get_attribute_ber` per
    /// attribute), instead of searching it from the start for each wanted attribute. `dn` gets the
    /// DN; `visit(i, values)` is called for each attribute of the entry whose description equals
    /// (ASCII case-insensitively, as libldap compares) `selection.names[i]`, for every such `i`.
    /// What they are handed points into the message: valid until it is freed.
    ///
    /// libldap decodes in place here (it writes a NUL after each string it hands out, over the
    /// next element's tag), so a message can be walked once only, and nothing else may read it
    /// afterwards: read its controls (`ldap_get_entry_controls`) before, never after.
    func walkEntry(
        _ message: OpaquePointer, _ selection: AttributeSelection, dn: (UnsafeBufferPointer<UInt8>) -> Void = { _ in },
        visit: (Int, Values) -> Void
    ) {
        guard let ld else { return }
        var ber: OpaquePointer? = nil
        var name = berval(bv_len: 0, bv_val: nil)
        guard ldap_get_dn_ber(ld, message, &ber, &name) == LDAP_SUCCESS else {
            if let ber { ber_free(ber, 0) }
            return
        }
        defer { if let ber { ber_free(ber, 0) } }
        dn(Self.buffer(name))
        var values: UnsafeMutablePointer<berval>? = nil
        while ldap_get_attribute_ber(ld, message, ber, &name, &values) == LDAP_SUCCESS, name.bv_val != nil {
            defer {
                if let values { ber_memfree(values) }
                values = nil
            }
            let attribute = Self.buffer(name)
            var list: Values? = nil
            for index in selection.lowercased.indices where selection.matches(attribute, index) {
                if list == nil { list = Values(values) }
                visit(index, list!)
            }
        }
    }

    /// An attribute's values as libldap handed them out (a NULL-ended `berval` array), viewed
    /// without copying: valid while the walk is at that attribute.
    struct Values: RandomAccessCollection {
        private let base: UnsafeMutablePointer<berval>?
        let count: Int

        init(_ base: UnsafeMutablePointer<berval>?) {
            self.base = base
            var n = 0
            if let base { while base[n].bv_val != nil { n += 1 } }
            count = n
        }

        var startIndex: Int { 0 }
        var endIndex: Int { count }
        subscript(i: Int) -> UnsafeBufferPointer<UInt8> {
            precondition(i >= 0 && i < count, "value index out of range")
            return Connection.buffer(base![i])
        }
    }

    static func buffer(_ value: berval) -> UnsafeBufferPointer<UInt8> {
        guard let base = value.bv_val else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: UnsafeRawPointer(base).assumingMemoryBound(to: UInt8.self), count: Int(value.bv_len))
    }

    private func finishPage(
        _ ld: OpaquePointer, _ message: OpaquePointer, page: Int, base: String, cookie: inout berval,
        cookieOwned: inout Bool
    ) throws {
        var code: Int32 = 0
        var matched: UnsafeMutablePointer<CChar>? = nil
        var text: UnsafeMutablePointer<CChar>? = nil
        var referrals: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        var controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>? = nil
        let rc = ldap_parse_result(ld, message, &code, &matched, &text, &referrals, &controls, 0)
        defer {
            if let matched { ldap_memfree(matched) }
            if let text { ldap_memfree(text) }
            if let referrals { ldap_memvfree(UnsafeMutablePointer(OpaquePointer(referrals))) }
            if let controls { ldap_controls_free(controls) }
        }
        guard rc == LDAP_SUCCESS else { throw error(rc, "cannot parse the result of page \(page)") }
        let serverText = TextEscape.bounded(text.map { String(cString: $0) } ?? "")
        guard code == LDAP_SUCCESS else {
            searchFailure = code
            var detail = "page \(page) of \(base) ended with result \(code) (\(String(cString: ldap_err2string(code))))"
            if !serverText.isEmpty { detail += ": \(serverText)" }
            if code == LDAP_REFERRAL { detail += "; referrals are not followed" }
            throw SourceError("LDAP \(settings.url): \(detail); the directory is not trustworthy this run")
        }
        if referrals != nil {
            throw SourceError("LDAP \(settings.url): page \(page) carried a referral; referrals are not followed")
        }
        guard let found = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, nil) else {
            throw SourceError(
                "LDAP \(settings.url): page \(page) came back without the paged results control; the server may not support paging")
        }
        if cookieOwned {
            ber_memfree(cookie.bv_val)
            cookieOwned = false
        }
        var count: ber_int_t = 0
        var next = berval(bv_len: 0, bv_val: nil)
        let prc = ldap_parse_pageresponse_control(ld, found, &count, &next)
        guard prc == LDAP_SUCCESS else { throw error(prc, "cannot parse the paged results control of page \(page)") }
        cookie = next
        cookieOwned = next.bv_val != nil
    }
}

/// The attributes a search asked for, ready to be matched against an entry's attribute
/// descriptions without building a String per attribute.
struct AttributeSelection {
    let names: [String]
    /// The names, ASCII-lowercased (the keys of `entryValues`).
    let lowercased: [String]
    private let bytes: [[UInt8]]

    init(_ names: [String]) {
        self.names = names
        self.lowercased = names.map { $0.lowercased() }
        self.bytes = names.map { name in name.utf8.map { $0 &- 65 < 26 ? $0 + 32 : $0 } }
    }

    /// Whether `attribute` is `names[index]`, ASCII case-insensitively.
    func matches(_ attribute: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        let wanted = bytes[index]
        guard attribute.count == wanted.count else { return false }
        for k in 0..<wanted.count {
            let c = attribute[k]
            if (c &- 65 < 26 ? c + 32 : c) != wanted[k] { return false }
        }
        return true
    }
}
