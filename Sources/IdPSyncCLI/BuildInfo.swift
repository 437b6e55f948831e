/// What `idp-sync --version` prints, and the version the journal's `run-started` records carry.
///
/// The version's one source of truth is the file `VERSION` at the top of the repository. This file
/// repeats it (a test fails when the two differ) and names no commit: that is a development build.
/// `scripts/release` rewrites this file from `VERSION` and `git rev-parse --short HEAD` right before
/// its build and puts the committed copy back afterwards, so a release binary names its commit.
enum BuildInfo {
    static let version = "1.2.0"
    static let commit = "unknown"
}
