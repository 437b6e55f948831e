/// What the SCIM source needs from `source:` in the config.
public struct SCIMSettings: Sendable {
    public enum Auth: Sendable {
        case none
        /// Sent as `Authorization: Bearer …`; never logged.
        case bearer(String)
        /// HTTP basic auth; never logged.
        case basic(username: String, password: String)
    }

    /// The SCIM base URL, e.g. `https://idp.example.com/scim/v2` (`/Users` is appended).
    public var url: String
    public var auth: Auth
    /// Sent unchanged as `filter=`.
    public var filter: String?
    public var pageSize: Int
    /// `id` or `externalId`.
    public var idAttribute: String
    public var usernameAttribute: String
    public var timeoutSeconds: Int
    public var caFile: String?
    /// Extra attempts per page on connection errors, timeouts, 429 and 502–504.
    public var retries: Int
    /// Bounds the whole listing.
    public var readDeadlineSeconds: Int
    /// True after SIGTERM: the read stops at once.
    public var shouldStop: @Sendable () -> Bool

    public init(
        url: String, auth: Auth = .none, filter: String? = nil, pageSize: Int = 100, idAttribute: String = "id",
        usernameAttribute: String = "userName", timeoutSeconds: Int = 30, caFile: String? = nil, retries: Int = 3,
        readDeadlineSeconds: Int = 900, shouldStop: @escaping @Sendable () -> Bool = { false }
    ) {
        self.readDeadlineSeconds = readDeadlineSeconds
        self.shouldStop = shouldStop
        self.retries = retries
        self.url = url
        self.auth = auth
        self.filter = filter
        self.pageSize = pageSize
        self.idAttribute = idAttribute
        self.usernameAttribute = usernameAttribute
        self.timeoutSeconds = timeoutSeconds
        self.caFile = caFile
    }
}
