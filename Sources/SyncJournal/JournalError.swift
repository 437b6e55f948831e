/// Errors of the journal; each names the file and what to check.
public enum JournalError: Error, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case corrupt(path: String, line: Int, reason: String)
    case locked(path: String, pid: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open journal \(path): \(reason)"
        case .cannotWrite(let path, let reason): return "cannot write journal \(path): \(reason)"
        case .corrupt(let path, let line, let reason):
            return "journal \(path) line \(line) does not chain: \(reason); run 'idp-sync journal verify' and keep the file as evidence"
        case .locked(let path, let pid):
            return "another idp-sync run (pid \(pid)) holds \(path); wait for it to finish"
        }
    }
}
