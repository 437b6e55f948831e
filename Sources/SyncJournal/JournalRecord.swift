import Crypto
import SyncCore
import SyncEngine

/// Hashing rules of journal records (product.md §7).
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
    /// differently) is parsed and canonicalised, so only a real edit fails (product.md §7 defines the
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
        // Only where each key occurs once: a nested `"seq"` (journal-started's `previous`) sends the
        // line down the parsing path.
        guard occursOnce(line, hashKey), occursOnce(line, seqKey), occursOnce(line, prevKey) else { return nil }
        guard let afterKey = JournalScan.find(line, hashKey), afterKey + 65 <= line.count,
            line[afterKey + 64] == UInt8(ascii: "\""), let seq = JournalScan.intField(line, "seq"), seq > 0,
            let prev = JournalScan.stringField(line, "prev"), isHex64(prev)
        else { return nil }
        let stored = String(decoding: UnsafeBufferPointer(rebasing: line[afterKey..<afterKey + 64]), as: UTF8.self)
        guard isHex64(stored) else { return nil }
        guard verifyHash else { return Checked(seq: seq, prev: prev, hash: stored, hashOK: true) }
        let memberStart = afterKey - hashKey.count
        let memberEnd = afterKey + 65
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[0..<memberStart])))
        hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[memberEnd..<line.count])))
        let digest = Array(hasher.finalize())
        var ok = true
        let hex = Array("0123456789abcdef".utf8)
        for (i, byte) in digest.enumerated() {
            if line[afterKey + 2 * i] != hex[Int(byte >> 4)] || line[afterKey + 2 * i + 1] != hex[Int(byte & 0x0F)] {
                ok = false
                break
            }
        }
        return Checked(seq: seq, prev: prev, hash: stored, hashOK: ok)
    }

    static let hashKey = Array(",\"hash\":\"".utf8)
    static let seqKey = Array("\"seq\":".utf8)
    static let prevKey = Array("\"prev\":".utf8)

    static func occursOnce(_ line: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        guard let first = JournalScan.find(line, needle) else { return false }
        return JournalScan.find(UnsafeBufferPointer(rebasing: line[first...]), needle) == nil
    }
}
