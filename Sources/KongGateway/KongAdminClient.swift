import CurlHTTP
import Logging
import SyncCore
import SyncEngine

#if canImport(Glibc)
import Glibc
#endif

/// A Kong Admin API (3.x, DB-backed) as one gateway of the sync.
///
/// The sync's terms map to Kong like this: marks are consumer tags (PATCH replaces the whole tag
/// array, so the caller's foreign tags are written back with ours); our block is a
/// request-termination plugin scoped to the consumer alone, tagged `idp-sync`, answering 403; a
/// person's request-termination on the consumer is a `ForeignBlock` (blocking or conflicting);
/// keys are key-auth credentials. Reads in bulk: managed consumers by `select_tags` and our plugins
/// by tag, 1000 a page, following `offset` (never `next`, which drops size and tags on nested lists
/// and misses path prefixes). Keys and other plugins are read only for the consumers the plan acts on.
public final class KongAdminClient: Gateway, @unchecked Sendable {
    public let settings: KongSettings
    public var name: String { settings.name }
    public var concurrency: Int { settings.concurrency }
    /// One libcurl handle (one kept-alive connection, one serial queue) per write in flight.
    private let pool: [HTTPClient]
    private let next = Counter()
    private let logger: Logger
    private let base: String
    /// Konnect: the control plane itself (`GET` answers what `GET /` answers on Kong).
    private let controlPlane: String?
    private let progress: (@Sendable (String) -> Void)?

    /// `progress` gets a line per page of consumers when the caller shows progress.
    public init(settings: KongSettings, logger: Logger, progress: (@Sendable (String) -> Void)? = nil) {
        self.settings = settings
        self.logger = logger
        self.progress = progress
        let options = HTTPClientOptions(
            timeoutSeconds: settings.timeoutSeconds, caFile: settings.caFile, clientCert: settings.clientCert,
            clientKey: settings.clientKey, shouldAbort: settings.shouldStop)
        self.pool = (0..<max(1, settings.concurrency)).map { _ in HTTPClient(options: options) }
        var base = settings.konnect?.apiURL ?? settings.adminURL
        while base.hasSuffix("/") { base.removeLast() }
        if let konnect = settings.konnect {
            let plane = base + "/v2/control-planes/" + URLEncoding.component(konnect.controlPlaneID)
            self.controlPlane = plane
            base = plane + "/core-entities"
        } else {
            self.controlPlane = nil
            if let workspace = settings.workspace { base += "/" + URLEncoding.component(workspace) }
        }
        self.base = base
    }

    // MARK: Requests

    struct Answer {
        var status: Int
        var body: [UInt8]
        func json() throws -> JSONValue { try JSONParser.parse(body) }
    }

    /// One request to `base + path` (or to `url`, outside the base: Konnect's control plane).
    func request(_ method: String, _ path: String, body: JSONValue? = nil, url: String? = nil) async throws -> Answer {
        var headers: [(String, String)] = [("Accept", "application/json")]
        if let token = settings.token {
            headers.append(settings.konnect == nil ? ("Kong-Admin-Token", token) : ("Authorization", "Bearer " + token))
        }
        var bytes: [UInt8]? = nil
        if let body {
            headers.append(("Content-Type", "application/json"))
            bytes = Array(body.canonical.utf8)
        }
        let response: HTTPResponse
        let gateway = name, logger = self.logger, shownPath = Self.pathOnly(path)
        do {
            let http = pool[next.take() % pool.count]
            response = try await http.send(
                HTTPRequest(method: method, url: url ?? base + path, headers: headers, body: bytes),
                policy: RetryPolicy(retries: settings.retries), repeatable: method == "GET"
            ) { note in
                logger.warning(
                    "kong request retried",
                    metadata: [
                        "sync.gateway": "\(gateway)", "http.method": "\(method)", "http.path": "\(shownPath)",
                        "http.attempt": .stringConvertible(note.attempt), "http.reason": "\(note.reason)",
                        "http.retry_in_seconds": .stringConvertible(Double(note.delayMilliseconds) / 1000),
                    ])
            }
        } catch let error as HTTPTransportError {
            if error.isAborted { throw GatewayError("gateway \(name): \(method) \(shownPath): stopped by a signal") }
            if error.isOversized { throw GatewayError("gateway \(name): \(method) \(shownPath): \(error.description)") }
            throw GatewayError(
                "gateway \(name): \(method) \(base)\(shownPath): \(error.description); check admin_url, the network and ca_file",
                timedOut: error.isTimeout)
        }
        logger.debug(
            "kong request", metadata: ["sync.gateway": "\(name)", "http.method": "\(method)", "http.path": "\(Self.pathOnly(path))", "http.status": .stringConvertible(response.status)])
        if response.status == 401 || response.status == 403 {
            // The body is not quoted: a server or proxy may echo the token it refused.
            if response.status == 403, settings.token != nil, settings.konnect == nil {
                throw GatewayError(Self.rbacDenied(gateway: name, workspace: settings.workspace, method: method, path: path), status: 403)
            }
            let what = response.status == 401 ? "unauthorized" : "forbidden"
            let hint =
                settings.token == nil
                ? "no token configured: Kong wants one, set token_file"
                : "the configured token was refused: check token_file (sent as \(settings.konnect == nil ? "Kong-Admin-Token" : "Authorization: Bearer"))"
            throw GatewayError(
                "gateway \(name): \(method) \(Self.pathOnly(path)) answered \(response.status) (\(what)); \(hint)",
                status: response.status)
        }
        return Answer(status: response.status, body: response.body)
    }

