import LDAPDirectory
import Logging
import SyncCore
import SyncEngine
import Testing

@Suite("LDAP source against a real slapd")
struct LDAPDirectoryTests {
    func source(_ server: SlapdServer, pageSize: Int = 25, password: String? = nil, disabledFilter: String? = nil,
                url: String? = nil, timeout: Int = 5) -> LDAPDirectorySource {
        LDAPDirectorySource(
            settings: LDAPSettings(
                url: url ?? server.url, bindDN: server.bindDN, bindPassword: password ?? server.password,
                baseDN: server.baseDN, pageSize: pageSize, disabledFilter: disabledFilter, timeoutSeconds: timeout),
            logger: Logger(label: "test"))
    }

    @Test func pagingReadsPastTheServersSizeLimit() async throws {
        let server = try SlapdServer(users: 120, sizeLimit: 50)
        for pageSize in [25, 500] {
            let snapshot = try await source(server, pageSize: pageSize).snapshot()
            #expect(snapshot.users.count == 126, "page size \(pageSize)")
            #expect(Set(snapshot.users.map(\.id)).count == 126)
            let first = snapshot.users.first { $0.username == "user000001" }
            #expect(first?.id.rawValue == DemoUsers.user000001)
        }
    }

    @Test func deactivationFollowsPpolicyAndDisabledFilter() async throws {
        let server = try SlapdServer()
        let users = try await source(server, disabledFilter: "(employeeType=left)").snapshot().users
        func state(_ uid: String) -> DirectoryUser.State? { users.first { $0.username == uid }?.state }
        #expect(state("alice") == .active)
        #expect(state("carol") == .deactivated)  // pwdAccountLockedTime: 000001010000Z
        #expect(state("dave") == .deactivated)  // employeeType: left
        #expect(state("erin") == .active)  // a lockout timestamp is not a deactivation
        let withoutFilter = try await source(server).snapshot().users
        #expect(withoutFilter.first { $0.username == "dave" }?.state == .active)
    }

    @Test func aWrongPasswordFailsClosedWithoutTheSecret() async throws {
        let server = try SlapdServer()
        do {
            _ = try await source(server, password: "wrong-pass-4711").snapshot()
            Issue.record("bind with a wrong password succeeded")
        } catch let error as SourceError {
            #expect(error.description.contains("bind as cn=sync"))
            #expect(error.description.contains("Invalid credentials"))
            #expect(!error.description.contains("wrong-pass-4711"))
        }
    }

    @Test func aStoppedServerFailsClosed() async throws {
        let server = try SlapdServer()
        let url = server.url
        server.stop()
        do {
            _ = try await source(server, url: url, timeout: 2).snapshot()
            Issue.record("a stopped server was read")
        } catch let error as SourceError {
            #expect(error.description.contains(url))
            #expect(error.description.contains("Can't contact LDAP server"), "\(error)")
        }
    }

    @Test func aPlainSearchWouldHaveStoppedAtTheLimit() async throws {
        // Guard for the test above: the fixture's limit really cuts unpaged searches (result 4).
        let server = try SlapdServer(users: 120, sizeLimit: 50)
        let r = try runProcess(
            "/usr/bin/ldapsearch",
            ["-x", "-H", server.url, "-D", server.bindDN, "-w", server.password, "-b", server.baseDN, "-LLL", "uid"])
        #expect(r.status == 4)
    }
}

@Suite("LDAP source against a fake server that misbehaves in ways slapd cannot")
struct FakeLDAPTests {
    func read(_ mode: String, maxPages: Int = 100_000) async throws -> SourceError? {
        let server = try PortFileServer(script: "ldap/fake_ldap_server.py", ["--mode", mode, "--max-pages", String(maxPages)])
        let source = LDAPDirectorySource(
            settings: LDAPSettings(
                url: "ldap://127.0.0.1:\(server.port)", bindDN: "cn=sync,ou=system,dc=example,dc=org",
                bindPassword: "x", baseDN: "ou=people,dc=example,dc=org", pageSize: 2, timeoutSeconds: 5),
            logger: Logger(label: "test"))
        do {
            _ = try await source.snapshot()
            return nil
        } catch let error as SourceError {
            return error
        }
    }

    @Test func aCookieThatNeverEmptiesOnEmptyPages() async throws {
        let error = try await read("endless-empty-pages")
        #expect(error?.description.contains("cookie never empties") == true, "\(String(describing: error))")
    }

    @Test func aPageWithoutThePagedResultsControl() async throws {
        let error = try await read("no-page-control")
        #expect(error?.description.contains("without the paged results control") == true, "\(String(describing: error))")
    }

    @Test func resultThreeInTheMiddleOfPaging() async throws {
        let error = try await read("time-limit-page2")
        #expect(error?.description.contains("page 2") == true && error?.description.contains("result 3") == true,
            "\(String(describing: error))")
    }

    @Test func aServerThatHangsUpInTheMiddleOfAnEndlessListing() async throws {
        let error = try await read("endless-cookie", maxPages: 30)
        #expect(error != nil)
    }
}
