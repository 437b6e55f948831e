import ArgumentParser
import Foundation
import Synchronization
import SyncCore
import SyncEngine
import SyncTesting
import Testing

@testable import IdPSyncCLI

/// The commands' `run(context:)` against the memory twins: real argument parsing, a real journal
/// file, no server and no process.
@Suite("Commands over a context: sync, restore, explain, check-config")
struct CommandTests {
    final class Captured: Sendable {
        let text = Mutex("")
        let errors = Mutex("")
    }

    let dir: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("idp-sync-cmd-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// A config whose servers are never reached (the context supplies the twins).
    func config() throws -> String {
        let path = dir + "/config.yaml"
        try """
            version: 1
            source:
              type: ldap
              url: ldap://127.0.0.1:1
              base_dn: ou=people,dc=example,dc=org
            gateways:
              - name: mem
                admin_url: http://127.0.0.1:1
                select_tags: [idp-managed]
            policy:
              grace_period: 0s
              max_disable_percent: 100
            journal:
              path: \(dir)/journal.jsonl
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func context(_ gateway: MemoryGateway, users: [DirectoryUser], captured: Captured) -> CommandContext {
        CommandContext(
            output: { text in captured.text.withLock { $0 += text } },
            errors: { text in captured.errors.withLock { $0 += text } }, now: { 1_796_000_000 },
            source: { _, _ in MemoryDirectory(users: users) }, gateways: { _, _ in [gateway] }, shouldStop: { false },
            color: false)
    }

    func twins() -> (MemoryGateway, [DirectoryUser]) {
        let g = MemoryGateway(name: "mem")
        g.add(Consumer(id: ConsumerID("c-1"), username: "alice", customID: "u-1", tags: ["idp-managed"]),
              keys: [KeyRef(id: KeyID("k-1"), fingerprint: KeyFingerprint.of("alice-key"))])
        g.add(Consumer(id: ConsumerID("c-2"), username: "bob", customID: "u-2", tags: ["idp-managed"]))
        return (g, [DirectoryUser(id: UserID("u-1"), username: "alice")])
    }

    /// Runs a command and returns the exit code it threw (0 when it returned).
    func exitCode(_ body: () async throws -> Void) async -> Int32 {
        do {
            try await body()
            return 0
        } catch let code as ExitCode {
            return code.rawValue
        } catch {
            Issue.record("unexpected \(error)")
            return -1
        }
    }

    @Test func aDryRunPrintsTheReportAndWritesNothing() async throws {
        let (g, users) = twins()
        let captured = Captured()
        let sync = try Sync.parse(["--config", try config(), "--dry-run", "--output", "json"])
        let code = await exitCode { try await sync.run(context: context(g, users: users, captured: captured)) }
        #expect(code == 0)
        let report = try JSONParser.parse(captured.text.withLock { $0 })
        #expect(report["counts"]?["disable"] == .int(1) && report["counts"]?["linked"] == .int(1))
        #expect(g.current.writes.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/journal.jsonl"))
    }

    @Test func aRealRunThenARestoreOfIt() async throws {
        let (g, users) = twins()
        let captured = Captured()
        let path = try config()
        let sync = try Sync.parse(["--config", path, "--output", "json", "--detailed-exitcode"])
        let code = await exitCode { try await sync.run(context: context(g, users: users, captured: captured)) }
        #expect(code == 2)
        #expect(g.current.blocks[ConsumerID("c-2")] != nil)
        let run = try #require(try JSONParser.parse(captured.text.withLock { $0 })["run"]?.stringValue)
        #expect(try JournalCheck.verify(dir + "/journal.jsonl"))

        let restored = Captured()
        let restore = try Restore.parse(["--config", path, "--run", run])
        let restoreCode = await exitCode { try await restore.run(context: context(g, users: users, captured: restored)) }
        #expect(restoreCode == 0, "\(restored.errors.withLock { $0 })")
        let table = restored.text.withLock { $0 }.split(separator: "\n")
        #expect(table.contains { $0.contains("+ restore") && $0.contains(" bob ") && $0.contains("applied") }, "\(table)")
        #expect(g.current.blocks[ConsumerID("c-2")] == nil)
        #expect(g.current.consumers[ConsumerID("c-2")]?.tags == ["idp-managed"])
        #expect(try JournalCheck.verify(dir + "/journal.jsonl"))
    }

    @Test func explainReadsTheKeyFromItsReaderAndNamesTheCause() async throws {
        let (g, users) = twins()
        let captured = Captured()
        let explain = try Explain.parse(["--config", try config(), "--key", "-", "--output", "json"])
        let code = await exitCode {
            try await explain.run(context: context(g, users: users, captured: captured), readKey: { "alice-key\r" })
        }
        #expect(code == 0)
        let answer = try JSONParser.parse(captured.text.withLock { $0 })
        #expect(answer["cause"] == "not-caused-by-idp-sync")
        #expect(!captured.text.withLock { $0 }.contains("alice-key"))
    }

    @Test func checkConfigConnectReachesTheTwins() async throws {
        let (g, users) = twins()
        let captured = Captured()
        let check = try CheckConfig.parse(["--config", try config(), "--connect"])
        let code = await exitCode { try await check.run(context: context(g, users: users, captured: captured)) }
        #expect(code == 0)
        let text = captured.text.withLock { $0 }
        #expect(text.contains("ok    source       memory directory: 1 users"), "\(text)")
        #expect(text.contains("ok    gateway mem  memory gateway mem"), "\(text)")
        #expect(text.contains("ok    journal "), "\(text)")
    }
}

/// `journal verify` through the library, for the commands above.
enum JournalCheck {
    static func verify(_ path: String) throws -> Bool {
        let verify = try IdPSyncCLI.Journal.Verify.parse(["--journal", path])
        do {
            try verify.run()
            return true
        } catch {
            return false
        }
    }
}
