#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SyncCore
import SyncEngine

/// The append-only, hash-chained journal file (product.md §7), opened for writing by one real run.
///
/// Opening scans the file once: it learns the last seq and hash and the users of the last good run,
/// and truncates a torn last line (what a crash mid-append leaves), remembering that in `repaired`.
public final class JournalFile: JournalStore, @unchecked Sendable {
    public let path: String
    public var headPath: String { path + ".head" }
    /// Set when opening cut a torn last line; goes into the next `run-started` record.
    public private(set) var repaired: String?
    public private(set) var lastGoodUsers: Int?
    /// The previous run, when it was killed before its last record (see `JournalScan.interrupted`).
    public private(set) var interrupted: (run: String, unfinishedIntents: [Int64])?
    private var fd: Int32
    private var lastSeq: Int64
    private var lastHash: String
    private let lock = PThreadLock()

    public init(path: String) throws {
        self.path = path
        let scan = try JournalScan.scan(path: path, repairTornTail: true)
        self.lastSeq = scan.lastSeq
        self.lastHash = scan.lastHash
        self.lastGoodUsers = scan.lastGoodUsers
        self.repaired = scan.repaired
        self.interrupted = scan.interrupted
        let existed = access(path, F_OK) == 0
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JournalError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if !existed { fchmod(fd, 0o640) }
        self.fd = fd
    }

    deinit { close(fd) }

    public var head: String { lock.withLock { "\(lastSeq):\(lastHash)" } }

    /// Appends one record and fsyncs it before returning; the head file follows.
    @discardableResult
    public func append(_ fields: [String: JSONValue]) throws -> Int64 {
        try lock.withLock {
            var record = fields
            record["seq"] = .int(lastSeq + 1)
            record["time"] = .string(TimeFormat.rfc3339(Self.wallClock()))
            record["prev"] = .string(lastHash)
            record["hash"] = nil
            let hash = JournalRecord.hash(of: record)
            record["hash"] = .string(hash)
            let line = Array((JSONValue.object(record).canonical + "\n").utf8)
            let size = lseek(fd, 0, SEEK_END)
            var written = 0
            while written < line.count {
                let n = line.withUnsafeBytes { write(fd, $0.baseAddress! + written, line.count - written) }
                if n < 0 {
                    if errno == EINTR { continue }
                    let reason = String(cString: strerror(errno))
                    if size >= 0 { _ = ftruncate(fd, size) }
                    throw JournalError.cannotWrite(path: path, reason: reason)
                }
                written += n
            }
            guard fsync(fd) == 0 else {
                let reason = String(cString: strerror(errno))
                if size >= 0 { _ = ftruncate(fd, size) }
                throw JournalError.cannotWrite(path: path, reason: "fsync: \(reason)")
            }
            lastSeq += 1
            lastHash = hash
            writeHead()
            return lastSeq
        }
    }

    /// `<journal>.head` holds `seq:hash`; written by rename so a reader never sees half of it.
    private func writeHead() {
        let tmp = headPath + ".tmp"
        let text = Array("\(lastSeq):\(lastHash)\n".utf8)
        let hfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard hfd >= 0 else { return }
        _ = text.withUnsafeBytes { write(hfd, $0.baseAddress!, text.count) }
        close(hfd)
        rename(tmp, headPath)
    }

    static func wallClock() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

/// One pass over a journal to find where to continue.
public struct JournalScan {
    public var lastSeq: Int64 = 0
    public var lastHash: String = JournalRecord.genesis
    public var lastGoodUsers: Int?
    public var repaired: String?
    /// The last run, when it has no `run-finished` or `run-refused` (it was killed), and the seqs of
    /// its intents that have no outcome: writes that may or may not have reached the gateway.
    public var interrupted: (run: String, unfinishedIntents: [Int64])?

    /// Reads the file (missing = empty). Only the last line and `run-finished` lines are parsed;
    /// other fields are picked from the canonical text without a full parse.
    public static func scan(path: String, repairTornTail: Bool) throws -> JournalScan {
        var result = JournalScan()
        guard access(path, F_OK) == 0 else { return result }
        guard let reader = LineReader(path: path) else {
            throw JournalError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        var last: [UInt8]? = nil
        var lineNumber = 0
        var torn: (start: Int64, length: Int)? = nil
        let finished = Array("\"event\":\"run-finished\"".utf8)
        let refused = Array("\"event\":\"run-refused\"".utf8)
        let started = Array("\"event\":\"run-started\"".utf8)
        let intent = Array("\"event\":\"intent\"".utf8)
        let outcome = Array("\"event\":\"outcome\"".utf8)
        var runOpen: String? = nil
        var openIntents: [Int64] = []
        while let line = reader.next() {
            lineNumber += 1
            if !line.terminated {
                torn = (line.start, line.bytes.count)
                break
            }
            last = Array(line.bytes)
            if contains(line.bytes, started) {
                runOpen = stringField(line.bytes, "run") ?? "unknown"
                openIntents = []
            } else if contains(line.bytes, intent) {
                if let seq = intField(line.bytes, "seq") { openIntents.append(seq) }
            } else if contains(line.bytes, outcome) {
                if let seq = intField(line.bytes, "intent") { openIntents.removeAll { $0 == seq } }
            } else if contains(line.bytes, finished) {
                runOpen = nil
                if let record = try? JSONParser.parse(Array(line.bytes)), record["outcome"]?.stringValue == "ok",
                    let users = record["users"]?.intValue
                {
                    result.lastGoodUsers = Int(users)
                }
            } else if contains(line.bytes, refused) {
                runOpen = nil
            }
        }
        if let runOpen { result.interrupted = (runOpen, openIntents) }
        if let last {
            guard let record = try? JSONParser.parse(last), let seq = record["seq"]?.intValue,
                let hash = record["hash"]?.stringValue
            else {
                throw JournalError.corrupt(path: path, line: lineNumber - (torn == nil ? 0 : 1), reason: "the last record is not valid JSON")
            }
            result.lastSeq = seq
            result.lastHash = hash
        }
        if let torn, repairTornTail {
            guard truncate(path, off_t(torn.start)) == 0 else {
                throw JournalError.cannotWrite(path: path, reason: "cannot truncate a torn last line: \(String(cString: strerror(errno)))")
            }
            result.repaired = "truncated a torn last line of \(torn.length) bytes at byte \(torn.start) (a run was killed mid-append)"
        }
        return result
    }

    /// `"key":123` in canonical JSON, without parsing the line.
    static func intField(_ line: UnsafeBufferPointer<UInt8>, _ key: String) -> Int64? {
        guard let start = find(line, Array("\"\(key)\":".utf8)) else { return nil }
        var i = start, value: Int64 = 0, digits = 0
        while i < line.count, line[i] >= 48, line[i] <= 57 {
            value = value &* 10 &+ Int64(line[i] - 48)
            i += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// `"key":"text"` in canonical JSON (text without escapes), without parsing the line.
    static func stringField(_ line: UnsafeBufferPointer<UInt8>, _ key: String) -> String? {
        guard let start = find(line, Array("\"\(key)\":\"".utf8)) else { return nil }
        var i = start
        while i < line.count, line[i] != UInt8(ascii: "\""), line[i] != UInt8(ascii: "\\") { i += 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: line[start..<i]), as: UTF8.self)
    }

    /// The index just after the first occurrence of `needle`.
    static func find(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count, let first = needle.first else { return nil }
        var i = 0
        let end = haystack.count - needle.count
        while i <= end {
            if haystack[i] == first {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i + needle.count }
            }
            i += 1
        }
        return nil
    }

    static func contains(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        find(haystack, needle) != nil
    }
}
