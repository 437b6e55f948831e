#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One real run at a time (docs/operations.md): an flock on `<journal>.lock` holding the holder's pid.
///
/// The file is never deleted; the kernel drops the lock when the process dies, so a killed run
/// never blocks the next one. It is opened without following a symlink, in a checked directory.
public final class JournalLock: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public convenience init(journalPath: String) throws {
        let (directory, _) = SafeDirectory.split(journalPath)
        try self.init(journalPath: journalPath, directory: try JournalFile.directory(directory))
    }

    init(journalPath: String, directory: SafeDirectory) throws {
        path = journalPath + ".lock"
        let fd: Int32
        do {
            fd = try directory.open(SafeDirectory.split(journalPath).name + ".lock", O_RDWR | O_CREAT, mode: 0o640)
        } catch {
            throw JournalError.unsafe("cannot take the lock: \(error)")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, 32, 0)
            close(fd)
            let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace : ""
            let pid = !text.isEmpty && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } ? text : "unknown"
            throw JournalError.locked(path: path, pid: pid)
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress!, text.count, 0) }
        self.fd = fd
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Where the lock stands, for `check-config --connect`.
    public enum Probe: Equatable, Sendable {
        /// No run holds it (or no run has created it yet).
        case free
        /// A live run or `watch` holds it.
        case held(pid: String)
    }

    /// Whether a run could take the lock now, without taking it or creating anything: the directory
    /// is checked like a run's (owner, mode, ACLs) and must be writable by this process.
    public static func probe(journalPath: String) throws -> Probe {
        let (path, name) = SafeDirectory.split(journalPath)
        let directory = try JournalFile.directory(path)
        guard faccessat(directory.fd, ".", W_OK, AT_EACCESS) == 0 else {
            throw JournalError.unsafe(
                "the journal directory \(directory.path) is not writable by uid \(geteuid()): \(String(cString: strerror(errno)))")
        }
        guard directory.exists(name + ".lock") else { return .free }
        let fd: Int32
        do {
            fd = try directory.open(name + ".lock", O_RDONLY)
        } catch {
            throw JournalError.unsafe("cannot open the lock: \(error)")
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) != 0 else {
            flock(fd, LOCK_UN)
            return .free
        }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buffer, 32, 0)
        let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace : ""
        return .held(pid: !text.isEmpty && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } ? text : "unknown")
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
