import Crypto
#if canImport(Glibc)
import Glibc
#endif
import SyncCore
import SyncEngine

/// Hashing rules of journal records (docs/journal.md).
public enum JournalRecord {
    public static let genesis = String(repeating: "0", count: 64)

    /// Lowercase hex SHA-256 of the record without `hash`, serialised canonically.
    public static func hash(of record: [String: JSONValue]) -> String {
        var body = record
        body["hash"] = nil
        return KeyFingerprint.hexSHA256(Array(JSONValue.object(body).canonical.utf8))
    }

    /// What one line of a journal says about the chain.
    struct Checked {
        var seq: Int64
        var prev: String
        var hash: String
        /// The stored hash is the hash of the record's canonical form.
        var hashOK: Bool
        /// Set when the line was parsed (not in the writer's byte order, or checked the slow way).
        var record: JSONValue?
    }

    /// Reads seq, prev and hash from a line and checks the hash. The writer's canonical lines are
    /// checked without a parse; any other valid record (keys in another order, escapes written
    /// differently) is parsed and canonicalised, so only a real edit fails (docs/journal.md defines the
    /// hash over the canonical form, not over the bytes). Returns a reason when it is no record.
    static func check(_ line: UnsafeBufferPointer<UInt8>, verifyHash: Bool = true) -> Result<Checked, RecordProblem> {
        if let fast = fastCheck(line, verifyHash: verifyHash), fast.hashOK { return .success(fast) }
        guard let record = try? JSONParser.parse(Array(line)), let fields = record.objectValue else {
            return .failure(.notJSON)
        }
        guard let seq = fields["seq"]?.intValue, seq > 0 else { return .failure(.field("seq")) }
        guard let hash = fields["hash"]?.stringValue, isHex64(hash) else { return .failure(.field("hash")) }
        guard let prev = fields["prev"]?.stringValue, isHex64(prev) else { return .failure(.field("prev")) }
        let ok = verifyHash ? Self.hash(of: fields) == hash : true
        return .success(Checked(seq: seq, prev: prev, hash: hash, hashOK: ok, record: record))
    }

    enum RecordProblem: Error, CustomStringConvertible {
        case notJSON
        case field(String)
        var description: String {
            switch self {
            case .notJSON: return "not a valid JSON record"
            case .field(let name): return "record has no valid \(name)"
            }
        }
    }

    static func isHex64(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// The writer's lines are canonical JSON, so the record without `hash` is the line without its
    /// `,"hash":"…"` member: hashing those bytes needs no parse. Nil for any other shape.
    static func fastCheck(_ line: UnsafeBufferPointer<UInt8>, verifyHash: Bool) -> Checked? {
        // One pass finds the three members, and only where each occurs once: a nested `"seq"`
        // (journal-started's `previous`) sends the line down the parsing path.
        guard let at = memberPositions(line) else { return nil }
        let afterKey = at.hash
        guard afterKey + 65 <= line.count, line[afterKey + 64] == UInt8(ascii: "\"") else { return nil }
        var i = at.seq, seq: Int64 = 0, digits = 0
        while i < line.count, line[i] >= 48, line[i] <= 57, digits < 18 {
            seq = seq * 10 + Int64(line[i] - 48)
            i += 1
            digits += 1
        }
        guard digits > 0, seq > 0, i < line.count, line[i] < 48 || line[i] > 57 else { return nil }
        guard at.prev + 65 <= line.count, line[at.prev] == UInt8(ascii: "\""), line[at.prev + 65] == UInt8(ascii: "\"")
        else { return nil }
        let prev = String(decoding: UnsafeBufferPointer(rebasing: line[at.prev + 1..<at.prev + 65]), as: UTF8.self)
        let stored = String(decoding: UnsafeBufferPointer(rebasing: line[afterKey..<afterKey + 64]), as: UTF8.self)
        guard isHex64(prev), isHex64(stored) else { return nil }
        guard verifyHash else { return Checked(seq: seq, prev: prev, hash: stored, hashOK: true) }
        let memberStart = afterKey - hashKey.count
        let memberEnd = afterKey + 65
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[0..<memberStart])))
        hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[memberEnd..<line.count])))
        let digest = Array(hasher.finalize())
        var ok = true
        let hex = Hex.digits
        for (i, byte) in digest.enumerated() {
            if line[afterKey + 2 * i] != hex[Int(byte >> 4)] || line[afterKey + 2 * i + 1] != hex[Int(byte & 0x0F)] {
                ok = false
                break
            }
        }
        return Checked(seq: seq, prev: prev, hash: stored, hashOK: ok)
    }

    /// Where the values of `"seq":`, `"prev":` and `,"hash":"` start, when each occurs exactly once;
    /// one pass over the line, looking only at quote characters.
    static func memberPositions(_ line: UnsafeBufferPointer<UInt8>) -> (seq: Int, prev: Int, hash: Int)? {
        var seq = -1, prev = -1, hash = -1
        let n = line.count
        guard let base = line.baseAddress else { return nil }
        var i = 0
        while i < n {
            guard let found = memchr(base + i, 0x22, n - i) else { break }
            let q = UnsafeRawPointer(found).assumingMemoryBound(to: UInt8.self) - base
            // "seq":   "prev":   "hash":"   (the hash member must follow a comma)
            if q + 6 <= n, line[q + 1] == 0x73, line[q + 2] == 0x65, line[q + 3] == 0x71, line[q + 4] == 0x22,
                line[q + 5] == 0x3A
            {
                guard seq < 0 else { return nil }
                seq = q + 6
            } else if q + 7 <= n, line[q + 1] == 0x70, line[q + 2] == 0x72, line[q + 3] == 0x65, line[q + 4] == 0x76,
                line[q + 5] == 0x22, line[q + 6] == 0x3A
            {
                guard prev < 0 else { return nil }
                prev = q + 7
            } else if q + 8 <= n, q > 0, line[q - 1] == 0x2C, line[q + 1] == 0x68, line[q + 2] == 0x61,
                line[q + 3] == 0x73, line[q + 4] == 0x68, line[q + 5] == 0x22, line[q + 6] == 0x3A, line[q + 7] == 0x22
            {
                guard hash < 0 else { return nil }
                hash = q + 8
            }
            i = q + 1
        }
        guard seq >= 0, prev >= 0, hash >= 0 else { return nil }
        return (seq, prev, hash)
    }

    static let hashKey = Array(",\"hash\":\"".utf8)
}
