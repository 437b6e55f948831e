import Foundation
import SyncCore
@testable import SyncJournal
import Testing

@Suite("Journal reader: filters stream and combine")
struct JournalQueryTests {
    func journal() throws -> (TempDir, String) {
        let dir = TempDir()
        let path = dir.path + "/j.jsonl"
        let file = try JournalFile(path: path)
        for (run, name, action, gateway) in [
            ("r-1", "alice", "flag", "prod"), ("r-1", "bob", "disable", "prod"), ("r-2", "alice", "disable", "stage"),
            ("r-2", "carol", "restore", "prod"),
        ] {
            try file.append(fields: [
                "event": "outcome", "run": .string(run), "action": .string(action), "gateway": .string(gateway),
                "consumer": ["id": .string("id-\(name)"), "username": .string(name), "custom_id": .string("cid-\(name)")],
                "user": .null, "keys": [["id": "k", "fingerprint": .string("sha256:\(name)")]],
            ])
        }
        return (dir, path)
    }

    func names(_ path: String, _ query: JournalQuery) throws -> [String] {
        var out: [String] = []
        try JournalReader(path: path).read(query: query) { record, _ in
            out.append("\(record["run"]!.stringValue!)/\(record["consumer"]!["username"]!.stringValue!)")
        }
        return out
    }

    @Test func filtersCombine() throws {
        let (dir, path) = try journal()
        #expect(try names(path, JournalQuery()) == ["r-1/alice", "r-1/bob", "r-2/alice", "r-2/carol"])
        #expect(try names(path, JournalQuery(consumer: ["alice"])) == ["r-1/alice", "r-2/alice"])
        #expect(try names(path, JournalQuery(consumer: ["cid-bob"])) == ["r-1/bob"])
        #expect(try names(path, JournalQuery(consumer: ["id-carol"])) == ["r-2/carol"])
        #expect(try names(path, JournalQuery(run: ["r-2"], action: ["disable"])) == ["r-2/alice"])
        #expect(try names(path, JournalQuery(gateway: ["prod"], keyFingerprint: "sha256:alice")) == ["r-1/alice"])
        #expect(try names(path, JournalQuery(user: ["cid-carol"])) == ["r-2/carol"])
        #expect(try names(path, JournalQuery(since: "2000-01-01T00:00:00Z", until: "2999-01-01T00:00:00Z")).count == 4)
        #expect(try names(path, JournalQuery(since: "2999-01-01T00:00:00Z")).isEmpty)
        #expect(try names(path, JournalQuery(consumer: ["al"])).isEmpty)  // exact, not substring
        withExtendedLifetime(dir) {}
    }

    @Test func aKeyGivenTwiceMeansEitherAndKeysCombine() throws {
        let (dir, path) = try journal()
        #expect(try names(path, JournalQuery(action: ["flag", "restore"])) == ["r-1/alice", "r-2/carol"])
        #expect(try names(path, JournalQuery(consumer: ["bob", "cid-carol"])) == ["r-1/bob", "r-2/carol"])
        #expect(try names(path, JournalQuery(run: ["r-1", "r-2"])).count == 4)
        // Different keys: AND, each key's values: OR.
        #expect(try names(path, JournalQuery(action: ["flag", "disable"], gateway: ["prod"])) == ["r-1/alice", "r-1/bob"])
        #expect(try names(path, JournalQuery(consumer: ["alice", "carol"], gateway: ["stage", "nowhere"])) == ["r-2/alice"])
        #expect(try names(path, JournalQuery(action: ["flag"], gateway: ["stage"])).isEmpty)
        withExtendedLifetime(dir) {}
    }

    @Test(arguments: [
        (nil, false, ["r-1/alice", "r-1/bob", "r-2/alice", "r-2/carol"]),
        (nil, true, ["r-2/carol", "r-2/alice", "r-1/bob", "r-1/alice"]),
        (2, false, ["r-2/alice", "r-2/carol"]),
        (3, true, ["r-2/carol", "r-2/alice", "r-1/bob"]),
        (10, false, ["r-1/alice", "r-1/bob", "r-2/alice", "r-2/carol"]),
        (0, false, []),
    ] as [(Int?, Bool, [String])])
    func lastAndReverse(_ last: Int?, _ reverse: Bool, _ expected: [String]) throws {
        let (dir, path) = try journal()
        var problems = ReadProblems()
        var out: [String] = []
        let end = try JournalReader(path: path).read(query: JournalQuery(), last: last, reverse: reverse, problems: &problems) {
            record, line in
            #expect((try? JSONParser.parse(line)) == record)
            out.append("\(record["run"]!.stringValue!)/\(record["consumer"]!["username"]!.stringValue!)")
        }
        #expect(out == expected)
        #expect(problems.isEmpty)
        #expect(end == Int64(try Data(contentsOf: URL(fileURLWithPath: path)).count))
        // The last N of a filter's matches, not of all records.
        out = []
        try JournalReader(path: path).read(query: JournalQuery(consumer: ["alice"]), last: 1, reverse: false, problems: &problems) {
            record, _ in out.append(record["run"]!.stringValue!)
        }
        #expect(out == ["r-2"])
        withExtendedLifetime(dir) {}
    }

    @Test func followResumesAfterThePartialLine() throws {
        let (dir, path) = try journal()
        let reader = JournalReader(path: path)
        var seen = 0
        var offset = try reader.read(query: JournalQuery()) { _, _ in seen += 1 }
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data("{\"event\":\"outcome\",\"run\":\"r-3\"".utf8))
        offset = try reader.read(from: offset, query: JournalQuery()) { _, _ in seen += 1 }
        #expect(seen == 4)
        handle.write(Data(",\"seq\":5}\n".utf8))
        handle.closeFile()
        _ = try reader.read(from: offset, query: JournalQuery()) { record, _ in
            seen += 1
            #expect(record["run"] == "r-3")
        }
        #expect(seen == 5)
        withExtendedLifetime(dir) {}
    }

    @Test(arguments: [
        ("2026-11-30T07:15:00Z", 1_796_022_900), ("2026-11-30T08:15:00+01:00", 1_796_022_900),
        ("2026-11-30T07:15:00.123Z", 1_796_022_900), ("2026-11-30", 1_795_996_800),
    ] as [(String, Int64)])
    func rfc3339Parsing(_ text: String, _ seconds: Int64) {
        #expect(TimeFormat.parseRFC3339(text) == seconds)
    }

    @Test(arguments: ["2026-13-01", "2026-11-30T25:00:00Z", "yesterday", "2026-11-30T07:15:00"])
    func badTimes(_ text: String) {
        #expect(TimeFormat.parseRFC3339(text) == nil)
    }
}
