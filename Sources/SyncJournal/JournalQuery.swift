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

/// Lines a reader met that are no valid records, or records whose hash does not match.
public struct ReadProblems: Sendable, Equatable {
    /// Lines that are not JSON records (or longer than a record can be).
    public var garbled = 0
    /// Matching records whose stored hash is not the hash of their content (edited).
    public var edited = 0
    /// The first few line numbers, for the warning.
    public var lines: [Int] = []

    public init() {}

    public var isEmpty: Bool { garbled == 0 && edited == 0 }

    mutating func note(_ line: Int, garbled isGarbled: Bool) {
        if isGarbled { garbled += 1 } else { edited += 1 }
        if lines.count < 5 { lines.append(line) }
    }

    /// One line for stderr, naming what to run next.
    public var warning: String {
        var parts: [String] = []
        if garbled > 0 { parts.append("\(garbled) line(s) are not valid records") }
        if edited > 0 { parts.append("\(edited) record(s) do not match their hash (edited)") }
        return parts.joined(separator: " and ") + " (line \(lines.map(String.init).joined(separator: ", "))"
            + (garbled + edited > lines.count ? ", …" : "") + "); run 'idp-sync journal verify'"
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
        var problems = ReadProblems()
        return try read(from: offset, query: query, problems: &problems, emit)
    }

    /// Like `read`, counting garbled lines and edited records among those it looked at (lines a
    /// filter's byte search skips are not parsed, so they are not counted).
    @discardableResult
    public func read(
        from offset: Int64 = 0, query: JournalQuery, problems: inout ReadProblems, _ emit: (JSONValue, String) throws -> Void
    ) throws -> Int64 {
        guard let reader = LineReader(path: path, offset: offset) else {
            throw JournalError.cannotOpen(path: path, reason: "no such file, not a regular file, or not readable")
        }
        let needles = query.needles
        var end = offset
        var lineNumber = 0
        while let line = reader.next() {
            guard line.terminated else { break }
            lineNumber += 1
            end = reader.offset
            if line.tooLong {
                problems.note(lineNumber, garbled: true)
                continue
            }
            if !needles.allSatisfy({ JournalScan.find(line.bytes, $0) != nil }) { continue }
            guard let record = try? JSONParser.parse(Array(line.bytes)), record.objectValue != nil else {
                problems.note(lineNumber, garbled: true)
                continue
            }
            if query.matches(record) {
                // The verifier's own check: the hash over the line's bytes, canonicalised only when needed.
                if case .success(let checked) = JournalRecord.check(line.bytes), checked.hashOK {
                } else {
                    problems.note(lineNumber, garbled: false)
                }
                try emit(record, String(decoding: line.bytes, as: UTF8.self))
            }
        }
        return end
    }
}
