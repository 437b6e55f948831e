import Foundation

/// A Python fixture process that writes its port to a file (scim2-server launcher, lying SCIM fake).
final class PortFileServer: @unchecked Sendable {
    let dir = TempDir()
    var pid: pid_t = 0
    var port = 0
    var url: String { "http://127.0.0.1:\(port)" }

    init(script: String, _ arguments: [String], timeoutSeconds: Int = 60) throws {
        let null = open("/dev/null", O_RDWR)
        let log = open(dir.path + "/log", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer {
            close(null)
            close(log)
        }
        pid = try spawn(
            "python3", [Repo.fixture(script), "--port-file", dir.path + "/port"] + arguments, stdout: null, stderr: log,
            stdin: null)
        for _ in 0..<(timeoutSeconds * 20) {
            if let text = try? String(contentsOfFile: dir.path + "/port", encoding: .utf8), let p = Int(text) {
                port = p
                return
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let log = (try? String(contentsOfFile: dir.path + "/log", encoding: .utf8)) ?? ""
                throw FixtureError(description: "\(script) exited: \(log)")
            }
            usleep(50_000)
        }
        throw FixtureError(description: "\(script) did not start")
    }

    deinit {
        kill(pid, SIGTERM)
        _ = waitFor(pid)
    }
}
