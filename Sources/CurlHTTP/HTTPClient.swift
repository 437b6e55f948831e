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

/// TLS, timeout and size settings of one client.
public struct HTTPClientOptions: Sendable {
    /// Connect and whole-request timeout; clamped to 1 s … 24 h.
    public var timeoutSeconds: Int
    public var caFile: String?
    public var clientCert: String?
    public var clientKey: String?
    /// The most bytes a response body may have once decoded (gzip included): a bigger one fails
    /// the request, so a decompression bomb costs at most this much memory.
    public var maxBodyBytes: Int
    /// Polled while a request is in flight (at least once a second) and between retries: true
    /// aborts the request (SIGTERM while reading).
    public var shouldAbort: @Sendable () -> Bool

    public static let defaultMaxBodyBytes = 64 << 20

    public init(
        timeoutSeconds: Int = 30, caFile: String? = nil, clientCert: String? = nil, clientKey: String? = nil,
        maxBodyBytes: Int = HTTPClientOptions.defaultMaxBodyBytes, shouldAbort: @escaping @Sendable () -> Bool = { false }
    ) {
        self.timeoutSeconds = min(max(timeoutSeconds, 1), 86_400)
        self.caFile = caFile
        self.clientCert = clientCert
        self.clientKey = clientKey
        self.maxBodyBytes = maxBodyBytes
        self.shouldAbort = shouldAbort
    }
}

/// A transport failure: no usable HTTP answer (connect, TLS, timeout, an oversized body, an abort).
/// Never contains header values.
public struct HTTPTransportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var code: Int
    public var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }
    /// The caller asked to stop (`shouldAbort`); never retried.
    public var isAborted: Bool { code == Int(CURLE_ABORTED_BY_CALLBACK.rawValue) }
    /// The body was larger than `maxBodyBytes`; never retried.
    public var isOversized = false

    /// The caller asked to stop (SIGTERM): the request was aborted, or a retry not waited for.
    static let stopped = HTTPTransportError(description: "stopped by a signal", code: Int(CURLE_ABORTED_BY_CALLBACK.rawValue))
}

/// The one libcurl wrapper: a reused easy handle (kept-alive connections), driven on its own
/// serial queue so blocking calls never run on Swift's cooperative pool.
///
/// Redirects are never followed; TLS verification is always on.
public final class HTTPClient: @unchecked Sendable {
    private let queue = DispatchQueue(label: "idp-sync.curl")
    private let handle: UnsafeMutableRawPointer
    let options: HTTPClientOptions
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
        let limit: Int
        var oversized = false
        let shouldAbort: @Sendable () -> Bool
        init(limit: Int, shouldAbort: @escaping @Sendable () -> Bool) {
            self.limit = limit
            self.shouldAbort = shouldAbort
        }
    }

    /// The most response headers kept (a server could send them without end).
    static let maxHeaders = 200

    private func perform(_ request: HTTPRequest) throws -> HTTPResponse {
        let h = handle
        curl_easy_reset(h)
        errorBuffer[0] = 0
        idpsync_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        idpsync_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, options.timeoutSeconds * 1000)
        idpsync_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, options.timeoutSeconds * 1000)
        idpsync_curl_setopt_long(h, CURLOPT_MAXFILESIZE_LARGE, options.maxBodyBytes)
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
        let sink = Sink(limit: options.maxBodyBytes, shouldAbort: options.shouldAbort)
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        idpsync_curl_setopt_pointer(h, CURLOPT_WRITEDATA, unmanaged.toOpaque())
        idpsync_curl_setopt_write(h, CURLOPT_WRITEFUNCTION) { data, size, count, user in
            let n = size * count
            guard let user, let data else { return n }
            let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
            guard n <= sink.limit - sink.bytes.count else {
                sink.oversized = true
                return 0  // CURLE_WRITE_ERROR: the transfer stops here
            }
            data.withMemoryRebound(to: UInt8.self, capacity: n) { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
            return n
        }
        idpsync_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0)
        idpsync_curl_setopt_pointer(h, CURLOPT_XFERINFODATA, unmanaged.toOpaque())
        idpsync_curl_setopt_xferinfo(h) { user, _, _, _, _ in
            guard let user else { return 0 }
            return Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue().shouldAbort() ? 1 : 0
        }

        idpsync_curl_setopt_pointer(h, CURLOPT_HEADERDATA, unmanaged.toOpaque())
        idpsync_curl_setopt_write(h, CURLOPT_HEADERFUNCTION) { data, size, count, user in
            let n = size * count
            guard let user, let data else { return n }
            let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
            let line = data.withMemoryRebound(to: UInt8.self, capacity: n) {
                String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
            }
            if let colon = line.firstIndex(of: ":"), sink.headers.count < HTTPClient.maxHeaders {
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
            if sink.oversized || code == CURLE_FILESIZE_EXCEEDED {
                var error = HTTPTransportError(
                    description: "the response body is larger than \(options.maxBodyBytes >> 20) MiB once decoded; refused",
                    code: Int(code.rawValue))
                error.isOversized = true
                throw error
            }
            if code == CURLE_ABORTED_BY_CALLBACK { throw HTTPTransportError.stopped }
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
