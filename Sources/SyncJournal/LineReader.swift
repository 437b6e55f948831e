#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a file line by line with bounded memory (getline), reporting whether each line ended with `\n`.
final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>? = nil
    private var capacity = 0
    /// Byte offset of the start of the next line.
    private(set) var offset: Int64 = 0

    init?(path: String, offset: Int64 = 0) {
        guard let file = fopen(path, "r") else { return nil }
        self.file = file
        if offset > 0 {
            fseeko(file, off_t(offset), SEEK_SET)
            self.offset = offset
        }
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    /// The next line without its newline, whether it was terminated, and its starting offset.
    func next() -> (bytes: UnsafeBufferPointer<UInt8>, terminated: Bool, start: Int64)? {
        let n = getline(&buffer, &capacity, file)
        guard n > 0, let buffer else { return nil }
        let start = offset
        offset += Int64(n)
        let terminated = buffer[n - 1] == 0x0A
        let length = terminated ? n - 1 : n
        let bytes = UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self)
        return (UnsafeBufferPointer(start: bytes, count: length), terminated, start)
    }
}
