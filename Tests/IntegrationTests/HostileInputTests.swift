import Foundation
import SyncCore
import Testing

/// Issue 10: each finding of the security review, reproduced against the built binary.

extension Scenario {
    func journalText() -> String { (try? String(contentsOfFile: journal, encoding: .utf8)) ?? "" }

    func journalLines() -> [String] { journalText().split(separator: "\n").map(String.init) }

    func writeJournal(_ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: journal, atomically: false, encoding: .utf8)
    }

    func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
        try runProcess(Repo.binary, arguments, stdin: stdin, environment: environment)
    }

    func quirks(_ json: String) async throws { try await kong.control("POST", "/__test/quirks", json) }

    func requests(_ route: String) async throws -> Int64 { try await kong.stats()["by_route"]?[route]?.intValue ?? 0 }
}

/// True when the text holds a raw control character other than a line feed (ESC, CR, BEL…).
func hasRawControls(_ text: String) -> Bool {
    text.unicodeScalars.contains { $0 != "\n" && TextEscape.needsEscape($0) }
}

@Suite("Hostile journal: tampering is refused, acknowledged, never laundered", .serialized)
struct HostileJournalTests {
    func synced() async throws -> Scenario {
        let s = try Scenario()
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stderr)")
        return s
    }

    @Test func cutRecordsStopTheNextRunUntilAPersonAcknowledges() async throws {
        let s = try await synced()
        var lines = s.journalLines()
        lines.removeLast(2)
        try s.writeJournal(lines)
        let cut = s.journalText()
        // Give the run something to write, so "no gateway write" means something.
        try await s.kong.kong("DELETE", "/consumers/\(s.consumers["carol"]!)/plugins/\(try await s.plugins("carol")[0]["id"]!.stringValue!)")
        try await s.kong.resetStats()
        let refused = try s.sync()
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("records were cut"), "\(refused.stderr)")
        #expect(refused.stderr.contains("idp-sync journal acknowledge"))
        #expect(try await s.writes() == 0)
        #expect(s.journalText() == cut, "the run appended to a tampered journal")
        #expect(try s.run(["journal", "verify", "--journal", s.journal]).status == 1)

        let ack = try s.run(["journal", "acknowledge", "--config", s.config, "--reason", "ops: restored from a backup"])
        #expect(ack.status == 0, "\(ack.stderr)")
        #expect(ack.stdout.contains("kept the old journal as"))
        let first = try JSONParser.parse(s.journalLines()[0])
        #expect(first["event"] == "journal-started")
        #expect(first["acknowledged"]?["reason"] == "ops: restored from a backup")
        #expect(first["acknowledged"]?["problem"]?.stringValue?.contains("records were cut") == true)
        let verify = try s.run(["journal", "verify", "--config", s.config])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("acknowledged") && verify.stdout.contains("in 2 files"), "\(verify.stdout)")
        let again = try s.sync()
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try await s.plugins("carol").count == 1)
    }

    @Test func aDeletedJournalStopsTheNextRun() async throws {
        let s = try await synced()
        try FileManager.default.removeItem(atPath: s.journal)
        try await s.kong.resetStats()
        let r = try s.sync()
        #expect(r.status == 1)
        #expect(r.stderr.contains("deleted or moved"), "\(r.stderr)")
        #expect(try await s.writes() == 0)
        #expect(!FileManager.default.fileExists(atPath: s.journal))
    }

    @Test func aJournalPathAtSomeoneElsesFileLeavesItAlone() async throws {
        let dir = TempDir()
        let notes = dir.write("notes.txt", "precious notes without a final newline")
        let s = try Scenario(journal: notes)
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 1)
        #expect(r.stderr.contains("unterminated last line"), "\(r.stderr)")
        #expect(try String(contentsOfFile: notes, encoding: .utf8) == "precious notes without a final newline")
        #expect(try await s.writes() == 0)
    }

    @Test func aValidRecordInAnotherKeyOrderIsNotCalledEdited() async throws {
        let s = try await synced()
        var lines = s.journalLines()
        let record = try JSONParser.parse(lines[1]).objectValue!
        lines[1] = "{" + record.keys.sorted(by: >).map { "\"\($0)\":\(record[$0]!.canonical)" }.joined(separator: ",") + "}"
        try s.writeJournal(lines)
        let verify = try s.run(["journal", "verify", "--journal", s.journal])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(try s.sync().status == 0)
    }

    @Test func rotateKeepsTheChainOfEvidence() async throws {
        let s = try await synced()
        let rotate = try s.run(["journal", "rotate", "--config", s.config])
        #expect(rotate.status == 0, "\(rotate.stderr)")
        #expect(try s.sync().status == 0)
        let verify = try s.run(["journal", "verify", "--config", s.config])
        #expect(verify.status == 0 && verify.stdout.contains("in 2 files"), "\(verify.stdout)")
        let first = try JSONParser.parse(s.journalLines()[0])
        #expect(first["last_good_users"] == .int(6))
    }

    @Test(arguments: ["edited", "garbage"])
    func theReaderWarnsAndExitsOneOnBadRecords(_ how: String) async throws {
        let s = try await synced()
        var lines = s.journalLines()
        if how == "edited" {
            lines[2] = lines[2].replacingOccurrences(of: "\"run\":\"r-", with: "\"run\":\"x-")
        } else {
            lines.insert("this is not a record", at: 2)
        }
        try s.writeJournal(lines)
        let r = try s.run(["journal", "--journal", s.journal])
        #expect(r.status == 1)
        #expect(r.stderr.contains(how == "edited" ? "do not match their hash" : "not valid records"), "\(r.stderr)")
        #expect(r.stderr.contains("journal verify"))
    }

    @Test func verifyRefusesDevicesAndBoundsLines() throws {
        let dir = TempDir()
        let link = dir.path + "/zero.jsonl"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
        for path in ["/dev/zero", link] {
            let r = try runProcess(Repo.binary, ["journal", "verify", "--journal", path])
            #expect(r.status == 1)
            #expect(r.stderr.contains("regular file"), "\(r.stderr)")
        }
        let big = dir.write("big.jsonl", String(repeating: "{", count: 3 << 20) + "\n")
        let r = try runProcess(Repo.binary, ["journal", "verify", "--journal", big])
        #expect(r.status == 1 && r.stdout.contains("longer than"), "\(r.stdout)")
    }

    @Test func aWorldWritableJournalIsNarrowedTo0640() async throws {
        let s = try await synced()
        chmod(s.journal, 0o666)
        let r = try s.sync()
        #expect(r.status == 0)
        #expect(r.stderr.contains("journal mode fixed"), "\(r.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: s.journal)[.posixPermissions] as? Int == 0o640)
    }
}

