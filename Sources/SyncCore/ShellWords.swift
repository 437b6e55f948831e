/// Quoting for the commands idp-sync suggests, so each one pastes into a POSIX shell as printed.
public enum ShellWords {
    private static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,".unicodeScalars)

    public static func quote(_ word: String) -> String {
        if !word.isEmpty && word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        var quoted = "'"
        for c in word { quoted += c == "'" ? "'\\''" : String(c) }
        return quoted + "'"
    }

    /// `idp-sync <words>`, each word quoted as needed.
    public static func command(_ words: [String]) -> String { (["idp-sync"] + words.map(quote)).joined(separator: " ") }
}
