import CCurl

/// When and how long to wait before sending a request again.
///
/// Retried: a connection that never reached the server (any method); for requests the caller marks
/// safe to repeat, any other transport failure (timeouts, dropped connections); 429 (waiting for
/// `Retry-After`, capped) and 502/503/504 (the server or a proxy did not process the request).
/// Delays grow exponentially with full jitter.
public struct RetryPolicy: Sendable {
    public var retries: Int
    public var baseDelay: Double
    public var maxDelay: Double
    public var maxRetryAfter: Double

    public init(retries: Int, baseDelay: Double = 0.2, maxDelay: Double = 5, maxRetryAfter: Double = 30) {
        self.retries = retries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// libcurl codes meaning the request never reached the server.
    static let notSent: Set<Int> = [
        Int(CURLE_COULDNT_RESOLVE_PROXY.rawValue), Int(CURLE_COULDNT_RESOLVE_HOST.rawValue),
        Int(CURLE_COULDNT_CONNECT.rawValue),
    ]

    /// Seconds to wait before attempt `attempt + 1`, or nil to give up.
    public func delay(afterAttempt attempt: Int, status: Int?, retryAfter: Double?, transportCode: Int?, repeatable: Bool)
        -> Double?
    {
        guard attempt <= retries else { return nil }
        if let code = transportCode {
            guard Self.notSent.contains(code) || repeatable else { return nil }
        } else if let status {
            switch status {
            case 429:
                if let retryAfter, retryAfter.isFinite { return min(max(retryAfter, 0), maxRetryAfter) }
            case 502, 503, 504: break
            default: return nil
            }
        }
        let ceiling = min(maxDelay, baseDelay * Double(1 << min(max(attempt - 1, 0), 16)))
        guard ceiling.isFinite, ceiling > 0 else { return 0 }
        return Double.random(in: ceiling / 2...ceiling)
    }

    /// `Retry-After` as delay-seconds (RFC 9110 §10.2.3: 1*DIGIT), or nil for anything else (an
    /// HTTP-date, `nan`, `-1`, `1e9`, garbage): the caller then backs off as for a 503.
    public static func retryAfterSeconds(_ text: String?) -> Double? {
        guard let text else { return nil }
        let digits = text.utf8
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Double(Int(text) ?? 0)
    }

    /// Whole nanoseconds for a delay in seconds: non-finite or negative is 0, capped at one hour.
    static func nanoseconds(_ seconds: Double) -> UInt64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return UInt64(min(seconds, 3600) * 1e9)
    }
}

extension HTTPClient {
    /// What happened on one attempt that will be retried, for the caller's log (no secrets in it).
    public struct RetryNote: Sendable {
        public var attempt: Int
        public var reason: String
        public var delay: Double
        /// The delay in whole milliseconds, for logs.
        public var delayMilliseconds: Int { Int(RetryPolicy.nanoseconds(delay) / 1_000_000) }
    }

    /// Sleeps in short slices so a stop request ends the wait within a quarter second.
    func pause(_ seconds: Double) async throws {
        var left = RetryPolicy.nanoseconds(seconds)
        while left > 0 {
            if options.shouldAbort() { throw HTTPTransportError.stopped }
            let slice = min(left, 250_000_000)
            try await Task.sleep(nanoseconds: slice)
            left -= slice
        }
    }

    /// Sends with retries per `policy`. `repeatable`: the request may be sent twice without harm
    /// (reads); writes are retried only when they never reached the server or the server said it
    /// did not process them (429/502/503/504).
    public func send(
        _ request: HTTPRequest, policy: RetryPolicy, repeatable: Bool, onRetry: @Sendable (RetryNote) -> Void = { _ in }
    ) async throws -> HTTPResponse {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await send(request)
                let retryAfter = RetryPolicy.retryAfterSeconds(response.header("retry-after"))
                guard
                    let wait = policy.delay(
                        afterAttempt: attempt, status: response.status, retryAfter: retryAfter, transportCode: nil,
                        repeatable: repeatable)
                else { return response }
                onRetry(RetryNote(attempt: attempt, reason: "HTTP \(response.status)", delay: wait))
                try await pause(wait)
            } catch let error as HTTPTransportError {
                if error.isAborted || error.isOversized { throw error }
                guard
                    let wait = policy.delay(
                        afterAttempt: attempt, status: nil, retryAfter: nil, transportCode: error.code, repeatable: repeatable)
                else { throw error }
                onRetry(RetryNote(attempt: attempt, reason: error.description, delay: wait))
                try await pause(wait)
            }
        }
    }
}
