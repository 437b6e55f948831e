#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SyncCore
import SyncEngine

/// The append-only, hash-chained journal file (docs/journal.md), opened for writing by one real run.
///
/// Opening checks the file before anything is appended: the chain's links (seq and prev of every
/// line, the last record's hash) and its tail against `<journal>.head`. Only the two crash leftovers
/// of §7 are accepted — a head one record behind, and a torn last line after the record the head
/// names, which is truncated and remembered in `repaired`. Anything else (records cut, the file
/// deleted or swapped, a line edited in place) is tampering: opening throws `JournalError.tampered`
/// and the run writes nothing. Files are opened relative to a checked directory, never through a
/// symlink (`SafeDirectory`).
public final class JournalFile: JournalStore, @unchecked Sendable {
    public let path: String
    public var headPath: String { path + ".head" }
    /// Set when opening cut a torn last line; goes into the next `run-started` record.
    public private(set) var repaired: String?
    public private(set) var lastGoodUsers: Int?
    /// The previous run, when it was killed before its last record (see `JournalScan.interrupted`).
    public private(set) var interrupted: (run: String, unfinishedIntents: [Int64])?
    /// See `JournalScan.disabledByUs`.
    public private(set) var disabledByUs: [String: [String: Int64]] = [:]
    /// See `JournalScan.recentDisables`.
    public private(set) var recentDisables: [Int64] = []
    /// Set when an existing journal had a mode wider than 0640 and was narrowed to it.
    public private(set) var modeFixed: String?
    let directory: SafeDirectory
    let name: String
    private var fd: Int32
    private var lastSeq: Int64
    private var lastHash: String
    private let lock = Lock()

    /// Opens (or creates) the journal at `path`, checking its directory first.
    public convenience init(path: String) throws {
        let (directory, _) = SafeDirectory.split(path)
        try self.init(path: path, directory: try JournalFile.directory(directory))
    }

    static func directory(_ path: String) throws -> SafeDirectory {
        do {
            return try SafeDirectory(path, role: "journal directory")
        } catch let error as FileSafetyError {
            throw JournalError.unsafe(error.description)
        }
    }

