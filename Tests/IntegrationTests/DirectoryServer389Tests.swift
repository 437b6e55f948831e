import Foundation
import LDAPDirectory
import Logging
import SyncCore
import SyncEngine
import Testing

@Suite("389 Directory Server (dscreate, no systemd)")
struct DirectoryServer389Tests {
    @Test func nsAccountLockAndNsUniqueIdOrEntryUUID() async throws {
        let dir = TempDir()
        let start = try runProcess(
            Repo.fixture("389ds/ds-fixture"), ["start", "--dir", dir.path + "/ds", "--users", "120", "--locked-every", "10"])
        defer { _ = try? runProcess(Repo.fixture("389ds/ds-fixture"), ["stop", "--dir", dir.path + "/ds"]) }
        #expect(start.status == 0, "\(start.stderr)")
        var env: [String: String] = [:]
        for line in start.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { env[String(parts[0])] = String(parts[1]) }
        }
        func source(id: String) -> LDAPDirectorySource {
            LDAPDirectorySource(
                settings: LDAPSettings(
                    url: env["DS_URL"]!, bindDN: env["DS_BIND_DN"]!, bindPassword: env["DS_PASSWORD"]!,
                    baseDN: env["DS_BASE_DN"]!, filter: "(&(objectClass=inetOrgPerson)(uid=dsuser*))", pageSize: 50,
                    idAttribute: id, timeoutSeconds: 5),
                logger: Logger(label: "test"))
        }
        let byUniqueID = try await source(id: "nsUniqueId").snapshot()
        #expect(byUniqueID.users.count == 120)
        #expect(byUniqueID.users.filter { $0.state == .deactivated }.count == 12)
        #expect(byUniqueID.users.first { $0.username == "dsuser0010" }?.deactivationReason == "nsAccountLock")
        #expect(byUniqueID.users.allSatisfy { $0.id.rawValue.split(separator: "-").count == 4 })
        let byEntryUUID = try await source(id: "entryUUID").snapshot()
        #expect(byEntryUUID.users.count == 120)
        #expect(byEntryUUID.users.allSatisfy { MatchKey.isUUID($0.id.rawValue) })

        // A full sync by nsUniqueId.
        let kong = try KongServer()
        let consumers: [JSONValue] = byUniqueID.users.prefix(20).map {
            ["username": .string($0.username!), "custom_id": .string($0.id.rawValue), "tags": ["idp-managed"]]
        }
        try await kong.seed(["consumers": .array(consumers)])
        let work = TempDir()
        _ = work.write("pw", env["DS_PASSWORD"]! + "\n")
        let config = work.write(
            "config.yaml",
            """
            version: 1
            source:
              type: ldap
              url: \(env["DS_URL"]!)
              bind_dn: \(env["DS_BIND_DN"]!)
              bind_password_file: \(work.path)/pw
              base_dn: \(env["DS_BASE_DN"]!)
              filter: (&(objectClass=inetOrgPerson)(uid=dsuser*))
              id_attribute: nsUniqueId
            gateways:
              - name: ds
                admin_url: \(kong.url)
                select_tags: [idp-managed]
            policy:
              max_disable_percent: 50
            journal:
              path: \(work.path)/journal.jsonl
            """)
        let r = try runProcess(Repo.binary, ["sync", "--config", config, "--output", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONParser.parse(r.stdout)
        let locked = byUniqueID.users.prefix(20).filter { $0.state == .deactivated }.count
        #expect(report["counts"]?["disable"] == .int(Int64(locked)))
        #expect(report["counts"]?["linked"] == .int(Int64(20 - locked)))
    }
}
