#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import SyncCore

/// What `journal verify` found.
public struct VerifyResult: Sendable {
    public var records = 0
    public var lastSeq: Int64 = 0
    public var lastHash = JournalRecord.genesis
    /// Crash leftovers: a torn last line, a head one record behind.
    public var warnings: [String] = []
    /// The first thing that does not chain: tampering.
    public var problem: String?
    public var tampered: Bool { problem != nil }
}

/// Checks the hash chain, the head file and an optional anchor (product.md §7), streaming the file.
public enum JournalVerifier {
    public struct Anchor: Sendable {
        public var seq: Int64
        public var hash: String
        /// Parses `SEQ:HASH`.
        public init?(_ text: String) {
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let seq = Int64(parts[0]), seq > 0, parts[1].count == 64 else { return nil }
            self.seq = seq
            self.hash = parts[1].lowercased()
        }
    }

    public static func verify(path: String, anchor: Anchor? = nil) throws -> VerifyResult {
        var result = VerifyResult()
        guard access(path, F_OK) == 0 else {
            throw JournalError.cannotOpen(path: path, reason: "no such file")
        }
        guard let reader = LineReader(path: path) else {
            throw JournalError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        var previousHash = JournalRecord.genesis
        var beforeLast: (seq: Int64, hash: String) = (0, JournalRecord.genesis)
        var lineNumber = 0
        var tornLine: Int? = nil
        func fail(_ seq: Int64?, _ what: String) -> VerifyResult {
            var r = result
            r.problem = "line \(lineNumber)" + (seq.map { " (seq \($0))" } ?? "") + ": " + what
            return r
        }
        while let line = reader.next() {
            lineNumber += 1
            if !line.terminated {
                tornLine = lineNumber
                break
            }
            let expected = result.lastSeq + 1
            let checked: (seq: Int64, prev: String, hash: String, hashOK: Bool)
            if let fast = fastCheck(line.bytes) {
                checked = fast
            } else {
                // Not in the writer's canonical shape: parse it to say precisely what is wrong.
                guard let record = try? JSONParser.parse(Array(line.bytes)), let fields = record.objectValue else {
                    return fail(expected, "not a valid JSON record")
                }
                guard let seq = fields["seq"]?.intValue else { return fail(expected, "record has no seq") }
                guard let hash = fields["hash"]?.stringValue else { return fail(seq, "record has no hash") }
                checked = (seq, fields["prev"]?.stringValue ?? "", hash, JournalRecord.hash(of: fields) == hash)
            }
            let seq = checked.seq
            guard seq == expected else {
                return fail(seq, "seq \(seq) where \(expected) was expected (a record was deleted, duplicated or moved)")
            }
            guard checked.prev == previousHash else {
                return fail(seq, "prev does not match the hash of the record before it")
            }
            guard checked.hashOK else {
                return fail(seq, "hash does not match the record's content (the record was edited)")
            }
            let hash = checked.hash
            if let anchor, anchor.seq == seq, anchor.hash != hash {
                return fail(seq, "hash differs from the anchor \(anchor.seq):\(anchor.hash)")
            }
            beforeLast = (result.lastSeq, result.lastHash)
            result.records += 1
            result.lastSeq = seq
            result.lastHash = hash
            previousHash = hash
        }
        if let anchor, anchor.seq > result.lastSeq {
            var r = result
            r.problem =
                "line \(lineNumber + 1) (seq \(result.lastSeq + 1)): missing; the journal ends at seq \(result.lastSeq) but the anchor names seq \(anchor.seq): records were cut"
            return r
        }

        let head = readHead(path + ".head")
        let headText = head.map { "\($0.seq):\($0.hash)" } ?? "missing"
        if let torn = tornLine {
            if let head, head.seq == result.lastSeq, head.hash == result.lastHash {
                result.warnings.append(
                    "line \(torn) is a torn last line after seq \(result.lastSeq) (a run was killed mid-append); the next sync truncates it")
            } else {
                result.problem = "line \(torn): an unterminated last line that the head (\(headText)) does not explain"
            }
            return result
        }
        switch head {
        case nil where result.records <= 1:
            if result.records == 1 { result.warnings.append("no head file yet: a run was interrupted after its first append") }
        case nil:
            result.problem = "the head file \(path).head is missing, so a cut tail could not be detected"
        case let head? where head.seq == result.lastSeq && head.hash == result.lastHash:
            break
        case let head? where head.seq == beforeLast.seq && head.hash == beforeLast.hash && result.records > 0:
            result.warnings.append(
                "the head is one record behind (seq \(head.seq)): a run was interrupted right after its last append")
        case let head? where head.seq > result.lastSeq:
            result.problem =
                "line \(lineNumber + 1) (seq \(result.lastSeq + 1)): missing; the journal ends at seq \(result.lastSeq) but its head says \(headText): records were cut"
        case _:
            result.problem = "the head (\(headText)) does not match the journal's last record \(result.lastSeq):\(result.lastHash)"
        }
        return result
    }

    /// The writer's lines are canonical JSON, so the record without `hash` is the line without its
    /// `,"hash":"…"` member: hashing those bytes needs no parse. Returns nil for any other shape.
    static func fastCheck(_ line: UnsafeBufferPointer<UInt8>) -> (seq: Int64, prev: String, hash: String, hashOK: Bool)? {
        guard let afterKey = JournalScan.find(line, hashKey), afterKey + 65 <= line.count,
            line[afterKey + 64] == UInt8(ascii: "\""), let seq = JournalScan.intField(line, "seq"),
            let prev = JournalScan.stringField(line, "prev")
        else { return nil }
        let memberStart = afterKey - hashKey.count
        let memberEnd = afterKey + 65
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[0..<memberStart])))
        hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[memberEnd..<line.count])))
        let digest = Array(hasher.finalize())
        let stored = line[afterKey..<afterKey + 64]
        var ok = true
        let hex = Array("0123456789abcdef".utf8)
        for (i, byte) in digest.enumerated() {
            if stored[afterKey + 2 * i] != hex[Int(byte >> 4)] || stored[afterKey + 2 * i + 1] != hex[Int(byte & 0x0F)] {
                ok = false
                break
            }
        }
        return (seq, prev, String(decoding: UnsafeBufferPointer(rebasing: stored), as: UTF8.self), ok)
    }

    static let hashKey = Array(",\"hash\":\"".utf8)

    static func readHead(_ path: String) -> (seq: Int64, hash: String)? {
        guard let reader = LineReader(path: path), let line = reader.next() else { return nil }
        let text = String(decoding: line.bytes, as: UTF8.self)
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let seq = Int64(parts[0]) else { return nil }
        return (seq, String(parts[1]))
    }
}
