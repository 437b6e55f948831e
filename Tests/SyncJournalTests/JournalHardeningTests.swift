import Foundation
import SyncCore
import Testing

@testable import SyncJournal

/// The tail check a run makes before it appends (docs/journal.md), as a table.
@Suite("Journal: the tail check before every append")
struct JournalTailTests {
    static let h1 = String(repeating: "1", count: 64)
    static let h2 = String(repeating: "2", count: 64)
    static let h3 = String(repeating: "3", count: 64)

    static func scan(records: Int, torn: Bool = false, problem: String? = nil) -> JournalScan {
        var s = JournalScan()
        let hashes = [JournalRecord.genesis, h1, h2, h3]
        s.records = records
        s.lastSeq = Int64(records)
        s.lastHash = hashes[records]
        if records > 0 { s.beforeLast = (Int64(records - 1), hashes[records - 1]) }
        if torn { s.torn = (start: 100, length: 7) }
        s.problem = problem
        return s
    }

    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var records: Int
        var torn = false
        var problem: String? = nil
        var head: JournalHead
        /// nil: ok; "repair": truncate the torn line; otherwise a word of the tampering message.
        var expected: String?
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(name: "head matches the last record", records: 3, head: .value(seq: 3, hash: h3), expected: nil),
        Row(name: "head one behind: crash after an append", records: 3, head: .value(seq: 2, hash: h2), expected: nil),
        Row(name: "head two behind", records: 3, head: .value(seq: 1, hash: h1), expected: "does not match"),
        Row(name: "records cut (head ahead)", records: 2, head: .value(seq: 3, hash: h3), expected: "records were cut"),
        Row(name: "head missing, several records", records: 3, head: .missing, expected: "head file is missing"),
        Row(name: "head missing, one record (old version's crash)", records: 1, head: .missing, expected: nil),
        Row(name: "head empty or garbage", records: 2, head: .unreadable, expected: "unreadable"),
        Row(name: "torn line after the head's record", records: 2, torn: true, head: .value(seq: 2, hash: h2), expected: "repair"),
        Row(name: "torn first line of a new journal", records: 0, torn: true, head: .value(seq: 0, hash: JournalRecord.genesis),
            expected: "repair"),
        Row(name: "torn line without a head (not our file)", records: 0, torn: true, head: .missing, expected: "unterminated"),
        Row(name: "torn line the head does not explain", records: 2, torn: true, head: .value(seq: 1, hash: h1),
            expected: "unterminated"),
        Row(name: "a broken link", records: 3, problem: "line 2 (seq 3): seq 2 was expected", head: .value(seq: 3, hash: h3),
            expected: "seq 2 was expected"),
    ]

    @Test(arguments: rows)
    func decide(_ row: Row) {
        let verdict = JournalTail.check(Self.scan(records: row.records, torn: row.torn, problem: row.problem), head: row.head)
        switch row.expected {
        case nil: #expect(verdict == .ok)
        case "repair": #expect(verdict == .repairTornTail(start: 100, length: 7))
        case let word?:
            guard case .tampered(let text) = verdict else {
                Issue.record("\(row.name): \(verdict) is not tampering")
                return
            }
            #expect(text.contains(word), "\(text)")
        }
    }

    @Test(arguments: [
        (JournalHead.missing, nil as String?), (.value(seq: 0, hash: JournalRecord.genesis), nil),
        (.value(seq: 7, hash: h1), "deleted or moved"), (.unreadable, "unreadable"),
    ])
    func aMissingJournal(_ head: JournalHead, _ word: String?) {
        let problem = JournalTail.problemForMissingFile(head: head)
        if let word { #expect(problem?.contains(word) == true) } else { #expect(problem == nil) }
    }

    @Test(arguments: [
        ("3:" + h3 + "\n", JournalHead.value(seq: 3, hash: h3)), ("", .unreadable), ("3:" + h3.dropLast(), .unreadable),
        ("-1:" + h3, .unreadable), ("99999999999999999999:" + h3, .unreadable), ("3:" + String(repeating: "A", count: 64), .unreadable),
        ("x:" + h3, .unreadable),
    ])
    func headFiles(_ text: String, _ expected: JournalHead) {
        #expect(JournalHead.parse(Array(text.utf8)) == expected)
    }
}