    /// Kong Enterprise RBAC answers 403 when the token's role lacks the permission the request
    /// needs, which follows from the method (KONG-FACTS.md): one line naming the workspace, the
    /// endpoint and the permission, so an operator knows what to grant.
    static func rbacDenied(gateway: String, workspace: String?, method: String, path: String) -> String {
        let permission =
            switch method {
            case "GET", "HEAD": "read"
            case "POST": "create"
            case "PUT", "PATCH": "update"
            case "DELETE": "delete"
            default: method
            }
        let endpoint = pathOnly(path)
        return "gateway \(gateway): Kong RBAC denied \(method) \(endpoint) in workspace \(workspace ?? "default"): the token lacks the '\(permission)' permission on \(endpoint); grant it to the token's role"
    }

    func failure(_ method: String, _ path: String, _ answer: Answer) -> GatewayError {
        GatewayError(
            "gateway \(name): \(method) \(Self.pathOnly(path)) answered \(answer.status): \(Wire.errorMessage(answer.body, secret: settings.token))",
            status: answer.status)
    }

    static func pathOnly(_ path: String) -> String {
        TextEscape.bounded(path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path, limit: 300)
    }

    func json(_ method: String, _ path: String, _ answer: Answer) throws -> JSONValue {
        do {
            return try answer.json()
        } catch {
            throw GatewayError("gateway \(name): \(method) \(Self.pathOnly(path)) answered \(answer.status) with invalid JSON")
        }
    }

    /// The most pages a listing may take beyond what its items need: a server that hands out
    /// fresh offsets with empty or short pages is stopped after this many.
    static let pageSlack = 10
    /// The most items one listing may return (memory bound; far above any real Kong estate).
    static let maxItems = 20_000_000

    /// Every item of a collection, as trees (small listings: plugins, keys, credentials).
    /// `check` sees each item as it arrives and may reject the page.
    func list(_ path: String, query: [(String, String)], check: ((JSONValue) throws -> Void)? = nil) async throws
        -> [JSONValue]
    {
        var items: [JSONValue] = []
        try await forEachPage(path, query: query, decode: Wire.jsonPage) { page in
            if let check { for item in page { try check(item) } }
            items += page
        }
        return items
    }

