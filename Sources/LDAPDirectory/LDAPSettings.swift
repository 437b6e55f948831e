/// What the LDAP source needs from `source:` in the config.
public struct LDAPSettings: Sendable {
    public var url: String
    public var bindDN: String?
    /// Never logged, never in errors.
    public var bindPassword: String?
    public var baseDN: String
    public var filter: String
    public var pageSize: Int
    public var idAttribute: String
    public var usernameAttribute: String
    public var disabledFilter: String?
    public var timeoutSeconds: Int
    public var caFile: String?
    public var startTLS: Bool
    /// Whether a connection may speak TLS: StartTLS, or an ldaps:// url (anywhere in a url list).
    var speaksTLS: Bool { startTLS || url.lowercased().contains("ldaps://") }
    /// Bounds the whole paged read.
    public var readDeadlineSeconds: Int
    /// True after SIGTERM: the read stops within half a second.
    public var shouldStop: @Sendable () -> Bool

    public init(
        url: String, bindDN: String?, bindPassword: String?, baseDN: String,
        filter: String = "(objectClass=inetOrgPerson)", pageSize: Int = 500, idAttribute: String = "entryUUID",
        usernameAttribute: String = "uid", disabledFilter: String? = nil, timeoutSeconds: Int = 30,
        caFile: String? = nil, startTLS: Bool = false, readDeadlineSeconds: Int = 900,
        shouldStop: @escaping @Sendable () -> Bool = { false }
    ) {
        self.readDeadlineSeconds = readDeadlineSeconds
        self.shouldStop = shouldStop
        self.url = url
        self.bindDN = bindDN
        self.bindPassword = bindPassword
        self.baseDN = baseDN
        self.filter = filter
        self.pageSize = pageSize
        self.idAttribute = idAttribute
        self.usernameAttribute = usernameAttribute
        self.disabledFilter = disabledFilter
        self.timeoutSeconds = timeoutSeconds
        self.caFile = caFile
        self.startTLS = startTLS
    }
}
