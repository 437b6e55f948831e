import SyncCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Reads and validates a configuration file, collecting every problem with its key path.
public struct ConfigLoader {
    /// Environment for `${VAR}`; injectable for tests.
    public var environment: [String: String]
    /// Reads `*_file` secrets; injectable for tests.
    public var readFile: (String) -> Result<String, ReadProblem>
    /// False for commands that only read the journal: secret keys are then neither expanded nor read,
    /// so `journal` works without `$CREDENTIALS_DIRECTORY` or read access to the credentials.
    public var readSecrets: Bool

    public init(
        environment: [String: String],
        readFile: @escaping (String) -> Result<String, ReadProblem> = { ConfigLoader.readText($0, limit: 65536) },
        readSecrets: Bool = true
    ) {
        self.environment = environment
        self.readFile = readFile
        self.readSecrets = readSecrets
    }

    /// Why a file could not be read as text.
    public enum ReadProblem: Error, CustomStringConvertible, Sendable {
        case cannotOpen(String)
        case notRegular
        case tooLarge(Int)
        case notUTF8

        public var description: String {
            switch self {
            case .cannotOpen(let reason): return "cannot open it: \(reason)"
            case .notRegular: return "is not a regular file (a directory or a device?)"
            case .tooLarge(let limit): return "is larger than \(limit / 1024) KiB"
            case .notUTF8: return "is not UTF-8 text"
            }
        }
    }

    /// Reads a regular file of at most `limit` bytes as UTF-8. Symlinks are followed (systemd
    /// credentials and Kubernetes secret volumes are symlinks); directories, devices, FIFOs and
    /// files larger than the limit are refused, so a read is always bounded.
    public static func readText(_ path: String, limit: Int = 1 << 20) -> Result<String, ReadProblem> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return .failure(.cannotOpen(String(cString: strerror(errno)))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .failure(.notRegular) }
        guard info.st_size <= limit else { return .failure(.tooLarge(limit)) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(.cannotOpen(String(cString: strerror(errno)))) }
            if n == 0 { break }
            guard bytes.count + n <= limit else { return .failure(.tooLarge(limit)) }
            bytes += buffer[0..<n]
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(.notUTF8) }
        return .success(text)
    }

    public func load(path: String) throws -> SyncConfiguration {
        try loadWithBytes(path: path).config
    }

    /// Reads the file once and returns the configuration with the exact bytes parsed (for
    /// `run-started`'s `config_sha256`).
    public func loadWithBytes(path: String) throws -> (config: SyncConfiguration, bytes: [UInt8]) {
        switch Self.readText(path) {
        case .success(let text): return (try parse(text, file: path), Array(text.utf8))
        case .failure(let problem):
            throw ConfigError(file: path, diagnostics: [ConfigDiagnostic(path: "", message: "the file \(problem)")])
        }
    }

    /// Yams' message without its "Context:" excerpt, which quotes the file (and could quote a secret).
    static func summary(of error: Error) -> String {
        let text = "\(error)"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let first = lines.first.map(String.init) ?? text
        if let position = lines.last.flatMap({ $0.range(of: " in line ") != nil ? String($0) : nil }),
            let range = position.range(of: " in line ")
        {
            return first + " (line " + position[range.upperBound...] + ")"
        }
        return first
    }

    public func parse(_ text: String, file: String) throws -> SyncConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(file: file, diagnostics: [ConfigDiagnostic(path: "", message: "not valid YAML: \(Self.summary(of: error))")])
        }
        var reader = Reader(loader: self)
        let config = reader.configuration(root)
        guard reader.diagnostics.isEmpty, let config else {
            throw ConfigError(file: file, diagnostics: reader.diagnostics)
        }
        return config
    }
}

/// Walks the YAML tree, recording problems instead of stopping at the first.
struct Reader {
    let loader: ConfigLoader
    var diagnostics: [ConfigDiagnostic] = []

    init(loader: ConfigLoader) { self.loader = loader }

    mutating func problem(_ path: String, _ message: String) {
        diagnostics.append(ConfigDiagnostic(path: path, message: message))
    }