    /// Every page of a collection, by `offset`, each decoded by `decode` and handed to `each`, then
    /// dropped. Bounded (docs/operations.md): a repeated offset is an error at once; pages beyond
    /// ⌈items / size⌉ + `pageSlack` (a server handing out fresh offsets with empty pages), more
    /// than `maxItems` items, or `read_deadline` for the whole listing stop it.
    func forEachPage<Item>(
        _ path: String, query: [(String, String)], decode: ([UInt8]) throws -> Page<Item>?,
        each: ([Item]) throws -> Void
    ) async throws {
        let pageSize = 1000
        var count = 0
        var offset: String? = nil
        var seenOffsets: Set<String> = []
        var pages = 0
        let deadline = ContinuousClock.now + .seconds(settings.readDeadlineSeconds)
        repeat {
            if settings.shouldStop() { throw GatewayError("gateway \(name): GET \(path): stopped by a signal") }
            if ContinuousClock.now > deadline {
                throw GatewayError(
                    "gateway \(name): GET \(path) did not finish within read_deadline \(TimeFormat.duration(Int64(settings.readDeadlineSeconds))) (\(pages) pages, \(count) items); the listing is incomplete")
            }
            var q = query + [("size", String(pageSize))]
            if let offset { q.append(("offset", offset)) }
            let full = path + "?" + q.map { "\($0.0)=\(URLEncoding.component($0.1))" }.joined(separator: "&")
            let answer = try await request("GET", full)
            guard answer.status == 200 else { throw failure("GET", full, answer) }
            let decoded: Page<Item>?
            do {
                decoded = try decode(answer.body)
            } catch is JSONParser.Error {
                throw GatewayError("gateway \(name): GET \(Self.pathOnly(full)) answered \(answer.status) with invalid JSON")
            }
            guard let page = decoded else {
                throw GatewayError("gateway \(name): GET \(path) answered without a data array")
            }
            try each(page.items)
            count += page.items.count
            pages += 1
            switch page.next {
            case .offset(let next):
                guard seenOffsets.insert(next).inserted else {
                    throw GatewayError(
                        "gateway \(name): GET \(path) answered an offset it had already given (page \(pages)); the listing would never end")
                }
                offset = next
            case .end:
                offset = nil
            case .notAString:
                throw GatewayError("gateway \(name): GET \(path) answered an offset that is not a string (page \(pages))")
            }
            if offset != nil && pages > count / pageSize + Self.pageSlack {
                throw GatewayError(
                    "gateway \(name): GET \(path) keeps paging: \(pages) pages for \(count) items; the listing is incomplete")
            }
            if count > Self.maxItems {
                throw GatewayError("gateway \(name): GET \(path) returned more than \(Self.maxItems) items; refusing to read on")
            }
        } while offset != nil
    }

    // MARK: Gateway

    /// `GET /`: the node's version and database mode.
    public func nodeInfo() async throws -> (version: String, database: String) {
        let answer = try await request("GET", "/")
        guard answer.status == 200 else { throw failure("GET", "/", answer) }
        let root = try json("GET", "/", answer)
        return (root["version"]?.stringValue ?? "?", root["configuration"]?["database"]?.stringValue ?? "?")
    }

    /// `GET /` with the token: the version and database mode; a DB-less node cannot be written.
    /// Konnect has no `GET /`: the control plane answers instead.
    public func checkConnection() async throws -> String {
        if let controlPlane, let konnect = settings.konnect {
            let answer = try await request("GET", "/v2/control-planes/\(konnect.controlPlaneID)", url: controlPlane)
            guard answer.status == 200 else { throw failure("GET", "/v2/control-planes/\(konnect.controlPlaneID)", answer) }
            let plane = try json("GET", "/v2/control-planes/\(konnect.controlPlaneID)", answer)
            let label = plane["name"]?.stringValue.map { TextEscape.bounded($0, limit: 100) } ?? konnect.controlPlaneID
            return "Konnect control plane \(label) (\(konnect.controlPlaneID))"
        }
        let info = try await nodeInfo()
        if info.database == "off" {
            throw GatewayError(
                "gateway \(name) at \(base): Kong \(info.version) is DB-less (database: off) and cannot be written; point admin_url at a database-backed Kong node")
        }
        return "Kong \(info.version), database \(info.database)"
    }

    /// The node answers with the token and can be written, and `select_tags` selects at least one
    /// consumer (one page of one: a typo in a tag reads as "nothing managed", so it is a warning).
    public func checkReadiness() async -> [ReadinessCheck] {
        let subject = "gateway \(name)"
        var checks: [ReadinessCheck] = []
        do {
            checks.append(ReadinessCheck(subject, .ok, "\(base): " + (try await checkConnection())))
        } catch {
            return [ReadinessCheck(subject, .failed, "\(error)")]
        }
        let tags = settings.selectTags.joined(separator: ",")
        do {
            let path = "/consumers?tags=\(URLEncoding.component(tags))&size=1"
            let answer = try await request("GET", path)
            guard answer.status == 200 else { throw failure("GET", path, answer) }
            let found = try json("GET", path, answer)["data"]?.arrayValue ?? []
            if found.isEmpty {
                checks.append(
                    ReadinessCheck(
                        subject, .warning,
                        "select_tags \(tags) match no consumer: a run would manage none (a typo in a tag?)"))
            } else {
                checks.append(ReadinessCheck(subject, .ok, "select_tags \(tags) select consumers (the token can read them)"))
            }
        } catch {
            checks.append(ReadinessCheck(subject, .failed, "\(error)"))
        }
        return checks
    }

