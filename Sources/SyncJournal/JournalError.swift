/// Errors of the journal; each names the file and what to check.
public enum JournalError: Error, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case corrupt(path: String, line: Int, reason: String)
    case locked(path: String, pid: String)
    /// The journal does not end the way the last run left it, and it is not a crash leftover.
    case tampered(path: String, problem: String)
    /// Its directory or one of its files could be used by someone else (permissions, a symlink).
    case unsafe(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open journal \(path): \(reason)"
        case .cannotWrite(let path, let reason): return "cannot write journal \(path): \(reason)"
        case .corrupt(let path, let line, let reason):
            return "journal \(path) line \(line) does not chain: \(reason); run 'idp-sync journal verify' and keep the file as evidence"
        case .locked(let path, let pid):
            return "another idp-sync run (pid \(pid)) holds \(path); wait for it to finish"
        case .tampered(let path, let problem):
            return "journal \(path) was tampered with or damaged: \(problem). Nothing was written to any gateway. "
                + "Keep the file as evidence and inspect it with 'idp-sync journal verify --journal \(path)'; "
                + "once a person has decided, 'idp-sync journal acknowledge --journal \(path) --reason \"…\"' "
                + "keeps it under a new name and starts a new journal that records the decision"
        case .unsafe(let problem): return problem
        }
    }
}
