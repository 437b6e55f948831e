import SyncCore
import Testing

/// `TimeFormat.parseExpression`: what `journal --since/--until` accept, against fixed zones.
@Suite("Time expressions: journalctl's --since forms, local time through an injected offset")
struct TimeExpressionTests {
    /// Zones as offset tables, so the parser's answer never depends on the machine's TZ.
    enum Zone: String, CustomTestStringConvertible, Sendable {
        case utc, kolkata, newYork
        /// Central European time in 2026: +01:00, +02:00 from 2026-03-29T01:00Z to 2026-10-25T01:00Z.
        case berlin

        func offset(_ instant: Int64) -> Int64 {
            switch self {
            case .utc: return 0
            case .kolkata: return 19_800
            case .newYork: return -18_000
            case .berlin: return (1_774_746_000..<1_792_890_000).contains(instant) ? 7200 : 3600
            }
        }

        var testDescription: String { rawValue }
    }

    static func at(_ text: String) -> Int64 { TimeFormat.parseRFC3339(text)! }

    @Test(arguments: [
        // Keywords and ages (ages do not depend on the zone).
        (Zone.utc, "2026-11-30T09:37:29Z", "now", "2026-11-30T09:37:29Z"),
        (.utc, "2026-11-30T09:37:29Z", "today", "2026-11-30T00:00:00Z"),
        (.utc, "2026-11-30T09:37:29Z", " Yesterday ", "2026-11-29T00:00:00Z"),
        (.utc, "2026-11-30T09:37:29Z", "tomorrow", "2026-12-01T00:00:00Z"),
        (.utc, "2026-11-30T09:37:29Z", "2h", "2026-11-30T07:37:29Z"),
        (.utc, "2026-11-30T09:37:29Z", "-2h", "2026-11-30T07:37:29Z"),
        (.utc, "2026-11-30T09:37:29Z", "2h ago", "2026-11-30T07:37:29Z"),
        (.utc, "2026-11-30T09:37:29Z", "1h30m  ago", "2026-11-30T08:07:29Z"),
        (.utc, "2026-11-30T09:37:29Z", "+2h", "2026-11-30T11:37:29Z"),
        (.utc, "2026-11-30T09:37:29Z", "7d", "2026-11-23T09:37:29Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2h ago", "2026-11-30T07:37:29Z"),
        // Times with an offset mean just that.
        (.utc, "2026-11-30T09:37:29Z", "2026-11-30T07:15:00Z", "2026-11-30T07:15:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2026-11-30T07:15:00Z", "2026-11-30T07:15:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2026-11-30T08:15:00+01:00", "2026-11-30T07:15:00Z"),
        (.utc, "2026-11-30T09:37:29Z", "2026-11-30T07:15:00.123Z", "2026-11-30T07:15:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2026-11-30 14:00 UTC", "2026-11-30T14:00:00Z"),
        (.utc, "2026-11-30T09:37:29Z", "2026-11-30T14:00+0100", "2026-11-30T13:00:00Z"),
        (.utc, "2026-11-30T09:37:29Z", "2026-11-30t14:00:00-05:00", "2026-11-30T19:00:00Z"),
        // Without an offset: local time; today and yesterday are local midnight.
        (.kolkata, "2026-11-30T09:37:29Z", "today", "2026-11-29T18:30:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "yesterday", "2026-11-28T18:30:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2026-11-30", "2026-11-29T18:30:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2026-11-30 14:00", "2026-11-30T08:30:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "2026-11-30T14:00:00", "2026-11-30T08:30:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "14:00", "2026-11-30T08:30:00Z"),
        (.kolkata, "2026-11-30T09:37:29Z", "14:00:30", "2026-11-30T08:30:30Z"),
        (.utc, "2026-11-30T09:37:29Z", "2026-11-30", "2026-11-30T00:00:00Z"),
        // The local date is not the UTC date.
        (.kolkata, "2026-11-30T20:00:00Z", "today", "2026-11-30T18:30:00Z"),
        (.kolkata, "2026-11-30T20:00:00Z", "10:00", "2026-12-01T04:30:00Z"),
        (.newYork, "2026-11-30T02:00:00Z", "today", "2026-11-29T05:00:00Z"),
        (.newYork, "2026-11-30T02:00:00Z", "2026-11-30 14:00", "2026-11-30T19:00:00Z"),
        // Around a clock change, the offset of the day asked about, not of now.
        (.berlin, "2026-03-29T12:00:00Z", "today", "2026-03-28T23:00:00Z"),
        (.berlin, "2026-03-29T12:00:00Z", "01:00", "2026-03-29T00:00:00Z"),
        (.berlin, "2026-03-29T12:00:00Z", "03:00", "2026-03-29T01:00:00Z"),
        (.berlin, "2026-03-29T12:00:00Z", "2026-07-01 12:00", "2026-07-01T10:00:00Z"),
        (.berlin, "2026-07-01T12:00:00Z", "2026-01-15 12:00", "2026-01-15T11:00:00Z"),
        (.berlin, "2026-10-25T12:00:00Z", "yesterday", "2026-10-23T22:00:00Z"),
    ] as [(Zone, String, String, String)])
    func parses(_ zone: Zone, _ now: String, _ text: String, _ expected: String) {
        let parsed = TimeFormat.parseExpression(text, now: Self.at(now), utcOffset: zone.offset)
        #expect(parsed.map { TimeFormat.rfc3339($0) } == expected)
    }

    @Test(arguments: [
        "", "  ", "soon", "ago", "2h later", "1x ago", "-", "+", "2h ago ago", "2026-13-01", "2026-02-30",
        "2026-11-30T25:00:00Z", "2026-11-30T14:00:00+25:00", "2026-11-30T", "2026/11/30", "25:00", "14", "14:60",
        "14:00Z", "14:00:00.", "2026-11-30 14:00 CET", "2026-11-30T14:00:00Zjunk", "yesterday 14:00",
    ])
    func rejects(_ text: String) {
        #expect(TimeFormat.parseExpression(text, now: Self.at("2026-11-30T09:37:29Z"), utcOffset: Zone.kolkata.offset) == nil)
    }

    @Test(arguments: [
        (0, "2026-11-30T09:37:29Z"), (19_800, "2026-11-30T15:07:29+05:30"), (-18_000, "2026-11-30T04:37:29-05:00"),
        (7200, "2026-11-30T11:37:29+02:00"),
    ] as [(Int64, String)])
    func rendersInAZone(_ offset: Int64, _ expected: String) {
        let shown = TimeFormat.rfc3339(Self.at("2026-11-30T09:37:29Z"), utcOffset: offset)
        #expect(shown == expected)
        // What is shown reads back as the same instant.
        #expect(TimeFormat.parseExpression(shown, now: 0, utcOffset: { _ in 0 }) == Self.at("2026-11-30T09:37:29Z"))
    }
}
