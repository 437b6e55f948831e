import Foundation
import SyncCore
import SyncEngine
@testable import SyncJournal
import Testing

/// A fresh directory per test, removed afterwards.
final class TempDir {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("idp-sync-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("Journal: hash chain, head, verify, repair")
struct JournalTests {
    func write(_ n: Int, in dir: TempDir) throws -> String {
        let path = dir.path + "/journal.jsonl"
        let journal = try JournalFile(path: path)
        try journal.append(fields: ["event": "run-started", "run": "r-1", "dry_run": false])
        for i in 0..<n {
            try journal.append(fields: [
                "event": "intent", "run": "r-1", "action": "flag", "reason": .string("reason \(i) with a/slash"),
            ])
        }
        try journal.append(fields: ["event": "run-finished", "run": "r-1", "outcome": "ok", "users": 42])
        return path
    }

    func lines(_ path: String) -> [String] {
        try! String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    func rewrite(_ path: String, _ lines: [String]) {
        try! lines.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func recordsChainAndVerify() throws {
        let dir = TempDir()
        let path = try write(3, in: dir)
        let result = try JournalVerifier.verify(path: path)
        #expect(result.problem == nil)
        #expect(result.warnings.isEmpty)
        #expect(result.records == 5)
        let first = try JSONParser.parse(lines(path)[0])
        #expect(first["seq"] == .int(1))
        #expect(first["prev"] == .string(JournalRecord.genesis))
        #expect(first["hash"]?.stringValue == JournalRecord.hash(of: first.objectValue!))
        let second = try JSONParser.parse(lines(path)[1])
        #expect(second["prev"] == first["hash"])
        #expect(lines(path)[1].contains("a/slash"))
        let head = try String(contentsOfFile: path + ".head", encoding: .utf8)
        #expect(head == "5:\(result.lastHash)\n")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
    }

    @Test func reopeningContinuesTheChainAndRemembersTheLastGoodRun() throws {
        let dir = TempDir()
        let path = try write(1, in: dir)
        let again = try JournalFile(path: path)
        #expect(again.lastGoodUsers == 42)
        #expect(again.repaired == nil)
        try again.append(fields: ["event": "run-started", "run": "r-2", "dry_run": false])
        #expect(try JournalVerifier.verify(path: path).records == 4)
    }

    @Test(arguments: ["edit a byte", "change a hash", "delete a line", "duplicate a line", "swap two lines", "cut the tail"])
    func tamperingIsFound(_ how: String) throws {
        let dir = TempDir()
        let path = try write(4, in: dir)
        var l = lines(path)
        let last = l.removeLast()  // the empty string after the final newline
        switch how {
        case "edit a byte": l[2] = l[2].replacingOccurrences(of: "reason 1", with: "reason 7")
        case "change a hash":
            l[2] = l[2].replacingOccurrences(of: "\"hash\":\"", with: "\"hash\":\"0")
            l[2] = l[2].replacingOccurrences(of: "\",\"prev\"", with: "\",\"prev\"")
        case "delete a line": l.remove(at: 2)
        case "duplicate a line": l.insert(l[2], at: 3)
        case "swap two lines": l.swapAt(2, 3)
        default: l.removeLast(2)
        }
        rewrite(path, l + [last])
        let result = try JournalVerifier.verify(path: path)
        #expect(result.tampered, "\(how) went unnoticed")
        #expect(result.problem?.contains("line") == true)
    }

    @Test func tornLastLineIsACrashLeftoverAndTheNextOpenRepairsIt() throws {
        let dir = TempDir()
        let path = try write(2, in: dir)
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data("{\"event\":\"intent\",\"seq\":5,\"ru".utf8))
        handle.closeFile()
        let before = try JournalVerifier.verify(path: path)
        #expect(!before.tampered)
        #expect(before.warnings.count == 1)
        let reopened = try JournalFile(path: path)
        #expect(reopened.repaired?.contains("torn") == true)
        try reopened.append(fields: ["event": "run-started", "run": "r-2", "dry_run": false])
        let after = try JournalVerifier.verify(path: path)
        #expect(after.problem == nil && after.warnings.isEmpty && after.records == 5)
    }

    @Test func headOneBehindIsAWarningAndTwoBehindIsTampering() throws {
        let dir = TempDir()
        let path = try write(2, in: dir)
        let l = lines(path)
        let previous = try JSONParser.parse(l[l.count - 3])
        try "\(previous["seq"]!.intValue!):\(previous["hash"]!.stringValue!)\n".write(
            toFile: path + ".head", atomically: true, encoding: .utf8)
        let behind = try JournalVerifier.verify(path: path)
        #expect(!behind.tampered)
        #expect(behind.warnings.first?.contains("one record behind") == true)
        let older = try JSONParser.parse(l[l.count - 4])
        try "\(older["seq"]!.intValue!):\(older["hash"]!.stringValue!)\n".write(
            toFile: path + ".head", atomically: true, encoding: .utf8)
        #expect(try JournalVerifier.verify(path: path).tampered)
    }

    @Test func anchorCatchesARewrittenHistory() throws {
        let dir = TempDir()
        let path = try write(2, in: dir)
        let good = try JournalVerifier.verify(path: path)
        let anchor = JournalVerifier.Anchor("2:\(String(repeating: "a", count: 64))")!
        #expect(try JournalVerifier.verify(path: path, anchor: anchor).tampered)
        let beyond = JournalVerifier.Anchor("99:\(good.lastHash)")!
        #expect(try JournalVerifier.verify(path: path, anchor: beyond).tampered)
        let exact = JournalVerifier.Anchor("\(good.lastSeq):\(good.lastHash)")!
        #expect(!(try JournalVerifier.verify(path: path, anchor: exact).tampered))
    }

    @Test func aSecondLockOnTheSameJournalNamesTheHolder() throws {
        let dir = TempDir()
        let path = dir.path + "/journal.jsonl"
        let first = try JournalLock(journalPath: path)
        #expect(throws: JournalError.self) { try JournalLock(journalPath: path) }
        do {
            _ = try JournalLock(journalPath: path)
        } catch {
            #expect("\(error)".contains("pid \(getpid())"))
        }
        withExtendedLifetime(first) {}
    }

    /// A known answer computed outside this code (Python's hashlib over the canonical text written
    /// by hand): keys in UTF-16 order (😀 U+1F600 before ﬁ U+FB01, unlike byte order), `/` and
    /// non-ASCII raw, `"`, `\\` and LF escaped, `hash` left out.
    @Test func recordHashKnownAnswer() {
        let record: [String: JSONValue] = [
            "event": "run-started", "seq": 1, "run": "r-20261130T071500Z-3f9c", "dry_run": false,
            "time": "2026-11-30T07:15:00Z", "prev": .string(String(repeating: "0", count: 64)),
            "note": "a/b é \"q\" \\ \n", "é": 1, "😀": 2, "ﬁ": 3, "hash": "left out of its own hash",
        ]
        var body = record
        body["hash"] = nil
        let canonical =
            #"{"dry_run":false,"event":"run-started","note":"a/b é \"q\" \\ \n","prev":"0000000000000000000000000000000000000000000000000000000000000000","run":"r-20261130T071500Z-3f9c","seq":1,"time":"2026-11-30T07:15:00Z","é":1,"😀":2,"ﬁ":3}"#
        #expect(JSONValue.object(body).canonical == canonical)
        #expect(JournalRecord.hash(of: record) == "ca6c0d504eb50f6d14688eac86e069903ba4952cbd01c1b50b5d9cb1a91d5a45")
    }

    @Test func fingerprintsFollowTheContract() {
        // SHA-256("test") = 9f86d081884c7d659a2feaa0c55ad015…
        #expect(KeyFingerprint.of("test") == "sha256:9f86d081884c7d65")
    }
}
