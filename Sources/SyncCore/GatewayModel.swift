/// A Kong consumer as read from the Admin API (only the fields the sync uses).
public struct Consumer: Hashable, Sendable, Codable {
    public var id: ConsumerID
    public var username: String?
    public var customID: String?
    /// `nil` when Kong holds no tags at all; kept distinct from `[]` so writes do not invent changes.
    public var tags: [String]?

    public init(id: ConsumerID, username: String?, customID: String?, tags: [String]?) {
        self.id = id
        self.username = username
        self.customID = customID
        self.tags = tags
    }

    public var tagList: [String] { tags ?? [] }
}

/// A plugin instance bound to a consumer (request-termination is the one the sync cares about).
public struct ConsumerPlugin: Hashable, Sendable, Codable {
    public var id: PluginID
    public var name: String
    public var consumerID: ConsumerID?
    public var routeID: String?
    public var serviceID: String?
    public var enabled: Bool
    public var statusCode: Int?
    public var trigger: String?
    public var tags: [String]

    public init(
        id: PluginID, name: String, consumerID: ConsumerID?, routeID: String? = nil, serviceID: String? = nil,
        enabled: Bool = true, statusCode: Int? = nil, trigger: String? = nil, tags: [String] = []
    ) {
        self.id = id
        self.name = name
        self.consumerID = consumerID
        self.routeID = routeID
        self.serviceID = serviceID
        self.enabled = enabled
        self.statusCode = statusCode
        self.trigger = trigger
        self.tags = tags
    }

    /// Scoped to the consumer alone: route and service both null.
    public var isConsumerOnly: Bool { consumerID != nil && routeID == nil && serviceID == nil }

    /// Our own marker plugin: request-termination on the consumer alone, tagged `idp-sync`.
    public var isOurs: Bool { name == Marks.pluginName && isConsumerOnly && tags.contains(Marks.pluginTag) }
}

/// A key-auth credential, by id and fingerprint only: its value never leaves the gateway adapter.
public struct KeyRef: Hashable, Sendable, Codable, Comparable {
    public var id: KeyID
    /// `sha256:` + the first 16 hex digits of SHA-256(key).
    public var fingerprint: String

    public init(id: KeyID, fingerprint: String) {
        self.id = id
        self.fingerprint = fingerprint
    }

    public static func < (a: KeyRef, b: KeyRef) -> Bool { a.id < b.id }
}

/// What is read only for consumers the plan acts on: their keys and every plugin on them.
public struct ConsumerDetails: Hashable, Sendable {
    public var keys: [KeyRef]
    public var plugins: [ConsumerPlugin]

    public init(keys: [KeyRef], plugins: [ConsumerPlugin]) {
        self.keys = keys
        self.plugins = plugins
    }
}

/// One gateway's managed consumers and our plugins, read completely before planning.
public struct GatewaySnapshot: Sendable {
    public var name: String
    public var consumers: [Consumer]
    /// Our request-termination plugins (tagged `idp-sync`), by consumer.
    public var ourPlugins: [ConsumerID: ConsumerPlugin]
    /// Keys and plugins of the consumers the plan acts on; filled in a second read.
    public var details: [ConsumerID: ConsumerDetails]

    public init(
        name: String, consumers: [Consumer], ourPlugins: [ConsumerID: ConsumerPlugin] = [:],
        details: [ConsumerID: ConsumerDetails] = [:]
    ) {
        self.name = name
        self.consumers = consumers
        self.ourPlugins = ourPlugins
        self.details = details
    }
}
