import KongGateway
import LDAPDirectory
import SCIMDirectory
import SyncConfig
import SyncCore
import Testing

@Suite("Config: every problem at once, with key paths")
struct ConfigLoaderTests {
    let files = ["/run/creds/ldap": "s3cret-bind\n", "/run/creds/kong": "kong-token"]

    func loader(_ env: [String: String] = ["CREDENTIALS_DIRECTORY": "/run/creds"]) -> ConfigLoader {
        let files = self.files
        return ConfigLoader(
            environment: env, readFile: { files[$0].map { .success($0) } ?? .failure(.cannotOpen("no such file")) })
    }

    let good = """
        version: 1
        source:
          type: ldap
          url: ldap://127.0.0.1:3389
          bind_dn: cn=sync,ou=system,dc=example,dc=org
          bind_password_file: ${CREDENTIALS_DIRECTORY}/ldap
          base_dn: ou=people,dc=example,dc=org
          disabled_filter: (employeeType=left)
          timeout: 10s
        gateways:
          - name: prod
            type: kong
            admin_url: https://kong-admin.internal:8444
            token_file: ${CREDENTIALS_DIRECTORY}/kong
            select_tags: [idp-managed]
            match: { consumer: username, user: username }
        policy:
          grace_period: 7d
          on_missing: delete-keys
          max_disable_percent: 2.5
          protected: [svc-*, breakglass]
        journal:
          path: /var/lib/idp-sync/journal.jsonl
        """

    @Test func aGoodFileLoads() throws {
        let config = try loader().parse(good, file: "c.yaml")
        guard case .ldap(let ldap) = config.source else {
            Issue.record("not ldap")
            return
        }
        #expect(ldap.bindPassword == "s3cret-bind")
        #expect(ldap.timeoutSeconds == 10)
        #expect(ldap.pageSize == 500)
        guard case .kong(let kong, _) = config.gateways[0] else { return }
        #expect(kong.token == "kong-token")
        #expect(config.gateways[0].match == MatchRule(consumer: .username, user: .username))
        #expect(config.policy.gracePeriod == 7 * 86_400)
        #expect(config.policy.onMissing == .deleteKeys)
        #expect(config.policy.maxDisablePercent == 2.5)
        #expect(config.policy.protected == ["svc-*", "breakglass"])
    }