    init(path: String, directory: SafeDirectory) throws {
        self.path = path
        self.directory = directory
        self.name = SafeDirectory.split(path).name
        let head = JournalHead.read(directory, name: name)
        var existing: Int32? = nil
        do {
            existing = try directory.open(name, O_RDWR | O_APPEND)
        } catch let error as FileSafetyError where error.errno == ENOENT {
            existing = nil
        } catch let error as FileSafetyError {
            throw JournalError.unsafe(error.description)
        }
        guard let fd = existing else {
            let newFD: Int32
            // A new journal, unless the head says records were written before.
            if let problem = JournalTail.problemForMissingFile(head: head) {
                throw JournalError.tampered(path: path, problem: problem)
            }
            if head == .missing {
                // Head first: a crash in the middle of the first append then leaves the §7 leftover.
                try Self.writeHead(directory, name: name, path: path, seq: 0, hash: JournalRecord.genesis)
            }
            do {
                newFD = try directory.open(name, O_RDWR | O_APPEND | O_CREAT | O_EXCL, mode: 0o640)
            } catch {
                throw JournalError.cannotOpen(path: path, reason: "\(error)")
            }
            fchmod(newFD, 0o640)
            self.fd = newFD
            self.lastSeq = 0
            self.lastHash = JournalRecord.genesis
            return
        }
        self.fd = fd
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o777 & ~0o640 != 0 {
            let old = String(info.st_mode & 0o777, radix: 8)
            guard fchmod(fd, info.st_mode & 0o640) == 0 else {
                close(fd)
                throw JournalError.unsafe("journal \(path) has mode \(old) and cannot be set to 0640: \(String(cString: strerror(errno)))")
            }
            modeFixed = "the journal's mode was \(old); set to 0640"
        }
        let scan = JournalScan.scan(LineReader(fd: fd, owns: false))
        switch JournalTail.check(scan, head: head) {
        case .tampered(let problem):
            close(fd)
            throw JournalError.tampered(path: path, problem: problem)
        case .ok:
            break
        case .repairTornTail(let start, let length):
            guard ftruncate(fd, off_t(start)) == 0, fsync(fd) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw JournalError.cannotWrite(path: path, reason: "cannot truncate a torn last line: \(reason)")
            }
            repaired = "truncated a torn last line of \(length) bytes at byte \(start) (a run was killed mid-append)"
        }
        self.lastSeq = scan.lastSeq
        self.lastHash = scan.lastHash
        self.lastGoodUsers = scan.lastGoodUsers
        self.interrupted = scan.interrupted
        self.disabledByUs = scan.disabledByUs
        self.recentDisables = scan.recentDisables
    }

    deinit { close(fd) }

    public var head: String { lock.withLock { "\(lastSeq):\(lastHash)" } }

    /// Appends the records in order with one write and one fsync (a group commit): all of them are
    /// durable when this returns, or none is kept. The head file follows. Journal and head never
    /// disagree by more than what a crash leaves: if the head cannot be written (a full disk), the
    /// records are taken back and the append fails, so the caller makes no gateway write.
    @discardableResult
    public func append(contentsOf events: [JournalEvent]) throws -> [Int64] {
        try append(fields: events.map(\.fields))
    }

    /// Appends one record given as fields (journal-internal; tests use it to write odd records).
    @discardableResult
    func append(fields: [String: JSONValue]) throws -> Int64 {
        try append(fields: [fields])[0]
    }

    func append(fields list: [[String: JSONValue]]) throws -> [Int64] {
        guard !list.isEmpty else { return [] }
        return try lock.withLock {
            var bytes: [UInt8] = []
            var seqs: [Int64] = []
            var seq = lastSeq, hash = lastHash
            let time = JSONValue.string(TimeFormat.rfc3339(Self.wallClock()))
            for fields in list {
                seq += 1
                var record = fields
                record["seq"] = .int(seq)
                record["time"] = time
                record["prev"] = .string(hash)
                record["hash"] = nil
                hash = JournalRecord.hash(of: record)
                record["hash"] = .string(hash)
                bytes.append(contentsOf: JSONValue.object(record).canonical.utf8)
                bytes.append(0x0A)
                seqs.append(seq)
            }
            let size = lseek(fd, 0, SEEK_END)
            func takeBack() {
                if size >= 0 {
                    _ = ftruncate(fd, size)
                    _ = fsync(fd)
                }
            }
            do {
                try writeAll(fd, bytes)
            } catch {
                takeBack()
                throw JournalError.cannotWrite(path: path, reason: "\(error)")
            }
            guard fsync(fd) == 0 else {
                let reason = String(cString: strerror(errno))
                takeBack()
                throw JournalError.cannotWrite(path: path, reason: "fsync: \(reason)")
            }
            do {
                try Self.writeHead(directory, name: name, path: path, seq: seq, hash: hash)
            } catch {
                takeBack()
                throw JournalError.cannotWrite(
                    path: path, reason: "\(error); the record was taken back, so the journal and its head still agree")
            }
            lastSeq = seq
            lastHash = hash
            return seqs
        }
    }

    /// `<journal>.head` holds `seq:hash`; written by rename so a reader never sees half of it.
    static func writeHead(_ directory: SafeDirectory, name: String, path: String, seq: Int64, hash: String) throws {
        do {
            try directory.replace(name + ".head", with: Array("\(seq):\(hash)\n".utf8), mode: 0o640, sync: false)
        } catch {
            throw JournalError.cannotWrite(path: path + ".head", reason: "\(error)")
        }
    }

    static func wallClock() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

/// What `<journal>.head` says.
enum JournalHead: Equatable {
    case missing
    /// Present but empty or not `SEQ:HASH` (a failed write of an old version, or an edit).
    case unreadable
    case value(seq: Int64, hash: String)

    static func read(_ directory: SafeDirectory, name: String) -> JournalHead {
        guard let bytes = try? directory.read(name + ".head", limit: 256) else {
            return directory.exists(name + ".head") ? .unreadable : .missing
        }
        return parse(bytes)
    }

    /// Reads a head file by path, for `verify` (no directory check: reading only).
    static func read(path: String) -> JournalHead {
        guard let reader = LineReader(path: path, maxLine: 256) else {
            return access(path, F_OK) == 0 ? .unreadable : .missing
        }
        // The line's bytes live in the reader's storage: parse them while it is alive.
        return withExtendedLifetime(reader) {
            guard let line = reader.next(), !line.tooLong else { return .unreadable }
            return parse(Array(line.bytes))
        }
    }

    static func parse(_ bytes: [UInt8]) -> JournalHead {
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 18,
            parts[0].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let seq = Int64(parts[0]),
            JournalRecord.isHex64(String(parts[1]))
        else { return .unreadable }
        return .value(seq: seq, hash: String(parts[1]))
    }

    var text: String {
        switch self {
        case .missing: return "missing"
        case .unreadable: return "unreadable"
        case .value(let seq, let hash): return "\(seq):\(hash)"
        }
    }
}

