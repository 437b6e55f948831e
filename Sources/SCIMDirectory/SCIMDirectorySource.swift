import CurlHTTP
import Logging
import SyncCore
import SyncEngine

/// Reads every user from a SCIM 2.0 service provider (RFC 7644 §3.4.2) with `startIndex`/`count` paging.
///
/// Fails closed (docs/operations.md): a snapshot only if every page answered 200 with valid JSON,
/// `itemsPerPage` equals the resources on the page, `totalResults` stays the same (the listing
/// restarts once if it changes) and equals the users collected, no page is empty before that, and
/// no id repeats. Servers may return fewer than `count`: the next `startIndex` is the previous one
/// plus the resources received.
public final class SCIMDirectorySource: DirectorySource, @unchecked Sendable {
    public let settings: SCIMSettings
    private let logger: Logger
    private let http: HTTPClient
    private let progress: (@Sendable (String) -> Void)?

    public init(settings: SCIMSettings, logger: Logger, progress: (@Sendable (String) -> Void)? = nil) {
        self.settings = settings
        self.logger = logger
        self.progress = progress
        self.http = HTTPClient(
            options: HTTPClientOptions(
                timeoutSeconds: settings.timeoutSeconds, caFile: settings.caFile, shouldAbort: settings.shouldStop))
    }

    var usersURL: String {
        var base = settings.url
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/Users"
    }

    struct TotalChanged: Error {
        var before: Int
        var now: Int
    }

    public func snapshot() async throws -> DirectorySnapshot {
        do {
            return try await readAll()
        } catch let changed as TotalChanged {
            logger.warning(
                "SCIM totalResults changed during the listing; restarting once",
                metadata: ["scim.before": "\(changed.before)", "scim.now": "\(changed.now)"])
            do {
                return try await readAll()
            } catch let again as TotalChanged {
                throw SourceError(
                    "SCIM \(usersURL): totalResults changed during the listing twice (\(again.before) → \(again.now)); the directory is not trustworthy this run")
            }
        }
    }

    /// Checks the connection and credentials with a one-user page (for `check-config --connect`).
    public func checkConnection() async throws -> String {
        let page = try await fetch(startIndex: 1, count: 1)
        return "\(settings.url): \(page["totalResults"]?.intValue ?? 0) users"
    }

    private func readAll() async throws -> DirectorySnapshot {
        var users: [DirectoryUser] = []
        var seen: Set<String> = []
        var startIndex = 1
        var total: Int? = nil
        var pages = 0
        let deadline = ContinuousClock.now + .seconds(settings.readDeadlineSeconds)
        while true {
            if settings.shouldStop() { throw SourceError("SCIM \(usersURL): stopped by a signal during the read") }
            if ContinuousClock.now > deadline {
                throw SourceError(
                    "SCIM \(usersURL): the listing did not finish within read_deadline \(TimeFormat.duration(Int64(settings.readDeadlineSeconds))) (\(pages) pages, \(users.count) users); the directory is not trustworthy this run")
            }
            let page = try await fetch(startIndex: startIndex, count: settings.pageSize)
            pages += 1
            guard let pageTotal = page["totalResults"]?.intValue.map(Int.init), pageTotal >= 0, pageTotal <= 100_000_000 else {
                throw SourceError("SCIM \(usersURL): page \(pages) has no valid totalResults (an integer from 0 to 100000000); the directory is not trustworthy this run")
            }
            if let total, total != pageTotal { throw TotalChanged(before: total, now: pageTotal) }
            total = pageTotal
            let resources = page["Resources"]?.arrayValue ?? []
            if page["Resources"] != nil && page["Resources"]?.arrayValue == nil {
                throw SourceError("SCIM \(usersURL): page \(pages) has a Resources member that is not a list")
            }
            guard let perPage = page["itemsPerPage"]?.intValue, Int(perPage) == resources.count else {
                throw SourceError(
                    "SCIM \(usersURL): page \(pages) says itemsPerPage \(page["itemsPerPage"]?.canonical ?? "nothing") but holds \(resources.count) resources")
            }
            if resources.isEmpty && users.count < pageTotal {
                throw SourceError(
                    "SCIM \(usersURL): page \(pages) (startIndex \(startIndex)) is empty after \(users.count) of \(pageTotal) users; the directory is not trustworthy this run")
            }
            for resource in resources {
                let user = try map(resource, page: pages)
                let key = MatchKey.normalize(user.id.rawValue, as: .id)
                guard seen.insert(key).inserted else {
                    throw SourceError("SCIM \(usersURL): user id \(TextEscape.bounded(user.id.rawValue, limit: 64)) appears twice (page \(pages))")
                }
                users.append(user)
            }
            progress?("directory: page \(pages), \(users.count) of \(pageTotal) users")
            if users.count >= pageTotal { break }
            startIndex += resources.count
        }
        guard users.count == total else {
            throw SourceError(
                "SCIM \(usersURL): collected \(users.count) users but totalResults is \(total ?? -1); the directory is not trustworthy this run")
        }
        return DirectorySnapshot(sourceType: "scim", scope: usersURL, users: users)
    }