    @Test func allProblemsAreReportedTogetherWithPaths() {
        let bad = """
            version: 1
            source:
              type: ldap
              url: http://x
              bind_dn: cn=x
              bind_password: ${NOPE}
              bsae_dn: ou=people
            gateways:
              - name: prod
                admin_url: kong-admin:8001
                select_tags: [a, b, c, d, e, f]
                timeout: soon
            policy:
              on_missing: explode
              max_disable: many
            """
        do {
            _ = try loader().parse(bad, file: "bad.yaml")
            Issue.record("bad config accepted")
        } catch let error as ConfigError {
            let paths = Set(error.diagnostics.map(\.path))
            for expected in [
                "source.url", "source.bind_password", "source.bsae_dn", "source.base_dn", "gateways[0].admin_url",
                "gateways[0].select_tags", "gateways[0].timeout", "policy.on_missing", "policy.max_disable",
                "journal.path",
            ] {
                #expect(paths.contains(expected), "no diagnostic for \(expected): \(error)")
            }
            #expect(error.description.contains("did you mean base_dn"))
            #expect(error.description.contains("NOPE"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func cleartextSecretsToRemoteHostsAreRefusedUnlessAllowed() {
        let remote = good.replacingOccurrences(of: "ldap://127.0.0.1:3389", with: "ldap://ldap.example.org")
            .replacingOccurrences(of: "https://kong-admin", with: "http://kong-admin")
        #expect(throws: ConfigError.self) { try loader().parse(remote, file: "c") }
        let allowed = remote.replacingOccurrences(of: "  timeout: 10s", with: "  timeout: 10s\n  allow_insecure: true")
            .replacingOccurrences(of: "    select_tags:", with: "    allow_insecure: true\n    select_tags:")
        #expect(throws: Never.self) { try loader().parse(allowed, file: "c") }
    }

    @Test func secretsNeverAppearInDiagnostics() {
        let text = good.replacingOccurrences(of: "type: kong", with: "type: kong\n    token: ${TOKEN}")
        do {
            _ = try loader(["CREDENTIALS_DIRECTORY": "/run/creds", "TOKEN": "tok-value-123"]).parse(text, file: "c")
            Issue.record("token and token_file together accepted")
        } catch {
            #expect("\(error)".contains("not both"))
            #expect(!"\(error)".contains("tok-value-123"))
            #expect(!"\(error)".contains("kong-token"))
        }
    }

    @Test func yamlErrorsDoNotQuoteTheFile() {
        let text = "version: 1\nsource:\n  bind_password: hunter2-literal\n  url: a\n  url: b\n"
        do {
            _ = try loader().parse(text, file: "c")
            Issue.record("duplicate key accepted")
        } catch {
            #expect("\(error)".contains("url"))
            #expect("\(error)".contains("line"))
            #expect(!"\(error)".contains("hunter2-literal"))
        }
    }

    @Test(arguments: ["ldap://127.0.0.1:389", "ldap://localhost", "ldap://[::1]:389", "http://127.1.2.3:8001/x"])
    func loopbackHostsMayUseCleartext(_ url: String) throws {
        let text = good.replacingOccurrences(of: "ldap://127.0.0.1:3389", with: url.hasPrefix("ldap") ? url : "ldap://127.0.0.1")
            .replacingOccurrences(of: "https://kong-admin.internal:8444", with: url.hasPrefix("http") ? url : "https://k")
        _ = try loader().parse(text, file: "c")
    }
}

@Suite("Config: the SCIM source")
struct SCIMConfigTests {
    func parse(_ source: String, env: [String: String] = ["SCIM_TOKEN": "t0k"]) throws -> SyncConfiguration {
        try ConfigLoader(environment: env, readFile: { _ in .success("file-secret\n") }).parse(
            """
            version: 1
            source:
            \(source)
            gateways:
              - name: g
                admin_url: https://kong:8444
                select_tags: [a]
            journal:
              path: /tmp/j
            """, file: "c")
    }

    @Test func bearerAndBasicAuth() throws {
        let bearer = try parse("  type: scim\n  url: https://idp.example.com/scim/v2\n  token: ${SCIM_TOKEN}\n  id_attribute: externalId")
        guard case .scim(let s) = bearer.source else { Issue.record("not scim"); return }
        guard case .bearer(let token) = s.auth else { Issue.record("not bearer"); return }
        #expect(token == "t0k" && s.idAttribute == "externalId" && s.pageSize == 100 && s.usernameAttribute == "userName")
        let basic = try parse("  type: scim\n  url: https://idp/scim/v2\n  username: sync\n  password_file: /run/p")
        guard case .scim(let b) = basic.source else { Issue.record("not scim"); return }
        guard case .basic(let username, let password) = b.auth else { Issue.record("not basic"); return }
        #expect(username == "sync" && password == "file-secret")
    }

    @Test(arguments: [
        ("  type: scim\n  url: https://idp/scim/v2\n  filter: 'active eq true'", "source.filter"),
        ("  type: scim\n  url: http://idp.example.com/scim/v2\n  token: ${SCIM_TOKEN}", "source.url"),
        ("  type: scim\n  url: https://idp/scim/v2\n  id_attribute: mail", "source.id_attribute"),
        ("  type: scim\n  url: https://idp/scim/v2\n  page_size: 5000", "source.page_size"),
        ("  type: scim\n  url: https://idp/scim/v2\n  base_dn: ou=people", "source.base_dn"),
    ])
    func problems(_ source: String, _ path: String) {
        do {
            _ = try parse(source)
            Issue.record("accepted: \(source)")
        } catch let error as ConfigError {
            #expect(error.diagnostics.map(\.path).contains(path), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
