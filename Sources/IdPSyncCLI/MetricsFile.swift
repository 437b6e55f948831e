import SyncConfig
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// Writes the Prometheus textfile atomically: a temp file with a random name not ending in `.prom`,
/// created exclusively in the same directory, fsynced, mode 0644 (node_exporter runs as another
/// user), then renamed over the target. The directory is checked like the journal's (`SafeDirectory`):
/// nobody but root and us may write it unless it is sticky, and no name is opened through a symlink.
enum MetricsFile {
    static func directory(for path: String) throws -> (SafeDirectory, String) {
        let (directory, name) = SafeDirectory.split(path)
        do {
            return (try SafeDirectory(directory, role: "metrics directory"), name)
        } catch {
            throw MetricsError("\(error)")
        }
    }

    static func write(_ text: String, to path: String) throws {
        let (directory, name) = try directory(for: path)
        do {
            try directory.replace(name, with: Array(text.utf8), mode: 0o644, sync: true)
        } catch {
            throw MetricsError("\(error)")
        }
    }

    /// Renders and writes the metrics of one run; failures are logged, never fatal. The previous
    /// file is read (at most 1 MiB; its content is not trusted) for what a run carries forward:
    /// the last success and the `idp_sync_actions_total` counter.
    static func record(_ report: RunReport, config: SyncConfiguration, startedAt: Double) -> String? {
        guard let path = config.metricsTextfilePath else { return nil }
        do {
            let (directory, name) = try directory(for: path)
            let previous = (try? directory.read(name, limit: 1 << 20)).flatMap { $0 }.map {
                String(decoding: $0, as: UTF8.self)
            }
            let text = RunMetrics.render(
                report: report, gateways: config.gateways.map(\.name), startedAt: startedAt,
                finishedAt: Environment.now(), previous: previous)
            try directory.replace(name, with: Array(text.utf8), mode: 0o644, sync: true)
            return nil
        } catch {
            return "\(error)"
        }
    }
}

extension MetricsFile {
    /// `watch`'s textfile: its last full reconciliation's gauges, every report not counted yet, and
    /// the watch's own metrics (`RunMetrics.renderWatch`).
    static func recordWatch(_ full: RunReport, status: WatchStatus, config: SyncConfiguration, startedAt: Double) -> String? {
        guard let path = config.metricsTextfilePath else { return nil }
        do {
            let (directory, name) = try directory(for: path)
            let previous = (try? directory.read(name, limit: 1 << 20)).flatMap { $0 }.map {
                String(decoding: $0, as: UTF8.self)
            }
            let text = RunMetrics.renderWatch(
                full: full, uncounted: status.uncounted, status: status, gateways: config.gateways.map(\.name),
                startedAt: startedAt, finishedAt: Environment.now(), previous: previous)
            try directory.replace(name, with: Array(text.utf8), mode: 0o644, sync: true)
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
