import SyncCore
import Testing

@Suite("Core values: JSON, time, globs, ids")
struct CoreValueTests {
    @Test func canonicalJSONSortsKeysAndKeepsSlashes() {
        let v: JSONValue = ["b": 1, "a": ["x/y", .null, true], "é": "tab\there\u{1}"]
        #expect(v.canonical == #"{"a":["x/y",null,true],"b":1,"é":"tab\there\u0001"}"#)
    }

    @Test(arguments: [
        #"{"a":1,"b":[true,false,null],"c":"x\/y","d":-12}"#, #"[]"#, #"{"s":"\ud83d\ude00 \u00e9"}"#,
    ])
    func parseThenCanonicalRoundTrips(_ text: String) throws {
        let v = try JSONParser.parse(text)
        #expect(try JSONParser.parse(v.canonical) == v)
    }

    @Test(arguments: [#"{"a":1,}"#, #"{"a" 1}"#, #"[01]"#, #"{"a":1}x"#, "\"\u{1}\"", #"{"a":1,"a":2}"#])
    func parserRejects(_ text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    /// `JSONReader.skipValue` steps over what nobody reads, as strictly as the parser reads it.
    @Test(arguments: [
        #"{"a":1,}"#, #"{"a" 1}"#, #"[01]"#, #"{"a":1}x"#, "\"\u{1}\"", #"[1.]"#, #"[-]"#, #"[1e]"#, #""\ud83d""#,
        #"[nul]"#, #"[truE]"#, #"{"a":[1,2}"#, #"{"a":{"b":"c"]}"#, #"{"a":1,"b":[{"c":"d\/e","f":-0.5e+7}],"g":null}"#,
        #"[[],{},"",0,true,false,null]"#, #""\u00e9\n""#, "\"zoë\"",
    ])
    func skippingIsAsStrictAsParsing(_ text: String) {
        let parsed = Result { try JSONParser.parse(text) }
        let skipped = Result { try JSONReader.read(Array(text.utf8)) { try $0.skipValue() } }
        #expect((try? parsed.get()) != nil ? (try? skipped.get()) != nil : (try? skipped.get()) == nil, "\(text)")
    }

    @Test func integersStayIntegers() throws {
        #expect(try JSONParser.parse("[1, 1.5, true]") == .array([.int(1), .double(1.5), .bool(true)]))
    }

    @Test(arguments: [
        (0, "1970-01-01T00:00:00Z"), (1_796_031_449, "2026-11-30T09:37:29Z"), (951_782_400, "2000-02-29T00:00:00Z"),
    ] as [(Int64, String)])
    func rfc3339(_ seconds: Int64, _ text: String) {
        #expect(TimeFormat.rfc3339(seconds) == text)
    }

    @Test(arguments: [
        ("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800), ("1h30m", 5400), ("0s", 0),
    ] as [(String, Int64)])
    func durations(_ text: String, _ seconds: Int64) {
        #expect(TimeFormat.parseDuration(text) == seconds)
        #expect(TimeFormat.parseDuration(TimeFormat.duration(seconds)) == seconds)
    }

    @Test(arguments: ["", "24", "h", "1x", "-5m", "99999999999999999999d"])
    func badDurations(_ text: String) {
        #expect(TimeFormat.parseDuration(text) == nil)
    }

    @Test(arguments: [
        ("svc-*", "SVC-ci", true), ("svc-*", "svc", false), ("break?lass", "breakglass", true), ("*", "", true),
        ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false), ("jür*", "JÜRGEN", true), ("svc-*", "svc-ü", true),
        ("svc-?", "svc-üx", false), ("x?z", "xüz", true), ("?", "ü", true), ("a", "ä", false),
    ] as [(String, String, Bool)])
    func globs(_ pattern: String, _ text: String, _ matches: Bool) {
        #expect(Glob(pattern).matches(text) == matches)
    }

    @Test func uuidShape() {
        #expect(MatchKey.isUUID("5ACA05F7-1e30-5a6b-82b9-64f1787ab26a"))
        #expect(!MatchKey.isUUID("5aca05f71e305a6b82b964f1787ab26a"))
        #expect(!MatchKey.isUUID("5aca05f7-1e30-5a6b-82b9-64f1787ab26g"))
    }

    /// Ids are held packed when they are canonical UUIDs; every text comes back as it went in, and
    /// equality and order are the text's.
    @Test(arguments: [
        ("5aca05f7-1e30-5a6b-82b9-64f1787ab26a", true), ("00000000-0000-0000-0000-000000000000", true),
        ("ffffffff-ffff-ffff-ffff-ffffffffffff", true), ("5ACA05F7-1e30-5a6b-82b9-64f1787ab26a", false),
        ("5aca05f71e305a6b82b964f1787ab26a", false), ("5aca05f7-1e30-5a6b-82b9-64f1787ab26g", false),
        ("5aca05f7-1e30-5a6b-82b9_64f1787ab26a", false), ("c-1", false), ("", false), ("zoë", false),
        ("5aca05f7-1e30-5a6b-82b9-64f1787ab2é", false),
    ] as [(String, Bool)])
    func compactTextKeepsTheText(_ text: String, _ packed: Bool) {
        let compact = CompactText(text)
        #expect(compact.string == text)
        #expect(compact.isPacked == packed)
        #expect(ConsumerID(text).rawValue == text)
        #expect(UserID(text) == UserID(String(text)))
    }

    @Test func compactTextOrdersAndHashesAsTheText() {
        let texts = [
            "5aca05f7-1e30-5a6b-82b9-64f1787ab26a", "5aca05f7-1e30-5a6b-82b9-64f1787ab26b", "0aca05f7-1e30-5a6b-82b9-64f1787ab26a",
            "5aca05f7-1e30-5a6b-82b9-64f1787ab26", "5ACA05F7-1e30-5a6b-82b9-64f1787ab26a", "a", "9", "-", "zz",
            "f0000000-0000-0000-0000-000000000000", "0fffffff-ffff-ffff-ffff-ffffffffffff",
        ]
        for a in texts {
            for b in texts {
                #expect((CompactText(a) < CompactText(b)) == (a < b), "\(a) < \(b)")
                #expect((CompactText(a) == CompactText(b)) == (a == b))
                if a == b { #expect(CompactText(a).hashValue == CompactText(b).hashValue) }
            }
        }
        #expect(Set(texts.map(ConsumerID.init)).count == texts.count)
        #expect(texts.map(UserID.init).sorted().map(\.rawValue) == texts.sorted())
    }

    @Test func planHashLinesFollowTheContract() {
        let action = SyncAction(
            gateway: "prod", kind: .disable, situation: .missing,
            consumer: Consumer(id: ConsumerID("c1"), username: "a", customID: "x", tags: ["t"]), user: nil,
            keys: [KeyRef(id: KeyID("k2"), fingerprint: "f"), KeyRef(id: KeyID("k1"), fingerprint: "f")], reason: "r")
        #expect(action.hashLine == "prod|disable|missing|c1||k1,k2")
    }

    /// Decoding against values written out by hand (not a round trip).
    @Test(arguments: [
        (#""a\/b""#, "a/b"), (#""\ud83d\ude00""#, "😀"), (#""\u00e9t\u00E9""#, "été"), (#""tab\tnl\n""#, "tab\tnl\n"),
        (#""\u0000""#, "\u{0}"), ("\"zoë\"", "zoë"),
    ])
    func decodesEscapes(_ json: String, _ expected: String) throws {
        #expect(try JSONParser.parse(json) == .string(expected))
    }

    @Test(arguments: [#""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\x""#])
    func rejectsBrokenEscapes(_ json: String) {
        #expect(throws: (any Error).self) { try JSONParser.parse(json) }
    }
}