/// Runs as root against directories another uid can write (issue 10.2).
@Suite("Symlinks and shared directories", .serialized, .enabled(if: geteuid() == 0, "needs root"))
struct SharedDirectoryTests {
    static let nobody: uid_t = 65534

    func setfacl(_ spec: String, _ path: String) throws {
        let r = try runProcess("/usr/bin/setfacl", ["-m", spec, path])
        #expect(r.status == 0, "setfacl: \(r.stderr)")
    }

    @Test(arguments: [
        ("mode 0777", "writable by everyone"), ("owned by nobody", "belongs to uid 65534"),
        ("group nogroup may write", "writable by group 65534"), ("ACL user nobody", "uid 65534 through a POSIX ACL"),
        ("ACL group nogroup", "group 65534 through a POSIX ACL"),
    ])
    func aDirectoryOthersCanWriteIsRefused(_ layout: String, _ message: String) async throws {
        let base = TempDir()
        let shared = base.path + "/shared"
        mkdir(shared, 0o755)
        switch layout {
        case "mode 0777": chmod(shared, 0o777)
        case "owned by nobody": chown(shared, Self.nobody, 0)
        case "group nogroup may write":
            chown(shared, 0, 65534)
            chmod(shared, 0o775)
        case "ACL user nobody": try setfacl("u:nobody:rwx", shared)
        default: try setfacl("g:nogroup:rwx", shared)
        }
        let s = try Scenario(journal: shared + "/journal.jsonl")
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 1)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.contains("sticky"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared).isEmpty)
        #expect(try await s.writes() == 0)
    }

    /// The shipped layouts: Kubernetes' fsGroup volume (root-owned, group-writable by our group,
    /// setgid) and node_exporter's textfile directory (another owner, an ACL for us, sticky).
    @Test func theShippedLayoutsWork() async throws {
        let base = TempDir()
        let volume = base.path + "/volume"
        mkdir(volume, 0o755)
        chown(volume, 0, getegid())
        chmod(volume, 0o2775)
        let textfiles = base.path + "/node-exporter"
        mkdir(textfiles, 0o755)
        chown(textfiles, Self.nobody, Self.nobody)
        try setfacl("u:root:rwx", textfiles)
        chmod(textfiles, 0o1755)
        let s = try Scenario(
            journal: volume + "/journal.jsonl", extraConfig: "metrics:\n  textfile_path: \(textfiles)/idp-sync.prom")
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("metrics not written"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: textfiles + "/idp-sync.prom"))
        // Without the sticky bit the textfile directory is refused (metrics only; the run still succeeds).
        chmod(textfiles, 0o755)
        let again = try s.sync()
        #expect(again.status == 0)
        #expect(again.stderr.contains("metrics not written") && again.stderr.contains("belongs to uid 65534"), "\(again.stderr)")
    }

    @Test(arguments: ["journal.jsonl", "journal.jsonl.lock", "journal.jsonl.head", "hard link"])
    func plantedLinksAreNeverFollowed(_ planted: String) async throws {
        let base = TempDir()
        let victim = base.write("victim", "root's file\n")
        let shared = base.path + "/shared"
        mkdir(shared, 0o755)
        chmod(shared, 0o1777)
        let s = try Scenario(journal: shared + "/journal.jsonl")
        try await s.seedDemo()
        if planted == "hard link" {
            #expect(link(victim, shared + "/journal.jsonl") == 0)
        } else {
            #expect(symlink(victim, shared + "/" + planted) == 0)
            lchown(shared + "/" + planted, Self.nobody, Self.nobody)
        }
        let r = try s.sync()
        #expect(r.status == 1, "\(r.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "root's file\n")
        var info = stat()
        stat(victim, &info)
        #expect(info.st_mode & 0o777 == 0o644)
        #expect(try await s.writes() == 0)
    }

    @Test func aSymlinkAtTheMetricsFileIsReplacedNotFollowed() async throws {
        let base = TempDir()
        let victim = base.write("victim", "root's file\n")
        let textfiles = base.path + "/textfiles"
        mkdir(textfiles, 0o755)
        chmod(textfiles, 0o1777)
        symlink(victim, textfiles + "/idp-sync.prom")
        lchown(textfiles + "/idp-sync.prom", Self.nobody, Self.nobody)
        let s = try Scenario(extraConfig: "metrics:\n  textfile_path: \(textfiles)/idp-sync.prom")
        try await s.seedDemo()
        #expect(try s.sync().status == 0)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "root's file\n")
        var info = stat()
        lstat(textfiles + "/idp-sync.prom", &info)
        #expect(info.st_mode & S_IFMT == S_IFREG)
        #expect(try FileManager.default.contentsOfDirectory(atPath: textfiles) == ["idp-sync.prom"])
    }
}

