#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a file line by line in bounded memory, reporting whether each line ended with `\n`.
///
/// A line longer than `maxLine` is not kept: it comes back with `tooLong` set and its bytes cut,
/// so a crafted file (or `/dev/zero` behind a symlink) cannot make a reader grow without limit.
final class LineReader {
    /// Journal records are a few hundred bytes; a megabyte is far above any real one.
    static let defaultMaxLine = 1 << 20

    struct Line {
        /// The line without its newline (valid until the next call to `next()`).
        var bytes: UnsafeBufferPointer<UInt8>
        var terminated: Bool
        /// Byte offset of the line's start.
        var start: Int64
        /// The line was longer than the limit; `bytes` holds only its first part.
        var tooLong: Bool
    }

    private let fd: Int32
    private let ownsFD: Bool
    private let maxLine: Int
    private var chunk = [UInt8](repeating: 0, count: 65536)
    private var chunkStart = 0
    private var chunkEnd = 0
    /// The current line (at most `maxLine` bytes), in memory this reader owns.
    private let storage: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var eof = false
    /// Byte offset of the start of the next line.
    private(set) var offset: Int64 = 0

    /// Opens `path` for reading without following a symlink; it must be a regular file.
    convenience init?(path: String, offset: Int64 = 0, maxLine: Int = LineReader.defaultMaxLine) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            errno = EINVAL
            return nil
        }
        self.init(fd: fd, owns: true, offset: offset, maxLine: maxLine)
    }

    /// Reads from an open descriptor, from `offset` on (with `pread`, so the descriptor's own
    /// position does not matter).
    init(fd: Int32, owns: Bool, offset: Int64 = 0, maxLine: Int = LineReader.defaultMaxLine) {
        self.fd = fd
        self.ownsFD = owns
        self.maxLine = maxLine
        self.offset = offset
        self.readPosition = offset
        self.storage = .allocate(capacity: max(maxLine, 1))
    }

    private var readPosition: Int64

    deinit {
        storage.deallocate()
        if ownsFD { close(fd) }
    }

    private func fill() -> Bool {
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(readPosition)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                eof = true
                return false
            }
            readPosition += Int64(n)
            chunkStart = 0
            chunkEnd = n
            return true
        }
    }

    /// The bytes of the line that starts at `offset` (a second look at one line after a pass).
    func line(at offset: Int64) -> [UInt8]? {
        let again = LineReader(fd: fd, owns: false, offset: offset, maxLine: maxLine)
        // The line's bytes live in `again`'s storage: copy them while it is alive.
        return withExtendedLifetime(again) { again.next().map { Array($0.bytes) } }
    }

    /// `count` bytes from `offset` (a line found in an earlier pass); nil when the file is shorter.
    func bytes(at offset: Int64, count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return out
    }

    /// The next line, or nil at the end of the file.
    func next() -> Line? {
        count = 0
        var length: Int64 = 0
        var terminated = false
        while true {
            if chunkStart == chunkEnd {
                if eof || !fill() { break }
            }
            let i: Int = chunk.withUnsafeBufferPointer { buffer in
                guard let found = memchr(buffer.baseAddress! + chunkStart, 0x0A, chunkEnd - chunkStart) else { return chunkEnd }
                return UnsafeRawPointer(found).assumingMemoryBound(to: UInt8.self) - buffer.baseAddress!
            }
            let piece = i - chunkStart
            if count < maxLine {
                let keep = min(piece, maxLine - count)
                chunk.withUnsafeBufferPointer { source in
                    (storage + count).update(from: source.baseAddress! + chunkStart, count: keep)
                }
                count += keep
            }
            length += Int64(piece)
            if i < chunkEnd {
                terminated = true
                chunkStart = i + 1
                length += 1
                break
            }
            chunkStart = chunkEnd
        }
        guard length > 0 else { return nil }
        let start = offset
        offset += length
        let tooLong = length - (terminated ? 1 : 0) > Int64(maxLine)
        return Line(
            bytes: UnsafeBufferPointer(start: storage, count: count), terminated: terminated, start: start, tooLong: tooLong)
    }
}
