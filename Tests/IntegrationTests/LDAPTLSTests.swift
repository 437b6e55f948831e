import LDAPDirectory
import Logging
import SyncCore
import SyncEngine
import Testing

@Suite("LDAP over TLS against slapd: ldaps://, StartTLS, per-connection CA")
struct LDAPTLSTests {
    func source(_ url: String, _ server: SlapdServer, ca: String?, startTLS: Bool = false) -> LDAPDirectorySource {
        LDAPDirectorySource(
            settings: LDAPSettings(
                url: url, bindDN: server.bindDN, bindPassword: server.password, baseDN: server.baseDN, timeoutSeconds: 5,
                caFile: ca, startTLS: startTLS),
            logger: Logger(label: "test"))
    }

    @Test func ldapsAndStartTLSWithTheConfiguredCA() async throws {
        let certs = try TestCertificates()
        let server = try SlapdServer(tlsDir: certs.dir.path)
        #expect(try await source(server.tlsURL, server, ca: certs.ca).snapshot().users.count == 6)
        #expect(try await source(server.url, server, ca: certs.ca, startTLS: true).snapshot().users.count == 6)
    }

    @Test func anUntrustedCertificateFailsClosedWithAHint() async throws {
        let certs = try TestCertificates()
        let other = try TestCertificates()  // a different CA: must not be trusted
        let server = try SlapdServer(tlsDir: certs.dir.path)
        for (url, startTLS) in [(server.tlsURL, false), (server.url, true)] {
            do {
                _ = try await source(url, server, ca: other.ca, startTLS: startTLS).snapshot()
                Issue.record("\(url): a certificate from an unknown CA was accepted")
            } catch let error as SourceError {
                #expect(error.description.contains(url))
                #expect(error.description.contains("ca_file"), "\(error)")
                #expect(!error.description.contains(server.password))
            }
        }
    }

    @Test func aFullSyncOverLDAPS() async throws {
        let certs = try TestCertificates()
        let ldap = try SlapdServer(tlsDir: certs.dir.path)
        let s = try Scenario(source: ["url": ldap.tlsURL, "ca_file": certs.ca], ldap: ldap)
        try await s.seedDemo()
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await s.plugins("carol").count == 1)
    }
}

@testable import LDAPDirectory

@Suite("LDAP values: deactivation attributes and GUIDs")
struct LDAPValueTests {
    @Test(arguments: [
        (["pwdaccountlockedtime": "000001010000Z"], "ppolicy administrative lock"),
        (["pwdaccountlockedtime": "20261130090000Z"], nil),
        (["useraccountcontrol": "514"], "userAccountControl ACCOUNTDISABLE"),
        (["useraccountcontrol": "66050"], "userAccountControl ACCOUNTDISABLE"),
        (["useraccountcontrol": "512"], nil),
        (["nsaccountlock": "TRUE"], "nsAccountLock"), (["nsaccountlock": "true"], "nsAccountLock"),
        (["nsaccountlock": "FALSE"], nil), ([:], nil),
    ] as [([String: String], String?)])
    func deactivation(_ values: [String: String], _ reason: String?) {
        #expect(LDAPDirectorySource.deactivation(values.mapValues { [Array($0.utf8)] }) == reason)
    }

    @Test func objectGUIDRendersMixedEndian() {
        let bytes: [UInt8] = [0x3b, 0x56, 0x14, 0x22, 0x2b, 0x48, 0xb1, 0x46, 0x87, 0x51, 0xf3, 0xad, 0x59, 0x31, 0xbf, 0x50]
        #expect(LDAPValue.id(bytes, attribute: "objectGUID") == "2214563b-482b-46b1-8751-f3ad5931bf50")
        #expect(LDAPValue.id(Array("abc".utf8), attribute: "entryUUID") == "abc")
        #expect(LDAPValue.id([0xff, 0xfe], attribute: "uid") == nil)
    }
}