@Suite("Hostile numbers, pages and answers from servers", .serialized)
struct HostileServerTests {
    @Test(arguments: ["-9223372036854775808", "-9223372036854700000", "9223372036854775807"])
    func aCraftedClockTagCannotStopTheRun(_ clock: String) async throws {
        let s = try Scenario()
        try await s.seedDemo()
        let frank = s.consumers["frank"]!
        let (status, _) = try await s.kong.kong(
            "PATCH", "/consumers/\(frank)",
            ["tags": ["idp-managed", "idp-sync:orphaned", .string("idp-sync:missing-since:\(clock)"), "idp-sync:reason:missing"]])
        #expect(status == 200)
        let dry = try s.sync(["--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("frank"))
        let real = try s.sync()
        #expect(real.status == 0, "\(real.stderr)")
        let tags = try await s.consumer("frank")["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let since = tags.first { $0.hasPrefix("idp-sync:missing-since:") }.flatMap { Int64($0.split(separator: ":").last!) }
        let now = Int64(Date().timeIntervalSince1970)
        #expect(since.map { $0 > now - 3600 && $0 < now + 3600 } == true, "\(tags)")
    }

    @Test(arguments: ["nan", "-1", "1e999", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"])
    func anOddRetryAfterIsABackoffNotATrap(_ value: String) async throws {
        let s = try Scenario()
        try await s.seedDemo()
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "GET", "path_regex": "^/consumers$", "status": 429, "retry_after": "\#(value)", "times": 1}]}"#)
        let r = try s.sync(["--dry-run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await s.requests("GET /consumers") == 2)
    }

    @Test(arguments: [
        ("grace_period", "9223372036854775807s", "policy.grace_period"),
        ("disabled_grace_period", "106751991167300d", "policy.disabled_grace_period"),
    ])
    func durationsThatDoNotFitAreRefused(_ key: String, _ value: String, _ path: String) async throws {
        let s = try Scenario(policy: [key: value])
        for command in [["check-config", "--config", s.config], ["sync", "--config", s.config]] {
            let r = try s.run(command)
            #expect(r.status == 1)
            #expect(r.stderr.contains(path) && r.stderr.contains("must be from"), "\(r.stderr)")
        }
    }

    @Test func aTimeoutThatDoesNotFitIsRefused() throws {
        let s = try Scenario(gateway: ["timeout": "10000000000000000s"])
        let r = try s.run(["check-config", "--config", s.config])
        #expect(r.status == 1)
        #expect(r.stderr.contains("gateways[0].timeout"), "\(r.stderr)")
    }

    @Test(arguments: [
        (#"{"endless_offset": "same"}"#, "already given"),
        (#"{"endless_offset": "fresh"}"#, "keeps paging"),
        (#"{"endless_offset": "fresh", "endless_fresh_data": true}"#, "read_deadline"),
    ])
    func anEndlessConsumerListingIsCut(_ quirk: String, _ message: String) async throws {
        let s = try Scenario(gateway: ["read_deadline": "2s"])
        try await s.seedDemo()
        try await s.quirks(quirk)
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 1, "\(r.stderr)")
        let report = try JSONParser.parse(r.stdout)
        #expect(report["refused"]?["cause"] == "gateway-error")
        #expect(report["refused"]?["detail"]?.stringValue?.contains(message) == true, "\(report.canonical)")
        #expect(try await s.writes() == 0)
        if message != "read_deadline" { #expect(try await s.requests("GET /consumers") <= 12) }
    }

    @Test(arguments: [
        ("same-cookie", "no entry and a paging cookie it had already given"), ("endless-empty-pages", "cookie never empties"),
        ("endless-cookie", "read_deadline"),
    ])
    func anEndlessDirectoryListingIsCut(_ mode: String, _ message: String) async throws {
        let fake = try PortFileServer(script: "ldap/fake_ldap_server.py", ["--mode", mode])
        let s = try Scenario(source: ["url": "ldap://127.0.0.1:\(fake.port)", "read_deadline": "2s"])
        try await s.seedDemo()
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 4, "\(r.stderr)")
        let report = try JSONParser.parse(r.stdout)
        #expect(report["refused"]?["detail"]?.stringValue?.contains(message) == true, "\(report.canonical)")
        #expect(try await s.writes() == 0)
    }

    @Test func aDecompressionBombFailsCleanlyInBoundedMemory() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        try await s.quirks(#"{"gzip_bomb_bytes": 4000000000}"#)
        let (r, maxRSSKiB) = try runMeasured(Repo.binary, ["sync", "--config", s.config, "--output", "json"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("larger than 64 MiB"), "\(r.stdout)")
        #expect(maxRSSKiB < 400 * 1024, "peak RSS \(maxRSSKiB) KiB")
    }

    @Test func aServerThatIgnoresTheTagFilterIsAGatewayError() async throws {
        let s = try Scenario()
        try await s.seedDemo()
        try await s.quirks(#"{"ignore_tags": true}"#)
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 1)
        let report = try JSONParser.parse(r.stdout)
        #expect(report["refused"]?["cause"] == "gateway-error")
        #expect(report["refused"]?["detail"]?.stringValue?.contains("did not apply the tag filter") == true)
        #expect(try await s.writes() == 0)
    }

    @Test func sigtermDuringTheReadStopsAtOnceAndWritesNothing() async throws {
        let s = try Scenario(gateway: ["timeout": "120s"])
        try await s.seedDemo()
        try await s.kong.control(
            "POST", "/__test/faults", #"{"rules": [{"method": "GET", "path_regex": "^/consumers$", "status": null, "delay_ms": 60000}]}"#)
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let pid = try spawn(Repo.binary, ["sync", "--config", s.config], stdout: null, stderr: null, stdin: null)
        // The read is under way once the server has the request (its stats count it on arrival).
        var arrived = false
        for _ in 0..<600 {
            arrived = (try? await s.requests("GET /consumers")) ?? 0 >= 1
            if arrived { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(arrived)
        kill(pid, SIGTERM)
        // Well inside the 60 s the server would hold the request: the run did not wait for it.
        let status = try await exitStatus(of: pid)
        #expect(status == 1, "the run did not stop within 10 s of SIGTERM")
        let records = try s.records()
        #expect(records.map { $0["event"]?.stringValue ?? "" } == ["run-started", "run-refused"])
        #expect(records.last?["detail"]?.stringValue?.contains("stopped by a signal") == true)
        #expect(try await s.writes() == 0)
    }

    @Test func sigtermDuringAHungBindStopsAtOnce() async throws {
        let proxy = try FaultProxy(["--blackhole"])
        let s = try Scenario(source: ["url": "ldap://127.0.0.1:\(proxy.port)", "timeout": "120s"])
        try await s.seedDemo()
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let pid = try spawn(Repo.binary, ["sync", "--config", s.config], stdout: null, stderr: null, stdin: null)
        var tries = 0
        while tries < 500, (try? s.records().count) ?? 0 < 1 {
            try await Task.sleep(nanoseconds: 20_000_000)
            tries += 1
        }
        // run-started is written after the signal handler is in place; the bind is under way or next.
        kill(pid, SIGTERM)
        let status = try await exitStatus(of: pid)
        #expect(status == 4, "the run did not stop within 10 s of SIGTERM")
        #expect(try s.records().last?["detail"]?.stringValue?.contains("stopped by a signal") == true)
    }

    @Test func ldapTLSChecksCannotBeSwitchedOffFromOutside() async throws {
        let certs = try TestCertificates()
        let ldap = try SlapdServer(tlsDir: certs.dir.path)
        let s = try Scenario(source: ["url": ldap.tlsURL], ldap: ldap)
        try await s.seedDemo()
        let home = TempDir()
        _ = home.write(".ldaprc", "TLS_REQCERT never\nTLS_CACERT \(certs.ca)\n")
        _ = home.write("ldaprc", "TLS_REQCERT never\n")
        let conf = home.write("ldap.conf", "TLS_REQCERT never\nTLS_CACERT \(certs.ca)\n")
        let r = try s.run(
            ["sync", "--config", s.config],
            environment: ["LDAPTLS_REQCERT": "never", "LDAPTLS_CACERT": certs.ca, "LDAPCONF": conf, "HOME": home.path,
                          "LDAPRC": "ldaprc"])
        #expect(r.status == 4, "an unverified ldaps bind succeeded: \(r.stderr)")
        #expect(try await s.writes() == 0)
    }

    @Test(arguments: ["logfmt", "text", "json"])
    func serverTextCannotForgeLinesOrReachTheTerminal(_ format: String) async throws {
        let s = try Scenario()
        try await s.seedDemo()
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "PATCH", "status": 500, "body": {"message": "boom\r\njournal.head=999:forged \u001b[31mred\u001b]0;title\u0007"}}]}"#)
        let r = try s.sync(["--log-format", format])
        #expect(r.status == 1)
        #expect(r.stderr.contains("boom"), "\(r.stderr)")
        for (name, text) in [("stderr", r.stderr), ("stdout", r.stdout)] {
            #expect(!hasRawControls(text), "raw control characters on \(name)")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("journal.head=999") }, "a forged line on \(name)")
        }
        let view = try s.run(["journal", "--journal", s.journal])
        #expect(view.stdout.contains("boom"))
        #expect(!hasRawControls(view.stdout))
    }

    @Test func aPasswordFileWithCRLFStillBinds() async throws {
        let s = try Scenario()
        _ = s.dir.write("bind-password", s.ldap.password + "\r\n")
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test(arguments: ["empty", "directory", "newline in a token"])
    func badSecretFilesFailCheckConfig(_ how: String) throws {
        let s = try Scenario(token: "t0ken")
        switch how {
        case "empty": _ = s.dir.write("bind-password", "")
        case "directory":
            try FileManager.default.removeItem(atPath: s.dir.path + "/bind-password")
            mkdir(s.dir.path + "/bind-password", 0o700)
        default: _ = s.dir.write("kong-token", "t0ken\nX-Injected: yes\n")
        }
        let r = try s.run(["check-config", "--config", s.config])
        #expect(r.status == 1)
        let expected = ["empty": "is empty", "directory": "not a regular file", "newline in a token": "control character"][how]!
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(!r.stderr.contains("X-Injected"))
    }

    @Test func aTokenEchoedInA401NeverReachesAnyOutput() async throws {
        let token = "s3cr3t-admin-token-4242"
        let s = try Scenario(token: token)
        try await s.seedDemo()
        try await s.kong.control(
            "POST", "/__test/faults",
            #"{"rules": [{"method": "GET", "path_regex": "^/$", "status": 401, "body": {"message": "Invalid token \#(token)"}}]}"#)
        let r = try s.sync(["--output", "json"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("401"))
        for text in [r.stdout, r.stderr, s.journalText()] { #expect(!text.contains(token)) }
    }

    @Test func explainFindsANonASCIIUsername() async throws {
        let dir = TempDir()
        // LDIF carries non-ASCII values in base64 (RFC 2849).
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let ldif = dir.write(
            "zoe.ldif",
            """
            dn:: \(b64("uid=zoë,ou=people,dc=example,dc=org"))
            objectClass: inetOrgPerson
            uid:: \(b64("zoë"))
            cn:: \(b64("Zoë"))
            sn:: \(b64("Zoë"))

            """)
        let ldap = try SlapdServer(extraLDIF: [ldif])
        let s = try Scenario(ldap: ldap, gateway: ["match": "{ consumer: username, user: username }"])
        try await s.kong.seed(["consumers": [["username": "zoë", "tags": ["idp-managed"]]]])
        let sync = try s.sync(["--dry-run"])
        #expect(sync.status == 0)
        let r = try s.run(["explain", "--config", s.config, "--consumer", "zoë"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("is present and active"), "\(r.stdout)")
    }
}