/// The decision a run makes about a journal's tail before it appends (docs/journal.md): pure, so
/// every case has a table test.
enum JournalTail: Equatable {
    case ok
    case repairTornTail(start: Int64, length: Int)
    case tampered(String)

    static func problemForMissingFile(head: JournalHead) -> String? {
        switch head {
        case .missing: return nil
        case .value(let seq, let hash) where seq == 0 && hash == JournalRecord.genesis: return nil
        case .value(let seq, _):
            return "the journal file is missing but its head says seq \(seq): it was deleted or moved"
        case .unreadable:
            return "the journal file is missing and its head file is unreadable"
        }
    }

    static func check(_ scan: JournalScan, head: JournalHead) -> JournalTail {
        if let problem = scan.problem { return .tampered(problem) }
        let last = JournalHead.value(seq: scan.lastSeq, hash: scan.lastHash)
        if let torn = scan.torn {
            if head == last { return .repairTornTail(start: torn.start, length: torn.length) }
            return .tampered(
                "line \(scan.records + 1) is an unterminated last line that the head (\(head.text)) does not explain")
        }
        if head == last { return .ok }
        if scan.records > 0, head == .value(seq: scan.beforeLast.seq, hash: scan.beforeLast.hash) {
            return .ok  // a run was killed between its append and the head update
        }
        switch head {
        case .missing where scan.records <= 1:
            return .ok  // an old version was killed right after its first append
        case .missing:
            return .tampered("the head file is missing, so a cut tail cannot be ruled out (\(scan.records) records)")
        case .unreadable:
            return .tampered("the head file is empty or unreadable (an edit, or a failed write of an idp-sync older than 1.1)")
        case .value(let seq, _) where seq > scan.lastSeq:
            return .tampered(
                "records were cut: the journal ends at seq \(scan.lastSeq) but its head says seq \(seq)")
        case .value(let seq, let hash):
            return .tampered(
                "the head (\(seq):\(hash)) does not match the journal's last record \(scan.lastSeq):\(scan.lastHash)")
        }
    }
}

/// One pass over a journal to learn where to continue and whether its chain links hold.
///
/// Cheap on purpose (it runs before every real run): seq and prev of every line are read from the
/// canonical text without a parse, and only the last record's hash is recomputed; `journal verify`
/// recomputes every hash.
public struct JournalScan {
    public var lastSeq: Int64 = 0
    public var lastHash: String = JournalRecord.genesis
    public var beforeLast: (seq: Int64, hash: String) = (0, JournalRecord.genesis)
    public var records = 0
    public var lastGoodUsers: Int?
    /// Consumers this journal says idp-sync disabled and has not restored since, by gateway then
    /// consumer id, with the time of that disable (so a consumer stripped of our marks and block
    /// while its user is still gone is disabled again at once).
    public var disabledByUs: [String: [String: Int64]] = [:]
    /// When each disable of the last hour of the journal was applied, except in runs whose plan an
    /// operator accepted (`watch`'s hourly brake counts them, so a restart does not reset it).
    public var recentDisables: [Int64] = []
    /// The last run, when it has no `run-finished` or `run-refused` (it was killed), and the seqs of
    /// its intents that have no outcome: writes that may or may not have reached the gateway.
    public var interrupted: (run: String, unfinishedIntents: [Int64])?
    /// An unterminated last line: where it starts and how long it is.
    public var torn: (start: Int64, length: Int)?
    /// The first line that does not chain, or the last record edited.
    public var problem: String?

    /// Scans the file at `path` without changing it (missing = empty); for dry runs.
    public static func scan(path: String) throws -> JournalScan {
        guard access(path, F_OK) == 0 else { return JournalScan() }
        guard let reader = LineReader(path: path) else {
            throw JournalError.cannotOpen(path: path, reason: "not a regular file, a symlink, or not readable")
        }
        return scan(reader)
    }

