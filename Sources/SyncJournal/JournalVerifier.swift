#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SyncCore

/// What `journal verify` found.
public struct VerifyResult: Sendable {
    public var records = 0
    public var lastSeq: Int64 = 0
    public var lastHash = JournalRecord.genesis
    /// Crash leftovers (a torn last line, a head one record behind) and acknowledged problems.
    public var warnings: [String] = []
    /// The first thing that does not chain: tampering.
    public var problem: String?
    public var tampered: Bool { problem != nil }
    /// The files checked, newest first (more than one after `journal rotate` or `acknowledge`).
    public var files: [String] = []
}

/// Checks the hash chain, the head file and an optional anchor (docs/journal.md), streaming the file.
///
/// A journal whose first record is `journal-started` continues an older file (`previous`): that file
/// is checked too, up to the record `previous` names, which plays the part of its head. After
/// `journal acknowledge`, what follows that record in the old file is the acknowledged problem and
/// is reported as a warning.
public enum JournalVerifier {
    public struct Anchor: Sendable {
        public var seq: Int64
        public var hash: String
        /// Parses `SEQ:HASH`.
        public init?(_ text: String) {
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].utf8.count <= 18, let seq = Int64(parts[0]), seq > 0,
                JournalRecord.isHex64(parts[1].lowercased())
            else { return nil }
            self.seq = seq
            self.hash = parts[1].lowercased()
        }
    }

    /// How the end of one file is checked.
    enum Tail {
        /// The live journal: against `<journal>.head`.
        case head
        /// A rotated file: it must end exactly at this record.
        case endsAt(seq: Int64, hash: String)
        /// An acknowledged file: it must hold this record; what follows is the acknowledged problem.
        case acknowledgedAt(seq: Int64, hash: String, reason: String)
    }

    /// The most files a rotated set may chain through (a loop guard).
    static let maxFiles = 10_000

    public static func verify(path: String, anchor: Anchor? = nil) throws -> VerifyResult {
        var total = VerifyResult()
        var current = path
        var tail = Tail.head
        var seen: Set<String> = []
        while true {
            guard seen.insert(current).inserted, seen.count <= maxFiles else {
                total.problem = "\(current): the rotated journal files form a loop"
                return total
            }
            let (result, previous) = try verifyFile(path: current, anchor: current == path ? anchor : nil, tail: tail)
            if total.files.isEmpty {
                total.lastSeq = result.lastSeq
                total.lastHash = result.lastHash
            }
            total.files.append(current)
            total.records += result.records
            total.warnings += result.warnings.map { seen.count > 1 ? "\(current): \($0)" : $0 }
            if let problem = result.problem {
                total.problem = seen.count > 1 ? "\(current): \(problem)" : problem
                return total
            }
            guard let previous else { return total }
            let directory = SafeDirectory.split(current).directory
            let older = previous.file.hasPrefix("/") ? previous.file : directory + "/" + previous.file
            guard access(older, F_OK) == 0 else {
                total.warnings.append(
                    "\(current) continues \(previous.file) (seq \(previous.seq)), which is not here; it was not checked")
                return total
            }
            if let reason = previous.acknowledged {
                tail = .acknowledgedAt(seq: previous.seq, hash: previous.hash, reason: reason)
            } else {
                tail = .endsAt(seq: previous.seq, hash: previous.hash)
            }
            current = older
        }
    }

    /// What a `journal-started` first record says about the file before.
    struct Previous {
        var file: String
        var seq: Int64
        var hash: String
        var acknowledged: String?
    }

    static func verifyFile(path: String, anchor: Anchor?, tail: Tail) throws -> (VerifyResult, Previous?) {
        var result = VerifyResult()
        if case .acknowledgedAt(0, _, let reason) = tail {
            result.warnings.append("the whole file was acknowledged as a problem by a person: \(TextEscape.bounded(reason))")
            return (result, nil)
        }
        guard access(path, F_OK) == 0 else {
            throw JournalError.cannotOpen(path: path, reason: "no such file")
        }
        guard let reader = LineReader(path: path) else {
            throw JournalError.cannotOpen(
                path: path, reason: "\(String(cString: strerror(errno))) (it must be a regular file, not a symlink)")
        }
        var previousHash = JournalRecord.genesis
        var beforeLast: (seq: Int64, hash: String) = (0, JournalRecord.genesis)
        var lineNumber = 0
        var tornLine: Int? = nil
        var previous: Previous? = nil
        func fail(_ seq: Int64?, _ what: String) -> (VerifyResult, Previous?) {
            var r = result
            r.problem = "line \(lineNumber)" + (seq.map { " (seq \($0))" } ?? "") + ": " + what
            return (r, previous)
        }
        while let line = reader.next() {
            lineNumber += 1
            if !line.terminated {
                tornLine = lineNumber
                break
            }
            let expected = result.lastSeq + 1
            if line.tooLong { return fail(expected, "longer than \(LineReader.defaultMaxLine) bytes: not a record") }
            let checked: JournalRecord.Checked
            switch JournalRecord.check(line.bytes) {
            case .success(let c): checked = c
            case .failure(let problem): return fail(expected, "\(problem)")
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
            if seq == 1 { previous = continuation(line.bytes, record: checked.record) }
            beforeLast = (result.lastSeq, result.lastHash)
            result.records += 1
            result.lastSeq = seq
            result.lastHash = hash
            previousHash = hash
            if case .acknowledgedAt(let ackSeq, let ackHash, let reason) = tail, seq == ackSeq {
                guard hash == ackHash else {
                    return fail(seq, "hash differs from the one the newer journal's journal-started record names")
                }
                result.warnings.append(
                    "what follows seq \(seq) was acknowledged as a problem by a person: \(TextEscape.bounded(reason))")
                return (result, previous)
            }
        }
        if let anchor, anchor.seq > result.lastSeq {
            var r = result
            r.problem =
                "line \(lineNumber + 1) (seq \(result.lastSeq + 1)): missing; the journal ends at seq \(result.lastSeq) but the anchor names seq \(anchor.seq): records were cut"
            return (r, previous)
        }

        switch tail {
        case .acknowledgedAt(let seq, _, _):
            result.problem = "it ends at seq \(result.lastSeq), before seq \(seq) that the newer journal names: records were cut"
            return (result, previous)
        case .endsAt(let seq, let hash):
            if tornLine != nil || result.lastSeq != seq || result.lastHash != hash {
                result.problem =
                    "it ends at \(result.lastSeq):\(result.lastHash)\(tornLine != nil ? " with a torn line" : ""), but the newer journal says it ended at \(seq):\(hash)"
            }
            return (result, previous)
        case .head:
            break
        }

        let head = JournalHead.read(path: path + ".head")
        let last = JournalHead.value(seq: result.lastSeq, hash: result.lastHash)
        if let torn = tornLine {
            if head == last {
                result.warnings.append(
                    "line \(torn) is a torn last line after seq \(result.lastSeq) (a run was killed mid-append); the next run truncates it")
            } else {
                result.problem = "line \(torn): an unterminated last line that the head (\(head.text)) does not explain"
            }
            return (result, previous)
        }
        switch head {
        case last:
            break
        case .value(let seq, let hash) where result.records > 0 && seq == beforeLast.seq && hash == beforeLast.hash:
            result.warnings.append(
                "the head is one record behind (seq \(seq)): a run was interrupted right after its last append")
        case .missing where result.records <= 1:
            if result.records == 1 { result.warnings.append("no head file yet: a run was interrupted after its first append") }
        case .missing:
            result.problem = "the head file \(path).head is missing, so a cut tail could not be detected"
        case .unreadable:
            result.problem =
                "the head file \(path).head is empty or unreadable: an edit, or a head write that failed in an idp-sync older than 1.1 (idp-sync now takes a record back when its head cannot be written)"
        case .value(let seq, _) where seq > result.lastSeq:
            result.problem =
                "line \(lineNumber + 1) (seq \(result.lastSeq + 1)): missing; the journal ends at seq \(result.lastSeq) but its head says \(head.text): records were cut"
        case _:
            result.problem = "the head (\(head.text)) does not match the journal's last record \(result.lastSeq):\(result.lastHash)"
        }
        return (result, previous)
    }

    /// The `previous` of a `journal-started` first record, if the line is one.
    static func continuation(_ line: UnsafeBufferPointer<UInt8>, record: JSONValue?) -> Previous? {
        guard JournalScan.contains(line, Array("\"event\":\"journal-started\"".utf8)),
            let record = record ?? (try? JSONParser.parse(Array(line))),
            let previous = record["previous"], let file = previous["file"]?.stringValue,
            let seq = previous["seq"]?.intValue, let hash = previous["hash"]?.stringValue
        else { return nil }
        return Previous(
            file: file, seq: seq, hash: hash,
            acknowledged: record["acknowledged"].map { $0["reason"]?.stringValue ?? "no reason given" })
    }
}
