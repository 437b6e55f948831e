#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSysShims

/// Files in a directory that another user might share with us, opened the careful way.
///
/// Run as root with a journal or metrics directory that someone else can write, a planted symlink
/// or hard link at a fixed name would make a run overwrite, truncate, append to or chmod any file.
/// So: the directory must be writable only by root, our own uid and groups we are in (POSIX ACLs
/// included), unless it is sticky; every name is opened relative to the directory's descriptor with
/// `O_NOFOLLOW`; a file we write must be a regular file with one link, owned by root or us; temp
/// files get random names and `O_EXCL`.
public final class SafeDirectory: @unchecked Sendable {
    public let path: String
    let fd: Int32

    /// Opens `path` after checking who can write it. `role` names it in errors ("journal directory").
    public init(_ path: String, role: String) throws {
        self.path = path.isEmpty ? "." : path
        let fd = Glibc.open(self.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FileSafetyError("cannot open the \(role) \(self.path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        if let problem = Self.writableByOthers(fd) {
            close(fd)
            throw FileSafetyError(
                "the \(role) \(self.path) \(problem); make it writable only by root and the user idp-sync runs as, or set the sticky bit (chmod +t)"
            )
        }
    }

    deinit { close(fd) }

    /// The directory and last component of `path` (`a/b/c` → `a/b`, `c`; `c` → `.`, `c`).
    public static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    /// Opens `name` in this directory without following a symlink. With `O_CREAT` the new file gets
    /// `mode`; any file opened for writing must be a regular file with one link owned by root or us.
    public func open(_ name: String, _ flags: Int32, mode: mode_t = 0o640) throws -> Int32 {
        let fd = openat(self.fd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP {
                throw FileSafetyError("\(path)/\(name) is a symlink; idp-sync never opens its files through one")
            }
            throw FileSafetyError("cannot open \(path)/\(name): \(String(cString: strerror(code)))", errno: code)
        }
        if let problem = Self.unsafeFile(fd, writing: flags & O_ACCMODE != O_RDONLY) {
            close(fd)
            throw FileSafetyError("\(path)/\(name) \(problem); refusing to use it")
        }
        return fd
    }

    /// True when `name` exists in this directory (a symlink counts as existing).
    public func exists(_ name: String) -> Bool {
        var info = stat()
        return fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Writes `bytes` to a temp file with a random name (`O_EXCL`), then renames it over `name`, so a
    /// reader sees the old or the new content, never a part. Nothing is left behind on failure.
    public func replace(_ name: String, with bytes: [UInt8], mode: mode_t, sync: Bool) throws {
        let tmp = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16)).tmp"
        let tfd = try open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        var ok = fchmod(tfd, mode) == 0
        var reason = ok ? "" : String(cString: strerror(errno))
        if ok {
            do {
                try writeAll(tfd, bytes)
                if sync && fsync(tfd) != 0 {
                    ok = false
                    reason = "fsync: " + String(cString: strerror(errno))
                }
            } catch {
                ok = false
                reason = "\(error)"
            }
        }
        close(tfd)
        if ok && renameat(fd, tmp, fd, name) != 0 {
            ok = false
            reason = "rename: " + String(cString: strerror(errno))
        }
        if !ok {
            unlinkat(fd, tmp, 0)
            throw FileSafetyError("cannot write \(path)/\(name): \(reason)")
        }
    }

    /// Reads `name` (no symlink, regular file) up to `limit` bytes; nil when it does not exist.
    public func read(_ name: String, limit: Int) throws -> [UInt8]? {
        let rfd: Int32
        do {
            rfd = try open(name, O_RDONLY | O_NONBLOCK)
        } catch let error as FileSafetyError where error.errno == ENOENT {
            return nil
        }
        defer { close(rfd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = Glibc.read(rfd, &buffer, min(buffer.count, limit - out.count))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    /// Why a file is not safe to use: not regular, more than one link (a planted hard link), or
    /// owned by someone else. Nil when it is fine.
    static func unsafeFile(_ fd: Int32, writing: Bool) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "cannot be examined" }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return "is not a regular file" }
        guard writing else { return nil }
        if info.st_nlink > 1 { return "has \(info.st_nlink) hard links" }
        if info.st_uid != 0 && info.st_uid != geteuid() { return "is owned by uid \(info.st_uid), not by root or us" }
        return nil
    }

