import SyncCore
import Testing

@Suite("Hostile values: one escaper, total time arithmetic")
struct HostileValueTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("a\nb", #"a\nb"#),
        ("a\r\nb", #"a\r\nb"#),  // one Character, two controls
        ("\u{1B}[31mred\u{1B}[0m", #"\u{1b}[31mred\u{1b}[0m"#),
        ("tab\there", #"tab\there"#),
        ("del\u{7F}", #"del\u{7f}"#),
        ("c1\u{9B}2J", #"c1\u{9b}2J"#),
        ("line\u{2028}sep", #"line\u{2028}sep"#),
        ("zoë ünïcode", "zoë ünïcode"),
        (#"back\slash"#, #"back\slash"#),
    ])
    func visible(_ input: String, _ expected: String) {
        #expect(TextEscape.visible(input) == expected)
        #expect(!TextEscape.visible(input).unicodeScalars.contains(where: TextEscape.needsEscape))
    }

    @Test(arguments: [
        ("simple", "simple"),
        ("", #""""#),
        ("two words", #""two words""#),
        ("a=b", #""a=b""#),
        (#"say "hi""#, #""say \"hi\"""#),
        (#"c:\path"#, #""c:\\path""#),
        ("boom\r\njournal.head=999:forged", #""boom\r\njournal.head=999:forged""#),
        ("\u{1B}]0;title\u{07}", #""\u{1b}]0;title\u{7}""#),
    ])
    func logfmt(_ input: String, _ expected: String) {
        #expect(TextEscape.logfmt(input) == expected)
    }

    @Test func boundedCutsAndEscapes() {
        #expect(TextEscape.bounded(String(repeating: "x", count: 300), limit: 10) == "xxxxxxxxxx…")
        #expect(TextEscape.bounded("a\nb", limit: 10) == #"a\nb"#)
    }

    @Test(arguments: [Int64.min, Int64.min + 86_399, -62_135_596_801, -1, 0, 253_402_300_800, Int64.max])
    func rfc3339IsTotal(_ seconds: Int64) {
        let text = TimeFormat.rfc3339(seconds)
        #expect(text.count == 20, "\(text)")
        #expect(TimeFormat.parseRFC3339(text) != nil)
    }

    @Test func rfc3339ClampsToYearsOneTo9999() {
        #expect(TimeFormat.rfc3339(Int64.min) == "0001-01-01T00:00:00Z")
        #expect(TimeFormat.rfc3339(Int64.max) == "9999-12-31T23:59:59Z")
        #expect(TimeFormat.rfc3339(0) == "1970-01-01T00:00:00Z")
    }

    @Test func durationAndAdditionNeverTrap() {
        #expect(TimeFormat.duration(Int64.min).hasPrefix("-"))
        #expect(TimeFormat.duration(Int64.max).hasSuffix("s"))
        #expect(TimeFormat.adding(Int64.max, 1) == Int64.max)
        #expect(TimeFormat.adding(Int64.min, -1) == Int64.min)
        #expect(TimeFormat.adding(1, 2) == 3)
        #expect(TimeFormat.subtracting(Int64.min, 1) == Int64.min)
        #expect(TimeFormat.subtracting(Int64.max, -1) == Int64.max)
    }

    @Test(arguments: [
        ("-9223372036854775808", true), ("9223372036854775807", true), ("-1", true), ("253402300800", true),
        ("99999999999999999999", true), ("1796000000", false), ("0", false),
    ])
    func clocksOutsideTheRangeAreUnreadable(_ value: String, _ unreadable: Bool) {
        let marks = ConsumerMarks(tags: [Marks.missingSincePrefix + value])
        if unreadable {
            #expect(marks.missingSince == .some(nil))
        } else {
            #expect(marks.missingSince == .some(Int64(value)))
        }
    }

    @Test func nonFiniteNumbersAreWrittenAsNull() throws {
        #expect(JSONValue.double(.infinity).canonical == "null")
        #expect(JSONValue.double(.nan).canonical == "null")
        #expect(try JSONParser.parse("[1e999]").canonical == "[null]")
    }
}