    /// The mapping at `path`, with unknown keys reported.
    mutating func mapping(_ node: Node?, _ path: String, allowed: [String]) -> [String: Node]? {
        guard let node else { return nil }
        guard case .mapping(let mapping) = node else {
            problem(path, "must be a mapping")
            return nil
        }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                problem(path, "keys must be strings")
                continue
            }
            if !allowed.contains(name) {
                let hint = allowed.min { editDistance($0, name) < editDistance($1, name) }
                    .flatMap { editDistance($0, name) <= 2 ? $0 : nil }
                problem(join(path, name), "unknown key" + (hint.map { " (did you mean \($0)?)" } ?? ""))
                continue
            }
            result[name] = value
        }
        return result
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A scalar string with `${VAR}` expanded; unset variables are reported.
    mutating func string(_ map: [String: Node], _ key: String, _ path: String, required: Bool = false) -> String? {
        let full = join(path, key)
        guard let node = map[key], !Reader.isNull(node) else {
            if required { problem(full, "is required") }
            return nil
        }
        guard case .scalar(let scalar) = node else {
            problem(full, "must be a string")
            return nil
        }
        let value = expand(scalar.string, full)
        if required && value?.isEmpty == true { problem(full, "must not be empty") }
        return value
    }

    mutating func expand(_ text: String, _ path: String) -> String? {
        var out = ""
        var rest = Substring(text)
        var ok = true
        while let start = rest.range(of: "${") {
            out += rest[rest.startIndex..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                problem(path, "unterminated ${ in value")
                return nil
            }
            let name = String(rest[start.upperBound..<end])
            if let value = loader.environment[name] {
                out += value
            } else {
                problem(path, "environment variable \(name) is not set")
                ok = false
            }
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return ok ? out : nil
    }

    mutating func int(_ map: [String: Node], _ key: String, _ path: String, default value: Int, range: ClosedRange<Int>)
        -> Int
    {
        let full = join(path, key)
        guard let node = map[key] else { return value }
        guard let n = node.int, node.scalar?.style == .plain else {
            problem(full, "must be an integer")
            return value
        }
        guard range.contains(n) else {
            problem(full, "must be between \(range.lowerBound) and \(range.upperBound)")
            return value
        }
        return n
    }

    mutating func double(_ map: [String: Node], _ key: String, _ path: String, default value: Double) -> Double {
        let full = join(path, key)
        guard let node = map[key] else { return value }
        guard let n = node.float ?? node.int.map(Double.init), node.scalar?.style == .plain, n >= 0, n <= 100 else {
            problem(full, "must be a number from 0 to 100")
            return value
        }
        return n
    }

    mutating func bool(_ map: [String: Node], _ key: String, _ path: String) -> Bool {
        guard let node = map[key] else { return false }
        guard let b = node.bool else {
            problem(join(path, key), "must be true or false")
            return false
        }
        return b
    }

    /// A duration within `range` seconds; larger values are refused rather than wrapped.
    mutating func duration(
        _ map: [String: Node], _ key: String, _ path: String, default value: Int64, range: ClosedRange<Int64>
    ) -> Int64 {
        guard let text = string(map, key, path) else { return value }
        guard let seconds = TimeFormat.parseDuration(text) else {
            problem(join(path, key), "'\(text)' is not a duration; use forms like 90s, 15m, 24h, 7d")
            return value
        }
        guard range.contains(seconds) else {
            problem(
                join(path, key),
                "'\(text)' must be from \(TimeFormat.duration(range.lowerBound)) to \(TimeFormat.duration(range.upperBound))")
            return value
        }
        return seconds
    }

    mutating func stringList(_ map: [String: Node], _ key: String, _ path: String) -> [String]? {
        let full = join(path, key)
        guard let node = map[key] else { return nil }
        guard case .sequence(let sequence) = node else {
            problem(full, "must be a list")
            return nil
        }
        var items: [String] = []
        for (i, item) in sequence.enumerated() {
            guard case .scalar(let scalar) = item else {
                problem("\(full)[\(i)]", "must be a string")
                continue
            }
            if let value = expand(scalar.string, "\(full)[\(i)]") { items.append(value) }
        }
        return items
    }

    /// A secret given inline (`key`, usually `${VAR}`) or as a file (`key_file`), never both.
    /// One trailing line break (LF or CRLF) of a file is dropped; an empty secret is refused, and so
    /// is any control character in a secret sent in an HTTP header (`forHeader`), which could
    /// otherwise inject a header of its own.
    mutating func secret(_ map: [String: Node], _ key: String, _ path: String, forHeader: Bool = false) -> String? {
        guard loader.readSecrets else { return nil }
        let inline = string(map, key, path)
        let file = string(map, key + "_file", path)
        if inline != nil && file != nil {
            problem(join(path, key + "_file"), "give either \(key) or \(key)_file, not both")
            return nil
        }
        var value: String
        let where_: String
        if let file {
            where_ = join(path, key + "_file")
            switch loader.readFile(file) {
            case .failure(let problem):
                self.problem(where_, "\(file) \(problem)")
                return nil
            case .success(let text):
                var scalars = Substring(text).unicodeScalars
                while let last = scalars.last, last == "\n" || last == "\r" { scalars.removeLast() }
                value = String(scalars)
            }
        } else if let inline {
            where_ = join(path, key)
            value = inline
        } else {
            return nil
        }
        if value.isEmpty {
            problem(where_, file != nil ? "\(file!) is empty" : "is empty")
            return nil
        }
        if forHeader, value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            problem(where_, "contains a control character (a line break inside the secret?); it would corrupt the HTTP request")
            return nil
        }
        return value
    }
}

/// Levenshtein distance, for "did you mean" hints on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased()), b = Array(b.lowercased())
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}
