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
    public var readFile: (String) -> String?
    /// False for commands that only read the journal: secret keys are then neither expanded nor read,
    /// so `journal` works without `$CREDENTIALS_DIRECTORY` or read access to the credentials.
    public var readSecrets: Bool

    public init(
        environment: [String: String], readFile: @escaping (String) -> String? = ConfigLoader.readTextFile,
        readSecrets: Bool = true
    ) {
        self.environment = environment
        self.readFile = readFile
        self.readSecrets = readSecrets
    }

    public static func readTextFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(validating: bytes, as: UTF8.self)
    }

    public func load(path: String) throws -> SyncConfiguration {
        guard let text = readFile(path) else {
            throw ConfigError(
                file: path, diagnostics: [ConfigDiagnostic(path: "", message: "cannot read the file (missing or not UTF-8)")])
        }
        return try parse(text, file: path)
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

    mutating func duration(_ map: [String: Node], _ key: String, _ path: String, default value: Int64) -> Int64 {
        guard let text = string(map, key, path) else { return value }
        guard let seconds = TimeFormat.parseDuration(text) else {
            problem(join(path, key), "'\(text)' is not a duration; use forms like 90s, 15m, 24h, 7d")
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
    mutating func secret(_ map: [String: Node], _ key: String, _ path: String) -> String? {
        guard loader.readSecrets else { return nil }
        let inline = string(map, key, path)
        let file = string(map, key + "_file", path)
        if inline != nil && file != nil {
            problem(join(path, key + "_file"), "give either \(key) or \(key)_file, not both")
            return nil
        }
        if let file {
            guard let text = loader.readFile(file) else {
                problem(join(path, key + "_file"), "cannot read \(file)")
                return nil
            }
            var value = Substring(text)
            while value.last == "\n" || value.last == "\r" { value.removeLast() }
            return String(value)
        }
        return inline
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
