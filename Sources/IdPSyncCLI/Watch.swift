import ArgumentParser
import Logging
import SyncConfig
import SyncCore
import SyncEngine
import SyncJournal

#if canImport(Glibc)
import Glibc
#endif

/// `idp-sync watch`: revocation in seconds. A full reconciliation, then the directory's changes as
/// they happen (RFC 4533 on OpenLDAP and 389-ds), until SIGTERM. Holds the lock for the whole
/// session, so a timer run beside it fails (the units declare `Conflicts=`).
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow the directory's changes and act on them within seconds (until SIGTERM).",
        discussion: """
            Starts with a full reconciliation (as sync), then acts on each change for just the users it touches. \
            Grace periods come due on a tick (watch.tick); a full reconciliation runs every watch.resync_interval. \
            The brake is an hourly rate (watch.max_disable_per_hour): past it the watch exits 3. \
            Under systemd (Type=notify) it sends READY=1 after the first reconciliation and WATCHDOG=1 while it \
            consumes the feed. Needs an LDAP source whose server offers the Content Synchronization \
            Operation (RFC 4533); SCIM has no change feed.
            """)

    @OptionGroup var options: ConfigOptions

    @OptionGroup var logOptions: LogOptions

    func run() async throws {
        signal(SIGXFSZ, SIG_IGN)
        // libldap writes without MSG_NOSIGNAL: a connection the server reset must fail the read, not
        // kill the run between an intent and its outcome.
        signal(SIGPIPE, SIG_IGN)
        StopSignal.install()
        let startedAt = Environment.now()
        let logger = logOptions.logger()
        let path = options.path
        func fail(_ message: String, _ code: Int32 = 1) -> ExitCode {
            Console.error("error: \(message)\n")
            return ExitCode(code)
        }
        let config: SyncConfiguration
        let configBytes: [UInt8]
        do {
            (config, configBytes) = try RunSetup.readConfig(path)
        } catch {
            throw fail("\(error)")
        }
        guard let feed = LiveAdapters.feed(config, logger: logger) else {
            throw fail(
                "watch is not available with a \(config.source.type) source: it has no change feed; keep the timer (idp-sync sync) for it")
        }
        let session: RunSession
        do {
            session = try RunSetup.open(config, configBytes: configBytes, logger: logger)
        } catch {
            throw fail("\(error)")
        }
        let notify = SystemdNotify()
        let gateways = LiveAdapters.gateways(config, logger: logger)
        let current = CurrentConfig(config)
        let watch = WatchSession(
            feed: feed, sourceType: config.source.type, gateways: gateways, planner: LiveAdapters.planner(config),
            journal: session.journal, started: session.started, lastGoodUsers: session.lastGoodUsers,
            disabledByUs: session.disabledByUs, recentDisables: session.recentDisables,
            settings: WatchSettings(
                tickSeconds: config.watch.tickSeconds, resyncSeconds: config.watch.resyncSeconds,
                maxDisablePerHour: config.watch.maxDisablePerHour),
            hooks: WatchHooks(
                makeSource: {
                    // Each full reconciliation reads the file again, so rotated `*_file` secrets apply.
                    do {
                        current.set(try RunSetup.readConfig(path).0)
                    } catch {
                        logger.warning("the config could not be read again; the previous one is used", metadata: ["watch.error": "\(error)"])
                    }
                    return LiveAdapters.source(current.get(), logger: logger)
                },
                newRunID: { Sync.newRunID() }, notify: { notify.send($0) },
                status: { status in
                    guard let full = status.lastFull else { return }
                    if let problem = MetricsFile.recordWatch(full, status: status, config: config, startedAt: startedAt) {
                        logger.warning("metrics not written", metadata: ["metrics.error": "\(problem)"])
                    }
                }),
            logger: logger, clock: { Environment.now() }, shouldStop: { StopSignal.requested })
        let code = await watch.run()
        logger.info(
            "watch finished", metadata: ["sync.exit_code": .stringConvertible(Int(code.rawValue)), "journal.head": "\(session.journal.head)"])
        withExtendedLifetime(session) {}
        throw ExitCode(code.rawValue)
    }
}

/// The config as last read, shared with the watch's source factory.
final class CurrentConfig: @unchecked Sendable {
    private var value: SyncConfiguration
    private let lock = Lock()
    init(_ value: SyncConfiguration) { self.value = value }
    func get() -> SyncConfiguration { lock.withLock { value } }
    func set(_ new: SyncConfiguration) { lock.withLock { value = new } }
}