    public func snapshot() async throws -> GatewaySnapshot {
        _ = try await checkConnection()  // a DB-less node is refused before anything is read
        // Scope is checked on every consumer read, not only asked of the server (docs/configuration.md):
        // a Kong or proxy that ignores `?tags=` must not get unmanaged consumers flagged.
        let selectTags = settings.selectTags, gatewayName = name
        // Consumers are decoded page by page straight from the body (no tree) and each page is
        // dropped once read: memory holds the consumers, not the listing.
        async let consumerList: [Consumer] = {
            let interner = TagInterner()
            var consumers: [Consumer] = []
            try await forEachPage(
                "/consumers", query: [("tags", selectTags.joined(separator: ","))],
                decode: { try Wire.consumerPage($0, tags: interner) }
            ) { page in
                for item in page {
                    guard let consumer = item else {
                        throw GatewayError("gateway \(gatewayName): a consumer in GET /consumers has no id")
                    }
                    if !Wire.isManaged(tags: consumer.tags, selectTags: selectTags) {
                        let id = TextEscape.bounded(consumer.id.rawValue, limit: 64)
                        throw GatewayError(
                            "gateway \(gatewayName): GET /consumers?tags=\(selectTags.joined(separator: ",")) returned consumer \(id), which lacks a select_tags tag: the server did not apply the tag filter, so this read cannot be trusted")
                    }
                    consumers.append(consumer)
                }
                progress?("gateway \(gatewayName): \(consumers.count) consumers")
            }
            return consumers
        }()
        let pluginItems = try await list("/plugins", query: [("tags", KongPlugin.ourTag)])
        let consumers = try await consumerList
        var ours: [ConsumerID: BlockID] = [:]
        for item in pluginItems {
            if let plugin = Wire.plugin(item), plugin.isOurs, let consumer = plugin.consumerID {
                ours[consumer] = BlockID(plugin.id)
            }
        }
        return GatewaySnapshot(name: name, consumers: consumers, ourBlocks: ours)
    }

    public func details(for consumers: [ConsumerID]) async throws -> [ConsumerID: ConsumerDetails] {
        var result: [ConsumerID: ConsumerDetails] = [:]
        for id in consumers {
            let segment = URLEncoding.component(id.rawValue)
            let now = Int64(time(nil))
            let keys = try await list("/consumers/\(segment)/key-auth", query: []).compactMap { Wire.key($0, now: now) }
            let plugins = try await list("/consumers/\(segment)/plugins", query: []).compactMap(Wire.plugin)
            // Every other credential type, and the acl groups: a user who is gone still holds them all.
            var credentials = keys.map { CredentialRef(type: "key-auth", id: $0.id.rawValue, identity: $0.fingerprint) }
            // Konnect has no oauth2 (KONG-FACTS §16): not asked for there.
            for type in Wire.otherCredentialTypes where settings.konnect == nil || type != "oauth2" {
                credentials += try await listIfServed("/consumers/\(segment)/\(type)").compactMap { Wire.credential($0, type: type) }
            }
            let groups = try await listIfServed("/consumers/\(segment)/acls").compactMap { $0["group"]?.stringValue }.sorted()
            var restrictions: [String] = []
            if !groups.isEmpty { restrictions.append("acl groups: \(groups.joined(separator: ", "))") }
            for plugin in plugins where plugin.isConsumerOnly && !plugin.isOurs && plugin.foreignBlock == nil && plugin.enabled {
                restrictions.append("\(plugin.name) plugin \(plugin.id) on the consumer")
            }
            result[id] = ConsumerDetails(
                keys: keys.sorted(), ourBlock: plugins.first { $0.isOurs }.map { BlockID($0.id) },
                foreign: plugins.lazy.compactMap(\.foreignBlock).first, credentials: credentials.sorted(),
                restrictions: restrictions)
        }
        return result
    }

