import SyncCore

/// Filters of `idp-sync journal` (combinable: a record must match every one given).
public struct JournalQuery: Sendable {
    public var run: String?
    /// RFC 3339 UTC bounds, compared as text (the journal writes one fixed format).
    public var since: String?
    public var until: String?
    /// A consumer's id, username or custom_id.
    public var consumer: String?
    /// A user's id or username.
    public var user: String?
    public var action: String?
    public var gateway: String?
    /// A key's fingerprint (`sha256:…`).
    public var keyFingerprint: String?

    public init(
        run: String? = nil, since: String? = nil, until: String? = nil, consumer: String? = nil, user: String? = nil,
        action: String? = nil, gateway: String? = nil, keyFingerprint: String? = nil
    ) {
        self.keyFingerprint = keyFingerprint
        self.run = run
        self.since = since
        self.until = until
        self.consumer = consumer
        self.user = user
        self.action = action
        self.gateway = gateway
    }

    public var isEmpty: Bool {
        run == nil && since == nil && until == nil && consumer == nil && user == nil && action == nil && gateway == nil
            && keyFingerprint == nil
    }

    /// Quoted JSON strings every matching line must contain: a cheap byte search before any parse.
    var needles: [[UInt8]] {
        [run, consumer, user, action, gateway, keyFingerprint].compactMap { value in
            value.map { Array(JSONValue.string($0).canonical.utf8) }
        }
    }

    public func matches(_ record: JSONValue) -> Bool {
        if let run, record["run"]?.stringValue != run { return false }
        if let time = record["time"]?.stringValue {
            if let since, time < since { return false }
            if let until, time > until { return false }
        }
        if let action, record["action"]?.stringValue != action { return false }
        if let gateway, record["gateway"]?.stringValue != gateway { return false }
        if let keyFingerprint {
            guard record["keys"]?.arrayValue?.contains(where: { $0["fingerprint"]?.stringValue == keyFingerprint }) == true
            else { return false }
        }
        if let consumer {
            let c = record["consumer"]
            guard c?["id"]?.stringValue == consumer || c?["username"]?.stringValue == consumer
                || c?["custom_id"]?.stringValue == consumer
            else { return false }
        }
        if let user {
            let u = record["user"]
            let c = record["consumer"]
            // A missing user is named by the consumer's link value (custom_id holds the user id).
            guard u?["id"]?.stringValue == user || u?["username"]?.stringValue == user
                || (u == nil || u == .null) && (c?["custom_id"]?.stringValue == user)
            else { return false }
        }
        return true
    }
}

/// Streams matching records from a journal file, in bounded memory.
public struct JournalReader {
    public let path: String

    public init(path: String) { self.path = path }

    /// Reads complete lines from `offset` on and returns the offset after the last complete line
    /// (a line still being written is left for the next call, which is how `--follow` works).
    @discardableResult
    public func read(from offset: Int64 = 0, query: JournalQuery, _ emit: (JSONValue, String) throws -> Void) throws
        -> Int64
    {
        guard let reader = LineReader(path: path, offset: offset) else {
            throw JournalError.cannotOpen(path: path, reason: "no such file or not readable")
        }
        let needles = query.needles
        var end = offset
        while let line = reader.next() {
            guard line.terminated else { break }
            end = reader.offset
            if !needles.allSatisfy({ JournalScan.find(line.bytes, $0) != nil }) { continue }
            guard let record = try? JSONParser.parse(Array(line.bytes)) else { continue }
            if query.matches(record) {
                try emit(record, String(decoding: line.bytes, as: UTF8.self))
            }
        }
        return end
    }
}
