import SyncCore
import SyncEngine

/// Kong's JSON shapes (kong-admin-api.md §3) mapped into the core model.
enum Wire {
    static func consumer(_ json: JSONValue) -> Consumer? {
        guard let id = json["id"]?.stringValue else { return nil }
        let tags = json["tags"]?.arrayValue?.compactMap(\.stringValue)
        return Consumer(
            id: ConsumerID(id), username: json["username"]?.stringValue, customID: json["custom_id"]?.stringValue,
            tags: tags)
    }

    static func plugin(_ json: JSONValue) -> ConsumerPlugin? {
        guard let id = json["id"]?.stringValue, let name = json["name"]?.stringValue else { return nil }
        func ref(_ key: String) -> String? { json[key]?["id"]?.stringValue }
        let config = json["config"]
        return ConsumerPlugin(
            id: PluginID(id), name: name, consumerID: ref("consumer").map(ConsumerID.init), routeID: ref("route"),
            serviceID: ref("service"), enabled: json["enabled"]?.boolValue ?? true,
            statusCode: config?["status_code"]?.intValue.map(Int.init),
            trigger: config?["trigger"]?.stringValue,
            tags: json["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// The key's value is fingerprinted here and dropped.
    static func key(_ json: JSONValue) -> KeyRef? {
        guard let id = json["id"]?.stringValue, let value = json["key"]?.stringValue else { return nil }
        return KeyRef(id: KeyID(id), fingerprint: KeyFingerprint.of(value))
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