    /// A credential collection, or none when this Kong does not serve it: a plugin's endpoints exist
    /// only when the plugin is loaded, and an unknown path is 404 (§1). The consumer itself was just
    /// read through key-auth, so a 404 here is the path, not the consumer.
    func listIfServed(_ path: String) async throws -> [JSONValue] {
        do {
            return try await list(path, query: [])
        } catch let error as GatewayError where error.status == 404 {
            return []
        }
    }

    /// Deletes a credential of another type than key-auth at `/consumers/{c}/{type}/{id}`.
    public func deleteCredential(_ credential: CredentialRef, of consumer: ConsumerID) async throws {
        guard Wire.otherCredentialTypes.contains(credential.type) else {
            if credential.type == "key-auth" { return try await deleteKey(KeyID(credential.id), of: consumer) }
            throw GatewayError("gateway \(name): idp-sync does not delete \(credential.type) credentials")
        }
        let path =
            "/consumers/\(URLEncoding.component(consumer.rawValue))/\(credential.type)/\(URLEncoding.component(credential.id))"
        let answer = try await deleteOnceMore(path)
        guard answer.status == 204 || answer.status == 404 else { throw failure("DELETE", path, answer) }
    }

    /// The consumer as it is now, checked to be in scope: one that lost a `select_tags` tag since
    /// the plan is not ours to write (the write fails, journaled).
    public func readConsumer(_ id: ConsumerID) async throws -> Consumer? {
        guard let (consumer, json) = try await fetchConsumer(id) else { return nil }
        guard Wire.isManaged(json, selectTags: settings.selectTags) else {
            throw GatewayError(
                "gateway \(name): consumer \(id) no longer carries every select_tags tag (\(settings.selectTags.joined(separator: ","))); not touched")
        }
        return consumer
    }

    func fetchConsumer(_ id: ConsumerID) async throws -> (Consumer, JSONValue)? {
        let path = "/consumers/\(URLEncoding.component(id.rawValue))"
        let answer = try await request("GET", path)
        if answer.status == 404 { return nil }
        guard answer.status == 200 else { throw failure("GET", path, answer) }
        let body = try json("GET", path, answer)
        guard let consumer = Wire.consumer(body) else {
            throw GatewayError("gateway \(name): GET \(path) answered without an id")
        }
        return (consumer, body)
    }

    /// Marks are tags: PATCH the whole array, foreign tags first, then ours.
    public func mark(_ id: ConsumerID, with marks: [String], keeping: [String]) async throws -> Consumer {
        try await setTags(id, keeping + marks)
    }

    func setTags(_ id: ConsumerID, _ tags: [String]) async throws -> Consumer {
        if settings.konnect != nil { return try await putTags(id, tags) }
        let path = "/consumers/\(URLEncoding.component(id.rawValue))"
        let answer: Answer
        do {
            answer = try await request("PATCH", path, body: ["tags": JSONValue(tags)])
        } catch let error as GatewayError where error.timedOut {
            // The PATCH may have landed: read the consumer again before sending it a second time.
            if let (now, _) = try await fetchConsumer(id), now.tagList == tags { return now }
            answer = try await request("PATCH", path, body: ["tags": JSONValue(tags)])
        }
        guard answer.status == 200 else { throw failure("PATCH", path, answer) }
        guard let consumer = Wire.consumer(try json("PATCH", path, answer)) else {
            throw GatewayError("gateway \(name): PATCH \(path) answered without an id")
        }
        return consumer
    }

    /// Konnect offers no PATCH (KONG-FACTS §16): the consumer is read again and PUT whole with the
    /// new tags, every other field as just read (the caller checked our marks on a read made right
    /// before; a foreign tag added in between is kept because `tags` came from that read).
    func putTags(_ id: ConsumerID, _ tags: [String]) async throws -> Consumer {
        let path = "/consumers/\(URLEncoding.component(id.rawValue))"
        guard let (_, current) = try await fetchConsumer(id), case .object(var fields) = current else {
            throw GatewayError("gateway \(name): consumer \(id) is gone", status: 404)
        }
        for key in ["created_at", "updated_at"] { fields[key] = nil }
        fields["tags"] = JSONValue(tags)
        let answer = try await request("PUT", path, body: .object(fields))
        guard answer.status == 200 else { throw failure("PUT", path, answer) }
        guard let consumer = Wire.consumer(try json("PUT", path, answer)) else {
            throw GatewayError("gateway \(name): PUT \(path) answered without an id")
        }
        return consumer
    }

