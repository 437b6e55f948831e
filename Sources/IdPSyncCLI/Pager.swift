#if canImport(Glibc)
// For C's `stdout` stream (a mutable global): only this process's main thread writes it.
@preconcurrency import Glibc
#endif

/// Standard output through a pager, as journalctl does it: `$PAGER`, else `less`, with `LESS=FRSX`
/// when `LESS` is unset (quit when the text fits one screen, keep colours and the screen). Started
/// only when standard output is a terminal; when it cannot be started, output goes straight out.
final class Pager {
    private let pid: pid_t

    private init(pid: pid_t) { self.pid = pid }

    /// Starts the pager and points standard output at it; nil when stdout is no terminal, `PAGER`
    /// is empty or `cat`, or the pager cannot be started (then nothing has changed).
    static func start(environment: [String: String]) -> Pager? {
        guard isatty(1) == 1, let argv = command(pager: environment["PAGER"]) else { return nil }
        var env = environment
        if env["LESS"] == nil { env["LESS"] = "FRSX" }
        // The text is UTF-8 (the run headers' rules too), whatever the locale says.
        if env["LESSCHARSET"] == nil { env["LESSCHARSET"] = "utf-8" }

        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        // Neither end may leak into the pager (it would never see the end of its input).
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        // The pager starts with default signal handling and nothing blocked, whatever we ignore.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGPIPE, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        close(ends[0])
        guard rc == 0 else {
            close(ends[1])
            return nil
        }
        fflush(stdout)
        dup2(ends[1], 1)
        close(ends[1])
        // Quitting the pager early must end the output quietly (a write error, not SIGPIPE), and
        // Ctrl-C belongs to the pager: we wait for it, so the shell gets the terminal back last.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        return Pager(pid: pid)
    }

    /// The pager's argv: `$PAGER` split at blanks, or run by `/bin/sh -c` when it holds quotes or
    /// other shell syntax; `less` when unset; nil (no pager) when empty or `cat`.
    static func command(pager: String?) -> [String]? {
        guard let pager else { return ["less"] }
        let words = pager.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard !words.isEmpty, words != ["cat"] else { return nil }
        if pager.contains(where: { "'\"\\$`|&;<>(){}*?~#=\n".contains($0) }) { return ["/bin/sh", "-c", pager] }
        return words
    }

    /// Whether writing to standard output has failed (the pager was quit): stop producing output.
    static var outputClosed: Bool { ferror(stdout) != 0 }

    /// Flushes the rest, closes the pager's input so it sees the end, and waits until it exits.
    func finish() {
        fflush(stdout)
        let null = open("/dev/null", O_WRONLY)
        if null >= 0 {
            dup2(null, 1)
            close(null)
        } else {
            close(1)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        signal(SIGINT, SIG_DFL)
    }
}