@Suite("Journal: hostile files")
struct JournalHostileFileTests {
    func journal(_ dir: TempDir, records: Int = 3) throws -> String {
        let path = dir.path + "/journal.jsonl"
        let journal = try JournalFile(path: path)
        for i in 0..<records { try journal.append(fields: ["event": "run-started", "run": .string("r-\(i)"), "dry_run": false]) }
        return path
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func cutRecordsAreTamperingAndNothingIsAppended() throws {
        let dir = TempDir()
        let path = try journal(dir, records: 4)
        var lines = text(path).split(separator: "\n").map(String.init)
        lines.removeLast(2)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let before = text(path)
        #expect(throws: JournalError.self) { _ = try JournalFile(path: path) }
        do {
            _ = try JournalFile(path: path)
        } catch {
            #expect("\(error)".contains("records were cut"))
            #expect("\(error)".contains("idp-sync journal acknowledge"))
        }
        #expect(text(path) == before)
    }

    @Test func aDeletedJournalIsTampering() throws {
        let dir = TempDir()
        let path = try journal(dir)
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: JournalError.self) { _ = try JournalFile(path: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aForeignFileWithoutANewlineIsNeverTruncated() throws {
        let dir = TempDir()
        let path = dir.path + "/precious.txt"
        try "precious content without a trailing newline".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: JournalError.self) { _ = try JournalFile(path: path) }
        #expect(text(path) == "precious content without a trailing newline")
    }

    @Test func aMiddleRecordWithKeysInAnotherOrderStillVerifies() throws {
        let dir = TempDir()
        let path = try journal(dir)
        var lines = text(path).split(separator: "\n").map(String.init)
        let record = try JSONParser.parse(lines[1]).objectValue!
        // Same record, keys reversed and a slash escaped: not the writer's bytes, the same canonical form.
        lines[1] = "{" + record.keys.sorted(by: >).map { "\"\($0)\":\(record[$0]!.canonical)" }.joined(separator: ",") + "}"
        lines[1] = lines[1].replacingOccurrences(of: "r-1", with: "r\\u002d1")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let result = try JournalVerifier.verify(path: path)
        #expect(result.problem == nil, "\(result.problem ?? "")")
        #expect(result.records == 3)
        let reopened = try JournalFile(path: path)
        try reopened.append(fields: ["event": "run-started", "run": "r-9", "dry_run": false])
        #expect(try JournalVerifier.verify(path: path).records == 4)
    }

    @Test func aHeadThatCannotBeWrittenTakesTheRecordBack() throws {
        let dir = TempDir()
        let path = try journal(dir, records: 2)
        let journal = try JournalFile(path: path)
        let before = text(path)
        // Rename over a directory fails, as a head write fails on a full disk.
        try FileManager.default.removeItem(atPath: path + ".head")
        try FileManager.default.createDirectory(atPath: path + ".head", withIntermediateDirectories: false)
        #expect(throws: JournalError.self) { try journal.append(fields: ["event": "run-started", "run": "r-x", "dry_run": false]) }
        #expect(text(path) == before, "the record must be taken back")
        #expect(journal.head.hasPrefix("2:"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test func anEmptyHeadIsNamedAsSuch() throws {
        let dir = TempDir()
        let path = try journal(dir)
        try "".write(toFile: path + ".head", atomically: false, encoding: .utf8)
        let result = try JournalVerifier.verify(path: path)
        #expect(result.problem?.contains("empty or unreadable") == true)
        #expect(result.problem?.contains("head write that failed") == true)
    }

    @Test func aWideModeIsNarrowedTo0640() throws {
        let dir = TempDir()
        let path = try journal(dir)
        chmod(path, 0o666)
        let reopened = try JournalFile(path: path)
        #expect(reopened.modeFixed?.contains("666") == true)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
    }

    @Test func aHugeLineIsBoundedAndNamed() throws {
        let dir = TempDir()
        let path = dir.path + "/big.jsonl"
        try String(repeating: "x", count: 3 << 20).appending("\n").write(toFile: path, atomically: false, encoding: .utf8)
        let result = try JournalVerifier.verify(path: path)
        #expect(result.problem?.contains("longer than") == true)
        #expect(throws: JournalError.self) { _ = try JournalVerifier.verify(path: "/dev/zero") }
    }

    @Test func rotateKeepsTheOldFileAndVerifiesTheSet() throws {
        let dir = TempDir()
        let path = try journal(dir, records: 3)
        let journal = try JournalFile(path: path)
        try journal.append(fields: ["event": "run-finished", "run": "r-2", "outcome": "ok", "users": 77])
        let last = journal.head
        let outcome = try JournalArchive.rotate(path: path, identity: .init(version: "t", host: "h", uid: 1), now: 1_796_000_000)
        #expect(FileManager.default.fileExists(atPath: outcome.archived))
        #expect(outcome.archived.hasPrefix(dir.path + "/journal.jsonl.2026"), "\(outcome.archived)")
        let first = try JSONParser.parse(String(text(path).split(separator: "\n")[0]))
        #expect(first["event"] == "journal-started")
        #expect(first["previous"]?["seq"] == .int(4))
        #expect("4:\(first["previous"]?["hash"]?.stringValue ?? "")" == last)
        #expect(first["last_good_users"] == .int(77))
        #expect(try JournalFile(path: path).lastGoodUsers == 77)
        let result = try JournalVerifier.verify(path: path)
        #expect(result.problem == nil, "\(result.problem ?? "")")
        #expect(result.files.count == 2 && result.records == 5)
        // Editing the archive breaks the set.
        try text(outcome.archived).replacingOccurrences(of: "r-1", with: "r-7").write(
            toFile: outcome.archived, atomically: false, encoding: .utf8)
        #expect(try JournalVerifier.verify(path: path).tampered)
    }

    @Test func rotateRefusesAJournalThatDoesNotVerifyAndAcknowledgeTakesIt() throws {
        let dir = TempDir()
        let path = try journal(dir, records: 4)
        var lines = text(path).split(separator: "\n").map(String.init)
        lines.removeLast()
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: JournalError.self) { _ = try JournalArchive.rotate(path: path, identity: .init(version: "t", host: "h", uid: 1), now: 1_796_000_000) }
        let outcome = try JournalArchive.acknowledge(
            path: path, reason: "ops: the tail was cut by a restore from backup", identity: .init(version: "t", host: "h", uid: 1), now: 1_796_000_000)
        let first = try JSONParser.parse(String(text(path).split(separator: "\n")[0]))
        #expect(first["acknowledged"]?["reason"] == "ops: the tail was cut by a restore from backup")
        #expect(first["acknowledged"]?["problem"]?.stringValue?.contains("records were cut") == true)
        #expect(first["previous"]?["seq"] == .int(3))
        let result = try JournalVerifier.verify(path: path)
        #expect(result.problem == nil, "\(result.problem ?? "")")
        #expect(result.warnings.contains { $0.contains("acknowledged") })
        _ = try JournalFile(path: path)  // the next run opens it
        #expect(FileManager.default.fileExists(atPath: outcome.archived))
        // Nothing to acknowledge in a journal that verifies.
        #expect(throws: JournalError.self) { _ = try JournalArchive.acknowledge(path: path, reason: "x", identity: .init(version: "t", host: "h", uid: 1), now: 1) }
    }
}
