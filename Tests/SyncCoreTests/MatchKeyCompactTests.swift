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
            #expect(text.withUTF8 { String(decoding: $0, as: UTF8.self) } == v)
            #expect(text.isEmpty == v.isEmpty)
        }
        #expect(CompactText("").isEmpty)
    }
}
