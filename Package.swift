// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "idp-sync",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "idp-sync", targets: ["idp-sync"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C system modules: each has exactly one importer.
        .systemLibrary(
            name: "CLDAP", pkgConfig: "ldap",
            providers: [.apt(["libldap-dev"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),

        // System calls Glibc's module lacks (fgetxattr for POSIX ACLs); only SyncJournal imports it.
        .target(name: "CSysShims"),

        // Pure core: model, matching, planner, brakes, plan rendering. Standard library only.
        .target(name: "SyncCore"),
        // The run itself and its ports (DirectorySource, Gateway, JournalStore).
        .target(
            name: "SyncEngine",
            dependencies: [
                "SyncCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(name: "CurlHTTP", dependencies: ["CCurl"]),
        .target(
            name: "LDAPDirectory",
            dependencies: ["SyncEngine", "SyncCore", "CLDAP", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "KongGateway",
            dependencies: ["SyncEngine", "SyncCore", "CurlHTTP", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "SCIMDirectory",
            dependencies: ["SyncEngine", "SyncCore", "CurlHTTP", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "SyncJournal",
            dependencies: ["SyncEngine", "SyncCore", "CSysShims", .product(name: "Crypto", package: "swift-crypto")]),
        // The config holds each adapter's own settings type (a key is declared once); adapters never
        // import SyncConfig.
        .target(name: "SyncConfig", dependencies: ["SyncCore", "LDAPDirectory", "SCIMDirectory", "KongGateway", "Yams"]),
        .target(
            name: "IdPSyncCLI",
            dependencies: [
                "SyncConfig", "LDAPDirectory", "SCIMDirectory", "KongGateway", "SyncJournal", "SyncEngine", "SyncCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(name: "idp-sync", dependencies: ["IdPSyncCLI"]),
        // In-memory twins of the ports for engine tests; never linked into the executable.
        .target(name: "SyncTesting", dependencies: ["SyncEngine", "SyncCore"]),
        // Benchmark of the pure planner (`swift run -c release idp-sync-bench`); not shipped.
        .executableTarget(name: "idp-sync-bench", dependencies: ["SyncCore"]),

        .testTarget(name: "SyncCoreTests", dependencies: ["SyncCore", "SyncEngine"]),
        .testTarget(
            name: "SyncEngineTests",
            dependencies: ["SyncTesting", "SyncEngine", "SyncCore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "CommandTests",
            dependencies: [
                "IdPSyncCLI", "SyncTesting", "SyncEngine", "SyncCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "SyncJournalTests", dependencies: ["SyncJournal", "SyncEngine", "SyncCore"]),
        .testTarget(
            name: "SyncConfigTests", dependencies: ["SyncConfig", "SyncCore", "LDAPDirectory", "SCIMDirectory", "KongGateway"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "LDAPDirectory", "SCIMDirectory", "KongGateway", "CurlHTTP", "SyncJournal", "SyncEngine", "SyncCore", "SyncConfig",
                "idp-sync",
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
