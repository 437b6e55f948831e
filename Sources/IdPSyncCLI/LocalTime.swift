#if canImport(Glibc)
import Glibc
#endif
import SyncCore

/// The local time zone, from the C library (`TZ` honoured, else /etc/localtime): the one impure
/// piece of showing and reading local times; the parsing and rendering in `TimeFormat` are pure.
enum LocalTime {
    private static let zoneRead: Bool = {
        tzset()
        return true
    }()

    /// Seconds east of UTC in effect at a UTC instant (0 when the C library cannot tell).
    static func utcOffset(at instant: Int64) -> Int64 {
        _ = zoneRead
        var t = time_t(clamping: instant)
        var parts = tm()
        guard localtime_r(&t, &parts) != nil else { return 0 }
        return Int64(parts.tm_gmtoff)
    }

    /// A stored RFC 3339 UTC time shown in local time (`2026-11-30T12:45:00+05:30`); a text that is
    /// no time is shown as it is.
    static func show(_ stored: String) -> String {
        guard let seconds = TimeFormat.parseRFC3339(stored) else { return stored }
        return TimeFormat.rfc3339(seconds, utcOffset: utcOffset(at: seconds))
    }
}
