/// The marks the sync leaves on a gateway (docs/marks.md). Every tag of ours starts with `idp-sync:`.
public enum Marks {
    public static let prefix = "idp-sync:"
    public static let orphaned = "idp-sync:orphaned"
    public static let disabled = "idp-sync:disabled"
    public static let missingSincePrefix = "idp-sync:missing-since:"
    public static let reasonPrefix = "idp-sync:reason:"
    /// How our block answers every request of the consumer, on any gateway.
    public static let blockStatus = 403
    public static let blockMessage =
        "The user of this API key is no longer active in the identity provider (idp-sync)."

    public static func isOurs(_ tag: String) -> Bool { tag.hasPrefix(prefix) }

    /// The tags a consumer carries that a person or another tool put there; never removed.
    public static func foreign(_ tags: [String]) -> [String] { tags.filter { !isOurs($0) } }

    /// Our tags for an orphaned consumer, in a fixed order.
    public static func orphanTags(since: Int64, reason: GoneReason, disabled: Bool) -> [String] {
        var tags = [orphaned, missingSincePrefix + String(since), reasonPrefix + reason.rawValue]
        if disabled { tags.append(Marks.disabled) }
        return tags
    }
}

/// Why a linked user counts as gone.
public enum GoneReason: String, Hashable, Sendable, Codable {
    case missing
    case deactivated
}

/// Our marks as parsed from a consumer's tags.
public struct ConsumerMarks: Hashable, Sendable {
    public var orphaned = false
    public var disabled = false
    /// `.some(nil)`: the tag is there but unreadable.
    public var missingSince: Int64?? = nil
    public var reason: GoneReason?? = nil

    public init(tags: [String]) {
        for tag in tags where Marks.isOurs(tag) {
            if tag == Marks.orphaned {
                orphaned = true
            } else if tag == Marks.disabled {
                disabled = true
            } else if tag.hasPrefix(Marks.missingSincePrefix) {
                let value = tag.dropFirst(Marks.missingSincePrefix.count)
                // A clock outside years 1970–9999 is unreadable (docs/report.md: rewritten to now), so
                // no arithmetic on a crafted value can overflow.
                let parsed = (value.allSatisfy(\.isASCII) ? Int64(value) : nil).flatMap {
                    (0...TimeFormat.latest).contains($0) ? $0 : nil
                }
                // Two clocks on one consumer: keep the earliest readable one.
                if case .some(.some(let old)) = missingSince, let parsed {
                    missingSince = .some(min(old, parsed))
                } else if case .some(.some) = missingSince {
                } else {
                    missingSince = .some(parsed)
                }
            } else if tag.hasPrefix(Marks.reasonPrefix) {
                reason = .some(GoneReason(rawValue: String(tag.dropFirst(Marks.reasonPrefix.count))))
            }
        }
    }

    public var hasAny: Bool { orphaned || disabled || missingSince != nil || reason != nil }
}
