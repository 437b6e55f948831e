import CurlHTTP
import Foundation
import SyncCore

/// The repository root, found from this file's path.
enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func fixture(_ path: String) -> String { root + "/Fixtures/" + path }

    /// The built `idp-sync` next to the test bundle.
    static let binary: String = {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("idp-sync").path,
            Bundle.main.bundleURL.appendingPathComponent("idp-sync").path,
            root + "/.build/debug/idp-sync",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[2]
    }()
}

/// A fresh directory per test, removed afterwards.
final class TempDir: @unchecked Sendable {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("idp-sync-it-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ text: String) -> String {
        let file = path + "/" + name
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Starts a program with posix_spawn (Foundation's Process can hang in waitUntilExit inside async tests).
func spawn(
    _ executable: String, _ arguments: [String], stdout: Int32, stderr: Int32, stdin: Int32,
    extraEnvironment: [String: String] = [:]
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    // Children start with no blocked signals and default handlers: test threads block signals,
    // and a server that inherits a blocked SIGTERM cannot be stopped.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var envp: [UnsafeMutablePointer<CChar>?] = []
    var current = environ
    while let entry = current.pointee {
        let text = String(cString: entry)
        let name = String(text.prefix { $0 != "=" })
        if extraEnvironment[name] == nil { envp.append(strdup(text)) }
        current += 1
    }
    for (name, value) in extraEnvironment { envp.append(strdup("\(name)=\(value)")) }
    envp.append(nil)
    defer { for e in envp { free(e) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
    guard rc == 0 else { throw FixtureError(description: "cannot start \(executable): \(String(cString: strerror(rc)))") }
    return pid
}

/// Waits for a child and returns its exit status (128+signal when killed).
func waitFor(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    if status & 0x7f == 0 { return (status >> 8) & 0xff }
    return 128 + (status & 0x7f)
}

/// Runs a program to completion, capturing its output (through files, so no pipe can fill up).
func runProcess(
    _ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]
) throws -> ProcessResult {
    try runMeasured(executable, arguments, stdin: stdin, environment: environment).0
}

/// `runProcess`, also returning the child's peak resident memory in KiB (from wait4's rusage).
func runMeasured(
    _ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]
) throws -> (ProcessResult, Int) {
    let dir = TempDir()
    let inPath = dir.write("stdin", stdin ?? "")
    let outPath = dir.path + "/stdout", errPath = dir.path + "/stderr"
    let input = open(inPath, O_RDONLY)
    let out = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let err = open(errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    defer {
        close(input)
        close(out)
        close(err)
    }
    let pid = try spawn(executable, arguments, stdout: out, stderr: err, stdin: input, extraEnvironment: environment)
    var raw: Int32 = 0
    var usage = rusage()
    while wait4(pid, &raw, 0, &usage) < 0 && errno == EINTR {}
    let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    let result = ProcessResult(
        status: status, stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    return (result, Int(usage.ru_maxrss))
}

/// The exit status of a child that should end soon, polled (without blocking a cooperative
/// thread) for at most `tries` × 20 ms; nil when it did not end, and then it is killed.
func exitStatus(of pid: pid_t, tries: Int = 500) async throws -> Int32? {
    for _ in 0..<tries {
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid { return raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f) }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    kill(pid, SIGKILL)
    _ = waitFor(pid)
    return nil
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

/// Debian's slapd on 127.0.0.1, started by `Fixtures/ldap/slapd-fixture` in a temp dir.
final class SlapdServer: @unchecked Sendable {
    let dir = TempDir()
    var env: [String: String] = [:]
    var url: String { env["LDAP_URL"]! }
    /// Set when started with a TLS directory.
    var tlsURL: String { env["LDAPS_URL"]! }
    var bindDN: String { env["LDAP_BIND_DN"]! }
    var password: String { env["LDAP_BIND_PASSWORD"]! }
    var baseDN: String { env["LDAP_BASE_DN"]! }
    var pid: Int32 { Int32(env["LDAP_PID"]!)! }

    /// slapd's log (`SLAPD_FIXTURE_DEBUG` level, `stats` unless `debugLevel` says otherwise).
    var logPath: String { dir.path + "/slapd/slapd.log" }
    /// The fixture's directory (slapd.conf, db, logs).
    var fixtureDir: String { dir.path + "/slapd" }
    private let environment: [String: String]

    /// `sizeLimit: nil` is no size limit for the bind user; `syncprov` adds the RFC 4533 provider
    /// overlay; `debugLevel` is slapd's `-d` level (`"768"`: stats and one line per entry sent).
    init(
        users: Int = 0, demo: Bool = true, sizeLimit: Int? = 50, extraLDIF: [String] = [], pagedTotalLimit: Int? = nil,
        pageSizeLimit: Int? = nil, leftEvery: Int? = nil, tlsDir: String? = nil, syncprov: Bool = false,
        debugLevel: String? = nil
    ) throws {
        environment = debugLevel.map { ["SLAPD_FIXTURE_DEBUG": $0] } ?? [:]
        var args = ["start", "--dir", dir.path + "/slapd", "--size-limit", sizeLimit.map(String.init) ?? "unlimited"]
        if syncprov { args.append("--syncprov") }
        if let tlsDir { args += ["--tls-dir", tlsDir] }
        if let pagedTotalLimit { args += ["--paged-total-limit", String(pagedTotalLimit)] }
        if let pageSizeLimit { args += ["--page-size-limit", String(pageSizeLimit)] }
        if let leftEvery { args += ["--left-every", String(leftEvery)] }
        if demo { args += ["--ldif", Repo.fixture("ldap/demo.ldif")] }
        for ldif in extraLDIF { args += ["--ldif", ldif] }
        if users > 0 { args += ["--users", String(users)] }
        let result = try runProcess(Repo.fixture("ldap/slapd-fixture"), args, environment: environment)
        guard result.status == 0 else {
            throw FixtureError(description: "slapd-fixture start failed: \(result.stderr)")
        }
        readEnvironment(result.stdout)
    }

    private func readEnvironment(_ stdout: String) {
        for line in stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { env[String(parts[0])] = String(parts[1]) }
        }
    }

    /// Stops slapd if it runs and starts it again on the same database, config and port
    /// (`slapd-fixture restart`); the old log moves to `slapd.log.1`.
    func restart() throws {
        let result = try runProcess(
            Repo.fixture("ldap/slapd-fixture"), ["restart", "--dir", fixtureDir], environment: environment)
        guard result.status == 0 else {
            throw FixtureError(description: "slapd-fixture restart failed: \(result.stderr)")
        }
        readEnvironment(result.stdout)
    }

    func stop() {
        _ = try? runProcess(Repo.fixture("ldap/slapd-fixture"), ["stop", "--dir", dir.path + "/slapd"])
    }

    deinit { stop() }
}

/// The project's Kong Admin API test server (`Fixtures/kong/kong_admin_server.py`).
final class KongServer: @unchecked Sendable {
    let dir = TempDir()
    var pid: pid_t = 0
    var port = 0
    let tls: Bool
    var url: String { "\(tls ? "https" : "http")://127.0.0.1:\(port)" }
    private let http: HTTPClient

    /// With `certs`, the server speaks HTTPS (and requires client certificates when `mtls`).
    init(arguments: [String] = [], certs: TestCertificates? = nil, mtls: Bool = false) throws {
        var arguments = arguments
        tls = certs != nil
        if let certs {
            arguments += ["--tls-cert", certs.cert, "--tls-key", certs.key]
            if mtls { arguments += ["--client-ca", certs.ca] }
        }
        http = HTTPClient(
            options: HTTPClientOptions(
                timeoutSeconds: 60, caFile: certs?.ca, clientCert: certs?.clientCert, clientKey: certs?.clientKey))
        let portFile = dir.path + "/port"
        let null = open("/dev/null", O_RDWR)
        let log = open(dir.path + "/server.log", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer {
            close(null)
            close(log)
        }
        pid = try spawn(
            "python3", [Repo.fixture("kong/kong_admin_server.py"), "--port", "0", "--port-file", portFile] + arguments,
            stdout: null, stderr: log, stdin: null)
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
                let p = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                port = p
                return
            }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        _ = waitFor(pid)
        throw FixtureError(description: "the Kong test server did not start")
    }

    deinit {
        kill(pid, SIGTERM)
        _ = waitFor(pid)
    }

    @discardableResult
    func control(_ method: String, _ path: String, _ body: String? = nil) async throws -> JSONValue {
        let response = try await http.send(
            HTTPRequest(
                method: method, url: url + path, headers: [("Content-Type", "application/json")],
                body: body.map { Array($0.utf8) }))
        guard (200..<300).contains(response.status) else {
            throw FixtureError(description: "\(method) \(path): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
        return response.body.isEmpty ? .null : try JSONParser.parse(response.body)
    }

    /// Kong requests by "METHOD /route/{template}", and totals.
    func stats() async throws -> JSONValue { try await control("GET", "/__test/stats") }

    func resetStats() async throws { try await control("POST", "/__test/reset-stats") }

    /// The whole store, byte for byte.
    func state() async throws -> [UInt8] {
        try await http.send(HTTPRequest(method: "GET", url: url + "/__test/state")).body
    }

    /// Seeds consumers; returns them with their ids.
    @discardableResult
    func seed(_ json: JSONValue) async throws -> JSONValue { try await control("POST", "/__test/seed", json.canonical) }

    func kong(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> (Int, JSONValue) {
        let response = try await http.send(
            HTTPRequest(
                method: method, url: url + path, headers: body == nil ? [] : [("Content-Type", "application/json")],
                body: body.map { Array($0.canonical.utf8) }))
        return (response.status, response.body.isEmpty ? .null : (try? JSONParser.parse(response.body)) ?? .null)
    }
}

/// The fixtures' deterministic entryUUIDs: uuid5(NAMESPACE_URL, "user:" + uid).
enum DemoUsers {
    static let alice = "5aca05f7-1e30-5a6b-82b9-64f1787ab26a"
    static let bob = "46ae4d79-4ed1-51ef-9900-6cb3fc68497f"
    static let carol = "8a314da2-415e-5001-a7d0-fe5138d85bff"
    static let dave = "93862a1c-b727-541b-b82e-3c92d1d52616"
    static let erin = "31a472d1-d088-58c7-8114-ec2c8e38834b"
    static let svcCI = "2133a1e1-fd81-56b7-95a5-c67f63e14837"
    static let user000001 = "4d6633dd-d281-5916-868b-1bf9d6ca2731"
}
