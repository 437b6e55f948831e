import SyncConfig
import SyncEngine

#if canImport(Glibc)
import Glibc
#endif

/// Writes the Prometheus textfile atomically: a temp file not ending in `.prom` in the same
/// directory, fsynced, mode 0644 (node_exporter runs as another user), then renamed over the target.
enum MetricsFile {
    static func write(_ text: String, to path: String) throws {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let tmp = (directory.isEmpty ? "." : directory) + "/.idp-sync-metrics.\(getpid()).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MetricsError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o644)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(tmp)
                throw MetricsError("cannot write \(tmp): \(reason)")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw MetricsError("cannot rename \(tmp) to \(path): \(reason)")
        }
    }

    /// Renders and writes the metrics of one run; failures are logged, never fatal.
    static func record(_ report: RunReport, config: SyncConfiguration, startedAt: Double) -> String? {
        guard let path = config.metricsTextfilePath else { return nil }
        let previous = ConfigLoader.readTextFile(path).flatMap {
            RunMetrics.value(of: "idp_sync_last_success_timestamp_seconds", in: $0)
        }
        let text = RunMetrics.render(
            report: report, startedAt: startedAt, finishedAt: Environment.now(), previousLastSuccess: previous)
        do {
            try write(text, to: path)
            return nil
        } catch {
            return "\(error)"
        }
    }
}

struct MetricsError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
