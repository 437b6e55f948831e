import SyncCore

/// What the Kong adapter needs from `gateways[i]` in the config.
public struct KongSettings: Sendable {
    public var name: String
    public var adminURL: String
    /// Sent as `Kong-Admin-Token`; never logged.
    public var token: String?
    public var selectTags: [String]
    /// Kong Enterprise: every path is `/{workspace}/…`; nil is the default workspace (no prefix).
    public var workspace: String?
    /// Kong Konnect instead of an Admin API: the control plane's entities, a bearer token, no PATCH.
    public var konnect: Konnect?

    /// A Konnect control plane: `{apiURL}/v2/control-planes/{controlPlaneID}` (KONG-FACTS §16).
    public struct Konnect: Sendable, Equatable {
        public var controlPlaneID: String
        /// `https://{region}.api.konghq.com`, or the configured `api_url`.
        public var apiURL: String

        public init(controlPlaneID: String, apiURL: String) {
            self.controlPlaneID = controlPlaneID
            self.apiURL = apiURL
        }

        /// Konnect's regions and their API hosts.
        public static let regions = ["us", "eu", "au", "me", "in"]
        public static func url(region: String) -> String { "https://\(region).api.konghq.com" }
    }
    public var timeoutSeconds: Int
    public var caFile: String?
    public var clientCert: String?
    public var clientKey: String?
    /// Extra attempts per request on connection errors, 429 and 502–504.
    public var retries: Int
    /// Writes in flight at once; each has its own kept-alive connection.
    public var concurrency: Int
    /// Bounds one whole listing (all pages of consumers, plugins or keys).
    public var readDeadlineSeconds: Int
    /// True after SIGTERM: requests in flight are aborted and no new one starts.
    public var shouldStop: @Sendable () -> Bool

    public init(
        name: String, adminURL: String, token: String? = nil, selectTags: [String], timeoutSeconds: Int = 30,
        caFile: String? = nil, clientCert: String? = nil, clientKey: String? = nil, retries: Int = 3,
        concurrency: Int = 8, readDeadlineSeconds: Int = 900, workspace: String? = nil, konnect: Konnect? = nil,
        shouldStop: @escaping @Sendable () -> Bool = { false }
    ) {
        self.konnect = konnect
        self.workspace = workspace
        self.readDeadlineSeconds = readDeadlineSeconds
        self.shouldStop = shouldStop
        self.retries = retries
        self.concurrency = max(1, concurrency)
        self.name = name
        self.adminURL = adminURL
        self.token = token
        self.selectTags = selectTags
        self.timeoutSeconds = timeoutSeconds
        self.caFile = caFile
        self.clientCert = clientCert
        self.clientKey = clientKey
    }
}
