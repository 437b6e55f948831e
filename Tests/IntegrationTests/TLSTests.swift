import Foundation
import KongGateway
import Logging
import SCIMDirectory
import SyncCore
import SyncEngine
import Testing

/// A CA, a server certificate for 127.0.0.1 and a client certificate (`Fixtures/tls/make-certs`).
final class TestCertificates: @unchecked Sendable {
    let dir = TempDir()
    var ca: String { dir.path + "/ca.pem" }
    var cert: String { dir.path + "/server.pem" }
    var key: String { dir.path + "/server.key" }
    var clientCert: String { dir.path + "/client.pem" }
    var clientKey: String { dir.path + "/client.key" }

    init() throws {
        let r = try runProcess(Repo.fixture("tls/make-certs"), [dir.path])
        guard r.status == 0 else { throw FixtureError(description: "make-certs failed: \(r.stderr)") }
    }
}

@Suite("HTTPS: verification, private CA, mTLS")
struct TLSTests {
    func kong(_ server: KongServer, ca: String?, cert: String? = nil, key: String? = nil) -> KongAdminClient {
        KongAdminClient(
            settings: KongSettings(
                name: "tls", adminURL: server.url,
                selectTags: ["idp-managed"], timeoutSeconds: 5, caFile: ca, clientCert: cert, clientKey: key, retries: 0),
            logger: Logger(label: "test"))
    }

    @Test func aPrivateCAIsTrustedOnlyWhenConfigured() async throws {
        let certs = try TestCertificates()
        let server = try KongServer(certs: certs)
        try await server.control("POST", "/__test/generate", #"{"count": 3, "tags": ["idp-managed"]}"#)
        #expect(try await kong(server, ca: certs.ca).snapshot().consumers.count == 3)
        do {
            _ = try await kong(server, ca: nil).snapshot()
            Issue.record("an unknown CA was trusted")
        } catch let error as GatewayError {
            #expect(error.description.contains("ca_file"))
            #expect(error.description.contains("gateway tls"))
        }
    }

    @Test func mutualTLSSendsTheClientCertificate() async throws {
        let certs = try TestCertificates()
        let server = try KongServer(certs: certs, mtls: true)
        await #expect(throws: GatewayError.self) { try await kong(server, ca: certs.ca).snapshot() }
        let snapshot = try await kong(server, ca: certs.ca, cert: certs.clientCert, key: certs.clientKey).snapshot()
        #expect(snapshot.consumers.isEmpty)
    }

    @Test func scimOverHTTPSWithAPrivateCA() async throws {
        let certs = try TestCertificates()
        let server = try PortFileServer(
            script: "scim/scim_fake_server.py", ["--mode", "honest", "--users", "7", "--tls-cert", certs.cert, "--tls-key", certs.key])
        let url = "https://127.0.0.1:\(server.port)"
        let good = SCIMDirectorySource(
            settings: SCIMSettings(url: url, auth: .bearer("t"), caFile: certs.ca, retries: 0), logger: Logger(label: "test"))
        #expect(try await good.snapshot().users.count == 7)
        let bad = SCIMDirectorySource(settings: SCIMSettings(url: url, retries: 0), logger: Logger(label: "test"))
        await #expect(throws: SourceError.self) { try await bad.snapshot() }
    }

    @Test func aFullSyncOverHTTPSAndMTLS() async throws {
        let certs = try TestCertificates()
        let s = try Scenario(certs: certs, mtls: true)
        try await s.seedDemo()
        #expect(try String(contentsOfFile: s.config, encoding: .utf8).contains("admin_url: https://127.0.0.1"))
        let r = try s.sync()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await s.plugins("carol").count == 1)
    }

    @Test func httpsProxyAndNoProxyAreRespected() async throws {
        let certs = try TestCertificates()
        let s = try Scenario(certs: certs)
        try await s.seedDemo()
        // A proxy that refuses connections: the gateway cannot be read (exit 1, nothing written).
        let proxied = try runProcess(
            Repo.binary, ["sync", "--config", s.config, "--dry-run"],
            environment: ["HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": ""])
        #expect(proxied.status == 1)
        #expect(proxied.stdout.contains("gateway-error") || proxied.stdout.contains("REFUSED"))
        let bypassed = try runProcess(
            Repo.binary, ["sync", "--config", s.config, "--dry-run"],
            environment: ["HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"])
        #expect(bypassed.status == 0, "\(bypassed.stdout)")
    }
}
