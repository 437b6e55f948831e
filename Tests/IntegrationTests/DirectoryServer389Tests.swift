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
        // dsuser0001…0020; the fixture locks every 10th user, so exactly dsuser0010 and dsuser0020.
        let names = (1...20).map { "dsuser" + String(repeating: "0", count: 4 - String($0).count) + String($0) }
        let consumers: [JSONValue] = try names.map { name in
            let user = try #require(byUniqueID.users.first { $0.username == name })
            return ["username": .string(name), "custom_id": .string(user.id.rawValue), "tags": ["idp-managed"]]
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
        #expect(report["counts"]?["disable"] == .int(2))
        #expect(report["counts"]?["linked"] == .int(18))
        let disabled = (report["actions"]?.arrayValue ?? []).filter { $0["action"] == "disable" }
            .compactMap { $0["consumer"]?["username"]?.stringValue }.sorted()
        #expect(disabled == ["dsuser0010", "dsuser0020"])
    }
}