    /// Who other than root, us and our groups can write the directory, or nil. Sticky directories
    /// are accepted: there nobody can rename or delete our files, and our opens never follow links.
    static func writableByOthers(_ fd: Int32) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "cannot be examined" }
        if info.st_mode & S_ISVTX != 0 { return nil }
        let me = geteuid()
        let groups = ourGroups()
        func trustedUser(_ uid: uid_t) -> Bool { uid == 0 || uid == me }
        if !trustedUser(info.st_uid) { return "belongs to uid \(info.st_uid), who can always write it" }
        if info.st_mode & S_IWOTH != 0 { return "is writable by everyone (mode \(String(info.st_mode & 0o7777, radix: 8)))" }
        let acl = posixACL(fd)
        let mask = acl?.first { $0.tag == ACLEntry.mask }?.permissions ?? 0o7
        let groupWrite: Bool
        if let acl {
            groupWrite = acl.contains { $0.tag == ACLEntry.groupObject && $0.permissions & mask & 0o2 != 0 }
        } else {
            groupWrite = info.st_mode & S_IWGRP != 0
        }
        if groupWrite && !groups.contains(info.st_gid) {
            return "is writable by group \(info.st_gid), which we are not in"
        }
        for entry in acl ?? [] where entry.permissions & mask & 0o2 != 0 {
            if entry.tag == ACLEntry.user && !trustedUser(entry.id) {
                return "is writable by uid \(entry.id) through a POSIX ACL"
            }
            if entry.tag == ACLEntry.group && !groups.contains(entry.id) {
                return "is writable by group \(entry.id) through a POSIX ACL, which we are not in"
            }
        }
        return nil
    }

    static func ourGroups() -> Set<gid_t> {
        var result: Set<gid_t> = [getegid()]
        let n = getgroups(0, nil)
        if n > 0 {
            var list = [gid_t](repeating: 0, count: Int(n))
            let got = getgroups(n, &list)
            if got > 0 { result.formUnion(list.prefix(Int(got))) }
        }
        return result
    }

    struct ACLEntry {
        static let user: UInt16 = 0x02
        static let groupObject: UInt16 = 0x04
        static let group: UInt16 = 0x08
        static let mask: UInt16 = 0x10
        var tag: UInt16
        var permissions: UInt16
        var id: UInt32
    }

    /// The directory's access ACL (`system.posix_acl_access`: a little-endian u32 version 2, then
    /// entries of u16 tag, u16 permissions, u32 id), or nil when it has none.
    static func posixACL(_ fd: Int32) -> [ACLEntry]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = idpsync_fgetxattr(fd, "system.posix_acl_access", &buffer, UInt(buffer.count))
        guard n >= 4 else { return nil }
        var entries: [ACLEntry] = []
        var i = 4
        func u16(_ at: Int) -> UInt16 { UInt16(buffer[at]) | UInt16(buffer[at + 1]) << 8 }
        while i + 8 <= Int(n) {
            let id = UInt32(u16(i + 4)) | UInt32(u16(i + 6)) << 16
            entries.append(ACLEntry(tag: u16(i), permissions: u16(i + 2), id: id))
            i += 8
        }
        return entries
    }
}

/// Writes every byte, retrying on EINTR and short writes: the one write loop (journal, head, metrics,
/// and the CLI's standard error).
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FileSafetyError(String(cString: strerror(errno)), errno: errno)
        }
        written += n
    }
}

/// A file or directory that is not safe to use, or could not be written; the text says which and why.
public struct FileSafetyError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var errno: Int32
    public init(_ description: String, errno: Int32 = 0) {
        self.description = description
        self.errno = errno
    }
}