    static func scan(_ reader: LineReader) -> JournalScan {
        var result = JournalScan()
        var lastStart: Int64 = 0
        var lineNumber = 0
        var runOpen: String? = nil
        var runAccepted = false
        var openIntents: [Int64] = []
        while let line = reader.next() {
            lineNumber += 1
            if !line.terminated {
                result.torn = (line.start, line.bytes.count)
                break
            }
            if line.tooLong {
                result.problem = "line \(lineNumber) is longer than \(LineReader.defaultMaxLine) bytes: not a record"
                return result
            }
            let checked: JournalRecord.Checked
            switch JournalRecord.check(line.bytes, verifyHash: false) {
            case .success(let c): checked = c
            case .failure(let problem):
                result.problem = "line \(lineNumber): \(problem)"
                return result
            }
            let expected = result.lastSeq + 1
            guard checked.seq == expected else {
                result.problem =
                    "line \(lineNumber) (seq \(checked.seq)): seq \(expected) was expected (a record was deleted, duplicated or moved)"
                return result
            }
            guard checked.prev == result.lastHash else {
                result.problem = "line \(lineNumber) (seq \(checked.seq)): prev does not match the hash of the record before it"
                return result
            }
            result.beforeLast = (result.lastSeq, result.lastHash)
            result.lastSeq = checked.seq
            result.lastHash = checked.hash
            result.records += 1
            lastStart = line.start

            switch eventName(line.bytes) {
            case "run-started":
                // Parsed: `previous_run_interrupted` holds a nested "run".
                let record = checked.record ?? (try? JSONParser.parse(Array(line.bytes)))
                runOpen = record?["run"]?.stringValue ?? "unknown"
                runAccepted = record?["accepted_plan"]?.stringValue != nil
                openIntents = []
            case "intent":
                openIntents.append(checked.seq)
            case "outcome":
                if let seq = intField(line.bytes, "intent") { openIntents.removeAll { $0 == seq } }
                if let record = checked.record ?? (try? JSONParser.parse(Array(line.bytes))),
                    record["outcome"]?.stringValue == "applied", let gateway = record["gateway"]?.stringValue,
                    let consumer = record["consumer"]?["id"]?.stringValue
                {
                    let time = record["time"]?.stringValue.flatMap(TimeFormat.parseRFC3339) ?? 0
                    switch record["action"]?.stringValue {
                    case "disable":
                        result.disabledByUs[gateway, default: [:]][consumer] = time
                        if !runAccepted {
                            result.recentDisables.append(time)
                            // Only the last hour counts: drop what is older than the newest by more.
                            if result.recentDisables.count > 64, let first = result.recentDisables.first,
                                first < TimeFormat.subtracting(time, 3600)
                            {
                                result.recentDisables.removeAll { $0 < TimeFormat.subtracting(time, 3600) }
                            }
                        }
                    case "restore":
                        result.disabledByUs[gateway]?[consumer] = nil
                    default: break
                    }
                }
            case "run-finished":
                runOpen = nil
                if let record = try? JSONParser.parse(Array(line.bytes)), record["outcome"]?.stringValue == "ok",
                    let users = record["users"]?.intValue, users >= 0
                {
                    result.lastGoodUsers = Int(users)
                }
            case "run-refused":
                runOpen = nil
            case "journal-started":
                // A rotated or acknowledged journal carries the shrink baseline over.
                if let record = try? JSONParser.parse(Array(line.bytes)), let users = record["last_good_users"]?.intValue,
                    users >= 0
                {
                    result.lastGoodUsers = Int(users)
                }
            default:
                break
            }
        }
        if let runOpen { result.interrupted = (runOpen, openIntents) }
        if result.records > 0 {
            // Only the last record is rehashed: read it once more instead of copying every line.
            let edited: Bool = (reader.line(at: lastStart) ?? []).withUnsafeBufferPointer { buffer in
                if case .success(let c) = JournalRecord.check(buffer) { return !c.hashOK }
                return true
            }
            if edited {
                result.problem = "line \(result.records) (seq \(result.lastSeq)): the last record's hash does not match its content (it was edited)"
            }
        }
        return result
    }

    static let eventKey = Array("\"event\":\"".utf8)

    /// The value of `"event":"…"`, read off the bytes.
    static func eventName(_ line: UnsafeBufferPointer<UInt8>) -> Substring {
        guard let start = find(line, eventKey) else { return "" }
        var end = start
        while end < line.count, end - start < 32, line[end] != UInt8(ascii: "\"") { end += 1 }
        return Substring(String(decoding: UnsafeBufferPointer(rebasing: line[start..<end]), as: UTF8.self))
    }

    /// `"key":123` in canonical JSON, without parsing the line.
    static func intField(_ line: UnsafeBufferPointer<UInt8>, _ key: String) -> Int64? {
        guard let start = find(line, Array("\"\(key)\":".utf8)) else { return nil }
        var i = start, value: Int64 = 0, digits = 0
        while i < line.count, line[i] >= 48, line[i] <= 57, digits < 18 {
            value = value * 10 + Int64(line[i] - 48)
            i += 1
            digits += 1
        }
        guard digits > 0, i == line.count || line[i] < 48 || line[i] > 57 else { return nil }
        return value
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
