import Testing

@testable import SyncCore

/// The planner hashes and compares match values as `CompactText` (a packed UUID spelled on the
/// stack, or compared as bits). Each fast path must agree with the string path it replaces.
@Suite("Match keys over compact values agree with the string path")
struct MatchKeyCompactTests {
    static let values = [
        "5aca05f7-1e30-5a6b-82b9-64f1787ab26a", "5ACA05F7-1E30-5A6B-82B9-64F1787AB26A", "5aca05f7-1E30-5a6b-82b9-64f1787ab26a",
        "5aca05f7-1e30-5a6b-82b9-64f1787ab26b", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "5aca05f7-1e30-5a6b-82b9-64f1787ab26", "5aca05f7x1e30-5a6b-82b9-64f1787ab26a", "alice", "ALICE", "Ålice", "ålice",
        "gone-c-1", "5aca05f7-1e30-5a6b-82b9-64f1787ab2ｇ",
    ]

    @Test(arguments: [MatchRule.UserField.id, .username])
    func hashesAgree(_ field: MatchRule.UserField) {
        for v in Self.values {
            #expect(MatchKey.hash(CompactText(v), as: field) == MatchKey.hash(v, as: field), "\(v)")
        }
    }

    @Test(arguments: [MatchRule.UserField.id, .username])
    func keysAreTheNormalisedText(_ field: MatchRule.UserField) {
        for v in Self.values {
            #expect(MatchKey.key(CompactText(v), as: field) == CompactText(MatchKey.normalize(v, as: field)), "\(v)")
        }
    }

    @Test(arguments: [MatchRule.UserField.id, .username])
    func sameAgrees(_ field: MatchRule.UserField) {
        for a in Self.values {
            for b in Self.values {
                let strings = MatchKey.same(a, b, as: field)
                #expect(MatchKey.same(CompactText(a), CompactText(b), as: field) == strings, "\(a) ~ \(b)")
                #expect(strings == (MatchKey.normalize(a, as: field) == MatchKey.normalize(b, as: field)), "\(a) ~ \(b)")
            }
        }
    }

    @Test func aPackedUUIDSpellsItsText() {
        for v in Self.values {
            let text = CompactText(v)
            #expect(text.string == v)
            #expect(text.isEmpty == v.isEmpty)
        }
        #expect(CompactText("").isEmpty)
    }

    @Test func packingFromBytesAgreesWithPackingAString() throws {
        for v in Self.values + ["", "5aca05f7-1e30-5a6b-82b9-64f1787ab26\u{0}", "5aca05f7\u{2D}1e30-5a6b-82b9-64f1787ab26a"] {
            let fromBytes = Array(v.utf8).withUnsafeBufferPointer { CompactText(validating: $0) }
            #expect(fromBytes == CompactText(v), "\(v)")
            #expect(fromBytes?.isPacked == CompactText(v).isPacked)
        }
        let invalid: [UInt8] = [0xC3, 0x28]
        #expect(invalid.withUnsafeBufferPointer { CompactText(validating: $0) } == nil)
    }

    @Test func aReaderPacksOnlyWhatStringWouldReadAsTheSameText() throws {
        let cases = [
            #""5aca05f7-1e30-5a6b-82b9-64f1787ab26a""#, #"  "5aca05f7-1e30-5a6b-82b9-64f1787ab26a""#,
            #""5ACA05F7-1e30-5a6b-82b9-64f1787ab26a""#, #""\u0035aca05f7-1e30-5a6b-82b9-64f1787ab26a""#,
            #""5aca05f7-1e30-5a6b-82b9-64f1787ab26""#, #""alice""#, #""""#,
        ]
        for json in cases {
            let bytes = Array(json.utf8)
            let packed = try JSONReader.read(bytes) { try $0.compactText() }
            let text = try JSONReader.read(bytes) { try $0.string() }
            #expect(packed == CompactText(text), "\(json)")
        }
        for broken in [#""5aca05f7-1e30-5a6b-82b9-64f1787ab26a"#, "5", #""5aca05f7-1e30-5a6b-82b9-64f1787ab26a\""#] {
            #expect(throws: JSONReader.Error.self) { try JSONReader.read(Array(broken.utf8)) { try $0.compactText() } }
        }
    }

    @Test func aReaderMatchesKeysAsBytesOrAsText() throws {
        let names: [StaticString] = ["id", "username", "custom_id"]
        let cases: [(String, Int?)] = [
            (#"{"id": 1}"#, 0), (#"{ "custom_id" : 1}"#, 2), (#"{"\u0069d": 1}"#, 0), (#"{"idx": 1}"#, nil),
            (#"{"i": 1}"#, nil), (#"{"usérname": 1}"#, nil), (#"{"": 1}"#, nil),
        ]
        for (json, expected) in cases {
            let found = try JSONReader.read(Array(json.utf8)) { reader -> Int? in
                _ = try reader.beginObject()
                let index = try reader.key(in: names)
                try reader.skipValue()
                _ = try reader.nextMember()
                return index
            }
            #expect(found == expected, "\(json)")
        }
        for broken in [#"{"id" 1}"#, #"{"id"#, "{id: 1}", "{\"i\u{1}d\": 1}", #"{"\ud800": 1}"#] {
            #expect(throws: JSONReader.Error.self, "\(broken)") {
                try JSONReader.read(Array(broken.utf8)) { reader in
                    _ = try reader.beginObject()
                    _ = try reader.key(in: names)
                }
            }
        }
    }
}
