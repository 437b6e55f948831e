import SyncCore
import SyncEngine

/// Kong's JSON shapes (Fixtures/kong/KONG-FACTS.md §3) mapped into the core model.
enum Wire {
    static func consumer(_ json: JSONValue) -> Consumer? {
        guard let id = json["id"]?.stringValue else { return nil }
        let tags = json["tags"]?.arrayValue?.compactMap(\.stringValue)
        return Consumer(
            id: ConsumerID(id), username: json["username"]?.stringValue, customID: json["custom_id"]?.stringValue,
            tags: tags)
    }

    static func plugin(_ json: JSONValue) -> KongPlugin? {
        guard let id = json["id"]?.stringValue, let name = json["name"]?.stringValue else { return nil }
        func ref(_ key: String) -> String? { json[key]?["id"]?.stringValue }
        let config = json["config"]
        return KongPlugin(
            id: id, name: name, consumerID: ref("consumer").map(ConsumerID.init), routeID: ref("route"),
            serviceID: ref("service"), enabled: json["enabled"]?.boolValue ?? true,
            statusCode: config?["status_code"]?.intValue.map(Int.init),
            trigger: config?["trigger"]?.stringValue,
            tags: json["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// The key's value is fingerprinted here and dropped. A `ttl` is the seconds left (§7): with
    /// `now` it becomes the time the key expires.
    static func key(_ json: JSONValue, now: Int64? = nil) -> KeyRef? {
        guard let id = json["id"]?.stringValue, let value = json["key"]?.stringValue else { return nil }
        var expiresAt: Int64? = nil
        if let now, let ttl = json["ttl"]?.intValue, ttl >= 0 { expiresAt = TimeFormat.adding(now, ttl) }
        return KeyRef(id: KeyID(id), fingerprint: KeyFingerprint.of(value), expiresAt: expiresAt)
    }

    /// The credential types besides key-auth, by their path under `/consumers/{c}/`.
    static let otherCredentialTypes = ["basic-auth", "hmac-auth", "jwt", "oauth2"]

    /// A credential by what names it; its secret (password, hmac or jwt secret, client_secret) is
    /// never read out of the JSON.
    static func credential(_ json: JSONValue, type: String) -> CredentialRef? {
        guard let id = json["id"]?.stringValue else { return nil }
        let field =
            switch type {
            case "basic-auth", "hmac-auth": "username"
            case "jwt": "key"
            case "oauth2": "client_id"
            default: "id"
            }
        let value = json[field]?.stringValue ?? "?"
        return CredentialRef(type: type, id: id, identity: "\(field)=\(TextEscape.bounded(value, limit: 200))")
    }

    /// True when the consumer carries every tag of `select_tags`.
    static func isManaged(_ json: JSONValue, selectTags: [String]) -> Bool {
        let tags = json["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return selectTags.allSatisfy(tags.contains)
    }

    /// Kong's two error shapes (§10) as one line: the DAO `message`, or the plain `message`;
    /// bounded, control characters escaped, and any copy of `secret` (an echoed token) masked.
    static func errorMessage(_ body: [UInt8], secret: String? = nil) -> String {
        guard let json = try? JSONParser.parse(body), let message = json["message"]?.stringValue else {
            return body.isEmpty ? "empty body" : "a non-JSON body"
        }
        var text = message
        if let name = json["name"]?.stringValue { text = "\(name): \(message)" }
        if let secret, !secret.isEmpty { text = text.replacingAll(secret, with: "[redacted]") }
        return TextEscape.bounded(text, limit: 200)
    }
}

extension String {
    /// Every occurrence of `needle` replaced (no Foundation).
    func replacingAll(_ needle: String, with replacement: String) -> String {
        guard !needle.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: needle) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}

/// A Kong plugin instance bound to a consumer. Only this adapter knows plugins: to the core, our
/// request-termination plugin is "our block", and a person's is a `ForeignBlock`.
struct KongPlugin: Hashable, Sendable {
    /// Our block is a request-termination plugin on the consumer alone, tagged `idp-sync`.
    static let blockName = "request-termination"
    static let ourTag = "idp-sync"

    var id: String
    var name: String
    var consumerID: ConsumerID?
    var routeID: String?
    var serviceID: String?
    var enabled: Bool
    var statusCode: Int?
    var trigger: String?
    var tags: [String]

    /// Scoped to the consumer alone: route and service both null.
    var isConsumerOnly: Bool { consumerID != nil && routeID == nil && serviceID == nil }

    /// Our own block: request-termination on the consumer alone, tagged `idp-sync`.
    var isOurs: Bool { name == Self.blockName && isConsumerOnly && tags.contains(Self.ourTag) }

    /// A person's request-termination on the consumer alone: Kong allows one per (consumer, route,
    /// service), so it keeps ours out. Enabled, without a trigger and with a status of at least 400
    /// it already blocks the consumer; otherwise it blocks nothing (a conflict a person resolves).
    var foreignBlock: ForeignBlock? {
        guard name == Self.blockName, isConsumerOnly, !isOurs else { return nil }
        if enabled && trigger == nil && (statusCode ?? 503) >= 400 {
            return .blocking("request-termination plugin \(id)")
        }
        let state = !enabled ? "disabled" : trigger != nil ? "has a trigger" : "status \(statusCode ?? 503)"
        return .conflicting("request-termination plugin \(id) (\(state))")
    }
}
