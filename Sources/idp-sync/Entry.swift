import IdPSyncCLI

/// The executable: everything else lives in IdPSyncCLI.
@main
enum Entry {
    static func main() async {
        await IdPSync.main()
    }
}
