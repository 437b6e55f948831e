#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` with SIGPIPE blocked on the calling thread, then takes a SIGPIPE that became
/// pending meanwhile and restores the mask.
///
/// libldap writes with plain `write()` (no MSG_NOSIGNAL): an unbind, an abandon or the next
/// request on a connection the server (or a proxy) reset raises SIGPIPE, whose default action
/// ends the whole process; libdispatch leaves it unblocked on its worker threads. Blocked, the
/// write fails with EPIPE and the feed treats it as the dropped connection it is. Thread-local:
/// the process's signal dispositions stay as the executable set them.
func withSIGPIPEBlocked<T>(_ body: () throws -> T) rethrows -> T {
    var pipe = sigset_t()
    sigemptyset(&pipe)
    sigaddset(&pipe, SIGPIPE)
    var previous = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipe, &previous)
    defer {
        var pending = sigset_t()
        sigpending(&pending)
        if sigismember(&pending, SIGPIPE) == 1 && sigismember(&previous, SIGPIPE) == 0 {
            var now = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&pipe, nil, &now)
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
    }
    return try body()
}
