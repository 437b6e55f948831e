import SyncCore

/// Filters of `idp-sync journal`. Filters of different keys combine (a record must match each key
/// given); several values of one key are alternatives (`--action flag --action disable`).
public struct JournalQuery: Sendable {
    /// Run ids; any of them.
    public var run: [String]
    /// RFC 3339 UTC bounds, compared as text (the journal writes one fixed format).
    public var since: String?
    public var until: String?
    /// Consumers, each by id, username or custom_id; any of them.
    public var consumer: [String]
    /// Users, each by id or username; any of them.
    public var user: [String]
    public var action: [String]
    public var gateway: [String]
    /// A key's fingerprint (`sha256:…`).
    public var keyFingerprint: String?

    public init(
        run: [String] = [], since: String? = nil, until: String? = nil, consumer: [String] = [], user: [String] = [],
        action: [String] = [], gateway: [String] = [], keyFingerprint: String? = nil
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
        run.isEmpty && since == nil && until == nil && consumer.isEmpty && user.isEmpty && action.isEmpty
            && gateway.isEmpty && keyFingerprint == nil
    }

    /// Quoted JSON strings a matching line must contain, one of each group: a cheap byte search
    /// before any parse.
    var needles: [[[UInt8]]] {
        [run, consumer, user, action, gateway, keyFingerprint.map { [$0] } ?? []].filter { !$0.isEmpty }.map { values in
            values.map { Array(JSONValue.string($0).canonical.utf8) }
        }
    }

    public func matches(_ record: JSONValue) -> Bool {
        func any(_ values: [String], _ test: (String) -> Bool) -> Bool {
            values.isEmpty || values.contains(where: test)
        }
        if !any(run, { record["run"]?.stringValue == $0 }) { return false }
        if let time = record["time"]?.stringValue {
            if let since, time < since { return false }
            if let until, time > until { return false }
        }
        if !any(action, { record["action"]?.stringValue == $0 }) { return false }
        if !any(gateway, { record["gateway"]?.stringValue == $0 }) { return false }
        if let keyFingerprint {
            guard record["keys"]?.arrayValue?.contains(where: { $0["fingerprint"]?.stringValue == keyFingerprint }) == true
            else { return false }
        }
        let c = record["consumer"]
        let consumerMatches = any(consumer) { consumer in
            c?["id"]?.stringValue == consumer || c?["username"]?.stringValue == consumer
                || c?["custom_id"]?.stringValue == consumer
        }
        if !consumerMatches { return false }
        let u = record["user"]
        let userMatches = any(user) { user in
            // A missing user is named by the consumer's link value (custom_id holds the user id).
            u?["id"]?.stringValue == user || u?["username"]?.stringValue == user
                || (u == nil || u == .null) && (c?["custom_id"]?.stringValue == user)
        }
        return userMatches
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
        let reader = try open(offset)
        return try scan(reader, from: offset, query: query, problems: &problems) { record, line in
            try emit(record, String(decoding: line.bytes, as: UTF8.self))
        }
    }

    /// Only the last `last` matching records (every one when nil), oldest first or, with
    /// `reverse`, newest first: `journalctl -n` and `-r`. Problems are counted over every matching
    /// record, shown or not. Memory: the place in the file of each record kept (at most `last`);
    /// the kept records are read again to emit them. Returns the offset after the last complete line.
    @discardableResult
    public func read(
        from offset: Int64 = 0, query: JournalQuery, last: Int?, reverse: Bool, problems: inout ReadProblems,
        _ emit: (JSONValue, String) throws -> Void
    ) throws -> Int64 {
        if last == nil && !reverse { return try read(from: offset, query: query, problems: &problems, emit) }
        let reader = try open(offset)
        var kept = Kept(limit: last)
        let end = try scan(reader, from: offset, query: query, problems: &problems) { _, line in
            kept.add(Span(start: line.start, count: line.bytes.count))
        }
        let spans = kept.inOrder
        for span in reverse ? spans.reversed() : spans {
            // Appended to only, so the line is still there; a file replaced meanwhile shows nothing.
            guard let bytes = reader.bytes(at: span.start, count: span.count),
                let record = try? JSONParser.parse(bytes), record.objectValue != nil
            else { continue }
            try emit(record, String(decoding: bytes, as: UTF8.self))
        }
        return end
    }

    private func open(_ offset: Int64) throws -> LineReader {
        guard let reader = LineReader(path: path, offset: offset) else {
            throw JournalError.cannotOpen(path: path, reason: "no such file, not a regular file, or not readable")
        }
        return reader
    }

    /// The one pass over the lines: byte search, parse, filter, hash check; `emit` sees each
    /// matching record and its line (valid only during the call).
    private func scan(
        _ reader: LineReader, from offset: Int64, query: JournalQuery, problems: inout ReadProblems,
        _ emit: (JSONValue, LineReader.Line) throws -> Void
    ) throws -> Int64 {
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
            if !needles.allSatisfy({ group in group.contains { JournalScan.find(line.bytes, $0) != nil } }) { continue }
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
                try emit(record, line)
            }
        }
        return end
    }

    /// Where one line is: its first byte and its length without the newline.
    struct Span {
        var start: Int64
        var count: Int
    }

    /// The last `limit` spans added (all when nil), in a ring.
    struct Kept {
        let limit: Int?
        private var ring: [Span] = []
        private var next = 0

        init(limit: Int?) { self.limit = limit.map { max(0, $0) } }

        mutating func add(_ span: Span) {
            guard let limit else { return ring.append(span) }
            guard limit > 0 else { return }
            if ring.count < limit {
                ring.append(span)
            } else {
                ring[next] = span
                next = (next + 1) % limit
            }
        }

        var inOrder: [Span] { Array(ring[next...] + ring[..<next]) }
    }
}
