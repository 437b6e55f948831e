import CCurl
import Dispatch

/// An HTTP request. Header values may hold secrets: they are never logged or put in errors.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    /// Response headers, names lowercased (the last value wins).
    public var headers: [String: String] = [:]

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// TLS and timeout settings of one client.
public struct HTTPClientOptions: Sendable {
    public var timeoutSeconds: Int
    public var caFile: String?
    public var clientCert: String?
    public var clientKey: String?

    public init(timeoutSeconds: Int = 30, caFile: String? = nil, clientCert: String? = nil, clientKey: String? = nil) {
        self.timeoutSeconds = timeoutSeconds
        self.caFile = caFile
        self.clientCert = clientCert
        self.clientKey = clientKey
    }
}

/// A transport failure: no HTTP answer (connect, TLS, timeout). Never contains header values.
public struct HTTPTransportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var code: Int
    public var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }
}

/// The one libcurl wrapper: a reused easy handle (kept-alive connections), driven on its own
/// serial queue so blocking calls never run on Swift's cooperative pool.
///
/// Redirects are never followed; TLS verification is always on.
public final class HTTPClient: @unchecked Sendable {
    private let queue = DispatchQueue(label: "idp-sync.curl")
    private let handle: UnsafeMutableRawPointer
    private let options: HTTPClientOptions
    private let errorBuffer: UnsafeMutablePointer<CChar>

    private static let globalInit: Void = { _ = idpsync_curl_global_init() }()

    /// Call once from the main thread before any other thread starts (libcurl's rule).
    public static func initialize() { _ = globalInit }

    public init(options: HTTPClientOptions) {
        Self.initialize()
        self.options = options
        self.handle = curl_easy_init()
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Sends one request and waits for the whole answer.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.perform(request) })
            }
        }
    }

    private final class Sink {
        var bytes: [UInt8] = []
        var headers: [String: String] = [:]
    }

    private func perform(_ request: HTTPRequest) throws -> HTTPResponse {
        let h = handle
        curl_easy_reset(h)
        errorBuffer[0] = 0
        idpsync_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        idpsync_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, options.timeoutSeconds * 1000)
        idpsync_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, options.timeoutSeconds * 1000)
        idpsync_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        idpsync_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0)
        idpsync_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1)
        idpsync_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2)
        idpsync_curl_setopt_string(h, CURLOPT_ACCEPT_ENCODING, "")
        // HTTP/2 where the server offers it over TLS; HTTP/1.1 otherwise. Proxies come from
        // HTTPS_PROXY / NO_PROXY as libcurl reads them.
        idpsync_curl_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        idpsync_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        if let ca = options.caFile { idpsync_curl_setopt_string(h, CURLOPT_CAINFO, ca) }
        if let cert = options.clientCert { idpsync_curl_setopt_string(h, CURLOPT_SSLCERT, cert) }
        if let key = options.clientKey { idpsync_curl_setopt_string(h, CURLOPT_SSLKEY, key) }
        idpsync_curl_setopt_string(h, CURLOPT_URL, request.url)
        idpsync_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        if request.method == "HEAD" { idpsync_curl_setopt_long(h, CURLOPT_NOBODY, 1) }

        var list: UnsafeMutablePointer<curl_slist>? = nil
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }
        idpsync_curl_setopt_slist(h, CURLOPT_HTTPHEADER, list)

        let body = request.body ?? []
        let sink = Sink()
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        idpsync_curl_setopt_pointer(h, CURLOPT_WRITEDATA, unmanaged.toOpaque())
        idpsync_curl_setopt_write(h, CURLOPT_WRITEFUNCTION) { data, size, count, user in
            let n = size * count
            guard let user, let data else { return n }
            let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
            data.withMemoryRebound(to: UInt8.self, capacity: n) { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
            return n
        }

        idpsync_curl_setopt_pointer(h, CURLOPT_HEADERDATA, unmanaged.toOpaque())
        idpsync_curl_setopt_write(h, CURLOPT_HEADERFUNCTION) { data, size, count, user in
            let n = size * count
            guard let user, let data else { return n }
            let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
            let line = data.withMemoryRebound(to: UInt8.self, capacity: n) {
                String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
            }
            if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                var value = Substring(line[line.index(after: colon)...])
                while let c = value.first, c == " " || c == "\t" { value.removeFirst() }
                while let c = value.last, c.isWhitespace { value.removeLast() }
                sink.headers[name] = String(value)
            }
            return n
        }

        let code: CURLcode = body.withUnsafeBufferPointer { buffer in
            if request.body != nil {
                idpsync_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, buffer.count)
                idpsync_curl_setopt_pointer(
                    h, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            return curl_easy_perform(h)
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw HTTPTransportError(description: text, code: Int(code.rawValue))
        }
        var status = 0
        idpsync_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, body: sink.bytes, headers: sink.headers)
    }
}

/// Percent-encoding for query values and path segments (RFC 3986 unreserved characters kept).
public enum URLEncoding {
    public static func component(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF")
                out.append("%")
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }
}