    private func map(_ resource: JSONValue, page: Int) throws -> DirectoryUser {
        guard let id = resource[settings.idAttribute]?.stringValue, !id.isEmpty else {
            let internalID = TextEscape.bounded(resource["id"]?.stringValue ?? "?", limit: 64)
            throw SourceError(
                "SCIM \(usersURL): user \(internalID) on page \(page) has no \(settings.idAttribute); check id_attribute")
        }
        let username = resource[settings.usernameAttribute]?.stringValue
        // RFC 7643 §4.1.1: no `active` means active.
        let active = resource["active"]?.boolValue ?? true
        return DirectoryUser(
            id: UserID(id), username: username, state: active ? .active : .deactivated,
            deactivationReason: active ? nil : "SCIM active: false")
    }

    private func fetch(startIndex: Int, count: Int) async throws -> JSONValue {
        var attributes = ["id", settings.usernameAttribute, "active"]
        if settings.idAttribute != "id" { attributes.append(settings.idAttribute) }
        var query = [
            ("startIndex", String(startIndex)), ("count", String(count)), ("attributes", attributes.joined(separator: ",")),
        ]
        if let filter = settings.filter { query.append(("filter", filter)) }
        let url = usersURL + "?" + query.map { "\($0.0)=\(URLEncoding.component($0.1))" }.joined(separator: "&")
        var headers: [(String, String)] = [("Accept", "application/scim+json, application/json")]
        switch settings.auth {
        case .none: break
        case .bearer(let token): headers.append(("Authorization", "Bearer \(token)"))
        case .basic(let user, let password):
            headers.append(("Authorization", "Basic \(Base64.encode(Array("\(user):\(password)".utf8)))"))
        }
        let response: HTTPResponse
        do {
            let logger = self.logger
            response = try await http.send(
                HTTPRequest(method: "GET", url: url, headers: headers), policy: RetryPolicy(retries: settings.retries),
                repeatable: true
            ) { note in
                logger.warning(
                    "scim request retried",
                    metadata: [
                        "scim.start_index": .stringConvertible(startIndex), "http.attempt": .stringConvertible(note.attempt), "http.reason": "\(note.reason)",
                        "http.retry_in_seconds": .stringConvertible(Double(note.delayMilliseconds) / 1000),
                    ])
            }
        } catch let error as HTTPTransportError {
            if error.isAborted { throw SourceError("SCIM \(usersURL): stopped by a signal during the read") }
            if error.isOversized { throw SourceError("SCIM \(usersURL): \(error.description)") }
            throw SourceError("SCIM \(usersURL): \(error.description); check url, the network and ca_file")
        }
        logger.debug("scim page", metadata: ["scim.start_index": .stringConvertible(startIndex), "http.status": .stringConvertible(response.status)])
        switch response.status {
        case 200: break
        case 401, 403:
            throw SourceError("SCIM \(usersURL) answered \(response.status); check token_file or username/password_file")
        default:
            throw SourceError(
                "SCIM \(usersURL) answered \(response.status) for startIndex \(startIndex); the directory is not trustworthy this run")
        }
        do {
            return try JSONParser.parse(response.body)
        } catch {
            throw SourceError("SCIM \(usersURL): the page at startIndex \(startIndex) is not valid JSON (\(error))")
        }
    }
}

/// RFC 4648 base64, for basic auth.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var out = ""
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? table[Int((b1 & 0x0F) << 2 | b2 >> 6)] : "=")
            out.append(i + 2 < bytes.count ? table[Int(b2 & 0x3F)] : "=")
            i += 3
        }
        return out
    }
}
