import Foundation
import LDAPDirectory
import Logging
import SyncCore
import SyncEngine
import Testing

/// Samba's AD DC on 127.0.0.1:389/636 (`Fixtures/ad/samba-ad-fixture`): one instance at a time.
final class SambaAD: @unchecked Sendable {
    let dir = TempDir()
    var env: [String: String] = [:]

    init(users: Int, disabledEvery: Int) throws {
        let r = try runProcess(
            Repo.fixture("ad/samba-ad-fixture"),
            ["start", "--dir", dir.path + "/ad", "--users", String(users), "--disabled-every", String(disabledEvery)])
        guard r.status == 0 else {
            stop()
            throw FixtureError(description: "samba-ad-fixture failed: \(r.stderr)")
        }
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { env[String(parts[0])] = String(parts[1]) }
        }
    }

    func stop() { _ = try? runProcess(Repo.fixture("ad/samba-ad-fixture"), ["stop", "--dir", dir.path + "/ad"]) }
    deinit { stop() }

    func source(bind: String, base: String? = nil, pageSize: Int = 500, id: String = "objectGUID") -> LDAPDirectorySource {
        LDAPDirectorySource(
            settings: LDAPSettings(
                url: env["AD_URL"]!, bindDN: bind, bindPassword: env["AD_PASSWORD"]!, baseDN: base ?? env["AD_BASE_DN"]!,
                filter: "(&(objectClass=user)(sAMAccountName=aduser*))", pageSize: pageSize, idAttribute: id,
                usernameAttribute: "sAMAccountName", timeoutSeconds: 10, caFile: env["AD_CA"]!),
            logger: Logger(label: "test"))
    }
}

@Suite("Active Directory: Samba AD DC", .serialized)
struct ActiveDirectoryTests {
    /// The standard GUID string of AD's 16 raw objectGUID bytes, as ldapsearch prints them in base64.
    func guid(fromBase64 text: String) -> String {
        let b = [UInt8](Data(base64Encoded: text)!)
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        var s = ""
        for (i, index) in order.enumerated() {
            if [4, 6, 8, 10].contains(i) { s += "-" }
            s += String(format: "%02x", b[index])
        }
        return s
    }

    @Test func objectGUIDsAMAccountNameAccountDisableAndPagingPastMaxPageSize() async throws {
        let ad = try await SambaAD.start(users: 1200, disabledEvery: 10)
        // Binds as user@realm and as a DN; pages of 500 and of 2000 (AD caps pages at MaxPageSize 1000).
        let byUPN = try await ad.source(bind: ad.env["AD_BIND_UPN"]!).snapshot()
        #expect(byUPN.users.count == 1200)
        #expect(byUPN.users.filter { $0.state == .deactivated }.count == 120)
        #expect(byUPN.users.first { $0.username == "aduser0010" }?.deactivationReason == "userAccountControl ACCOUNTDISABLE")
        #expect(byUPN.users.allSatisfy { MatchKey.isUUID($0.id.rawValue) })
        let bigPages = try await ad.source(bind: ad.env["AD_BIND_DN"]!, pageSize: 2000).snapshot()
        #expect(Set(bigPages.users.map(\.id)) == Set(byUPN.users.map(\.id)))

        // The GUID string equals what ldapsearch's raw bytes give in the standard mixed-endian form.
        let raw = try runProcess(
            "/usr/bin/ldapsearch",
            ["-x", "-H", ad.env["AD_URL"]!, "-D", ad.env["AD_BIND_UPN"]!, "-w", ad.env["AD_PASSWORD"]!, "-b",
             ad.env["AD_BASE_DN"]!, "-LLL", "(sAMAccountName=aduser0001)", "objectGUID"],
            environment: ["LDAPTLS_CACERT": ad.env["AD_CA"]!])
        let line = try #require(raw.stdout.split(separator: "\n").first { $0.hasPrefix("objectGUID:: ") })
        let expected = guid(fromBase64: String(line.dropFirst("objectGUID:: ".count)))
        #expect(byUPN.users.first { $0.username == "aduser0001" }?.id.rawValue == expected)

        // A search at the domain root meets continuation references (Configuration, DNS zones): refused.
        do {
            _ = try await ad.source(bind: ad.env["AD_BIND_UPN"]!, base: "DC=example,DC=test").snapshot()
            Issue.record("continuation references were ignored")
        } catch let error as SourceError {
            #expect(error.description.contains("continuation reference"))
        }

        // Full syncs to Kong: by objectGUID (custom_id) and by sAMAccountName (username, any case).
        let users = byUPN.users.sorted { ($0.username ?? "") < ($1.username ?? "") }
        for rule in ["guid", "sam"] {
            let kong = try KongServer()
            var consumers: [JSONValue] = users.prefix(40).map { user in
                rule == "guid"
                    ? ["username": .string("c-\(user.username!)"), "custom_id": .string(user.id.rawValue.uppercased()), "tags": ["idp-managed"]]
                    : ["username": .string(user.username!.uppercased()), "tags": ["idp-managed"]]
            }
            consumers.append(
                rule == "guid"
                    ? ["username": "gone", "custom_id": "00000000-0000-0000-0000-000000000001", "tags": ["idp-managed"]]
                    : ["username": "ADUSER9999", "tags": ["idp-managed"]])
            try await kong.seed(["consumers": .array(consumers)])
            let dir = TempDir()
            _ = dir.write("pw", ad.env["AD_PASSWORD"]! + "\n")
            let match = rule == "guid" ? "{ consumer: custom_id, user: id }" : "{ consumer: username, user: username }"
            let config = dir.write(
                "config.yaml",
                """
                version: 1
                source:
                  type: ldap
                  url: \(ad.env["AD_URL"]!)
                  ca_file: \(ad.env["AD_CA"]!)
                  bind_dn: \(ad.env["AD_BIND_UPN"]!)
                  bind_password_file: \(dir.path)/pw
                  base_dn: \(ad.env["AD_BASE_DN"]!)
                  filter: (&(objectClass=user)(sAMAccountName=aduser*))
                  id_attribute: objectGUID
                  username_attribute: sAMAccountName
                gateways:
                  - name: ad
                    admin_url: \(kong.url)
                    select_tags: [idp-managed]
                    match: \(match)
                policy:
                  max_disable: 10
                  max_disable_percent: 20
                journal:
                  path: \(dir.path)/journal.jsonl
                """)
            let r = try runProcess(Repo.binary, ["sync", "--config", config, "--output", "json"])
            #expect(r.status == 0, "\(rule): \(r.stderr)")
            let report = try JSONParser.parse(r.stdout)
            #expect(report["counts"]?["linked"] == .int(36), "\(rule)")
            #expect(report["counts"]?["deactivated"] == .int(4), "\(rule)")
            #expect(report["counts"]?["missing"] == .int(1), "\(rule)")
            #expect(report["counts"]?["disable"] == .int(4), "\(rule)")
        }
    }
}