    /// Our block: a request-termination plugin on the consumer alone.
    public func block(_ id: ConsumerID) async throws -> BlockResult {
        let path = "/consumers/\(URLEncoding.component(id.rawValue))/plugins"
        let body: JSONValue = [
            "name": .string(KongPlugin.blockName),
            "config": ["status_code": .int(Int64(Marks.blockStatus)), "message": .string(Marks.blockMessage)],
            "tags": [.string(KongPlugin.ourTag)],
        ]
        let answer: Answer
        do {
            answer = try await request("POST", path, body: body)
        } catch let error as GatewayError where error.timedOut {
            // Sent again, a POST that had landed answers 409 and is recognised as ours below.
            answer = try await request("POST", path, body: body)
        }
        if answer.status == 201, let plugin = Wire.plugin(try json("POST", path, answer)) {
            return .created(BlockID(plugin.id))
        }
        // Konnect answers a unique conflict with 400 (KONG-FACTS §16), Kong with 409.
        if answer.status == 409 || (settings.konnect != nil && answer.status == 400) {
            // One request-termination per consumer: is the one in the way ours?
            let existing = try await list(path, query: []).compactMap(Wire.plugin)
            if let ours = existing.first(where: { $0.isOurs && $0.consumerID == id }) { return .alreadyOurs(BlockID(ours.id)) }
            throw GatewayError(
                "gateway \(name): consumer \(id) already has a request-termination plugin that is not ours (conflict)",
                status: 409)
        }
        throw failure("POST", path, answer)
    }

    public func unblock(_ block: BlockID, of consumer: ConsumerID) async throws {
        let path = "/consumers/\(URLEncoding.component(consumer.rawValue))/plugins/\(URLEncoding.component(block.rawValue))"
        let answer = try await deleteOnceMore(path)
        guard answer.status == 204 || answer.status == 404 else { throw failure("DELETE", path, answer) }
    }

    /// A DELETE that timed out is sent again: one that had landed then answers 404, which counts as done.
    private func deleteOnceMore(_ path: String) async throws -> Answer {
        do {
            return try await request("DELETE", path)
        } catch let error as GatewayError where error.timedOut {
            return try await request("DELETE", path)
        }
    }

    public func deleteKey(_ id: KeyID, of consumer: ConsumerID) async throws {
        let path = "/consumers/\(URLEncoding.component(consumer.rawValue))/key-auth/\(URLEncoding.component(id.rawValue))"
        let answer = try await deleteOnceMore(path)
        guard answer.status == 204 || answer.status == 404 else { throw failure("DELETE", path, answer) }
    }
}

/// A thread-safe round-robin counter for picking a connection.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = Lock()
    func take() -> Int {
        lock.withLock {
            value &+= 1
            return value & Int.max
        }
    }
}

extension KongAdminClient {
    /// A consumer by id, username or custom_id (for `explain`).
    public func findConsumer(_ name: String) async throws -> Consumer? {
        if let (consumer, _) = try await fetchConsumer(ConsumerID(name)) { return consumer }
        // Konnect has no `?custom_id=` (it ignores it and lists the first page, KONG-FACTS §16):
        // there, and anywhere, only a consumer whose custom_id is exactly the name counts.
        if settings.konnect != nil {
            for item in try await list("/consumers", query: []) {
                if let consumer = Wire.consumer(item), consumer.customID == name { return consumer }
            }
            return nil
        }
        let path = "/consumers?custom_id=\(URLEncoding.component(name))"
        let answer = try await request("GET", path)
        guard answer.status == 200 else { throw failure("GET", path, answer) }
        return try json("GET", path, answer)["data"]?.arrayValue?.compactMap(Wire.consumer).first { $0.customID == name }
    }

    /// Pages every key-auth credential and compares fingerprints locally: the key itself is never sent.
    public func findKey(fingerprint: String) async throws -> (key: KeyID, consumer: ConsumerID)? {
        for item in try await list("/key-auths", query: []) {
            guard let key = Wire.key(item), key.fingerprint == fingerprint,
                let consumer = item["consumer"]?["id"]?.stringValue
            else { continue }
            return (key.id, ConsumerID(consumer))
        }
        return nil
    }
}
