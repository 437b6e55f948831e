import SyncCore

/// Gathers what `explain` shows about one key or consumer, through the ports only: which gateway
/// holds it, its keys and blocks, what the directory says of its user, and its journal history.
public struct EvidenceGatherer: Sendable {
    public var gateways: [any Gateway]
    public var source: any DirectorySource
    /// How each gateway links consumers to users, by gateway name.
    public var rules: [String: MatchRule]
    public var policy: Policy
    public var isProtected: @Sendable (Consumer) -> Bool
    /// Journal entries about a consumer (by id) or a key (by fingerprint).
    public var history: @Sendable (_ consumerID: String?, _ fingerprint: String?) throws -> [JournalEntry]
    public var now: Int64

    public init(
        gateways: [any Gateway], source: any DirectorySource, rules: [String: MatchRule], policy: Policy,
        isProtected: @escaping @Sendable (Consumer) -> Bool,
        history: @escaping @Sendable (_ consumerID: String?, _ fingerprint: String?) throws -> [JournalEntry], now: Int64
    ) {
        self.gateways = gateways
        self.source = source
        self.rules = rules
        self.policy = policy
        self.isProtected = isProtected
        self.history = history
        self.now = now
    }

    /// What was found, and what could not be read (listed, never swallowed).
    public struct Gathered: Sendable {
        public var evidence: ExplainEvidence
        public var problems: [String]
        /// A consumer was found on some gateway.
        public var found: Bool
    }

    /// Looks the key (by fingerprint) or the consumer (by id, username or custom_id) up.
    public func gather(fingerprint: String?, consumer name: String?) async -> Gathered {
        var found: (gateway: any Gateway, consumer: Consumer)? = nil
        var problems: [String] = []
        for gateway in gateways {
            do {
                if let fingerprint {
                    if let hit = try await gateway.findKey(fingerprint: fingerprint),
                        let c = try await gateway.findConsumer(hit.consumer.rawValue)
                    {
                        found = (gateway, c)
                        break
                    }
                } else if let name, let c = try await gateway.findConsumer(name) {
                    found = (gateway, c)
                    break
                }
            } catch {
                problems.append("\(error)")
            }
        }

        let gatewayName = found?.gateway.name ?? gateways.map(\.name).joined(separator: ", ")
        let rule = found.flatMap { rules[$0.gateway.name] } ?? gateways.first.flatMap { rules[$0.name] } ?? .recommended
        var details: ConsumerDetails? = nil
        var directory = ExplainEvidence.Directory.notChecked("no consumer found")
        if let (gateway, c) = found {
            do {
                details = try await gateway.details(for: [c.id])[c.id]
            } catch {
                problems.append("keys and blocks not read: \(error)")
            }
            if let value = rule.consumer == .customID ? c.customID : c.username {
                do {
                    switch try await source.lookup(value, by: rule.user) {
                    case .present(let user): directory = user.state == .active ? .active(user) : .deactivated(user)
                    case .outsideFilter(let dn): directory = .outsideFilter(dn)
                    case .absent: directory = .absent
                    }
                } catch {
                    directory = .notChecked("\(error)")
                }
            } else {
                directory = .unlinked
            }
        }

        var entries: [JournalEntry] = []
        if fingerprint != nil || found != nil {
            do {
                entries = try history(found?.consumer.id.rawValue, found == nil ? fingerprint : nil)
            } catch {
                problems.append("journal not read: \(error)")
            }
        }
        let evidence = ExplainEvidence(
            gateway: gatewayName, keyFingerprint: fingerprint, consumer: found?.consumer, details: details,
            linkField: rule.user.rawValue, directory: directory, history: entries, policy: policy,
            protected: found.map { isProtected($0.consumer) } ?? false, now: now)
        return Gathered(evidence: evidence, problems: problems, found: found != nil)
    }
}
