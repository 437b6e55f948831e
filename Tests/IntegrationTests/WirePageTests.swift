import SyncCore
import Testing

@testable import KongGateway

/// `Wire.consumerPage` reads `GET /consumers` pages without a tree; it must mean exactly what the
/// tree reading (`jsonPage`, then `consumer`) means, and refuse what the strict parser refuses.
@Suite("Kong consumer pages decoded without a tree")
struct WirePageTests {
    /// The tree reading, for comparison.
    func viaTree(_ body: String) throws -> Page<Consumer?>? {
        try Wire.jsonPage(Array(body.utf8)).map { Page<Consumer?>(items: $0.items.map { Wire.consumer($0) }, next: $0.next) }
    }

    func streamed(_ body: String) throws -> Page<Consumer?>? {
        try Wire.consumerPage(Array(body.utf8), tags: TagInterner())
    }

    @Test(arguments: [
        #"{"data":[],"next":null}"#,
        #"{"data":[{"id":"c1","username":"alice","custom_id":"u-1","tags":["idp-managed","x"],"created_at":1}],"offset":"b2Zm"}"#,
        #"{"offset":null,"data":[{"id":"c1"},{"tags":[]},{"id":7},{"id":"c2","tags":null,"username":null}]}"#,
        #"{"data":[{"id":"c\u00e9\/1","username":"z\u00f6e","tags":["a",1,null,{"x":[1,2]},"b"]}]}"#,
        #"{"data":[1,"x",null,[],{}],"offset":"o"}"#,
        #"{"data":{"id":"c1"}}"#,
        #"{"dat":[]}"#,
        #"[{"id":"c1"}]"#,
        #"{"data":[{"id":"c1","config":{"deep":[{"a":{"b":[true,false,null,-1.5e3]}}]},"tags":["t"]}],"offset":7}"#,
        #"{"data":[{"id":"c1"}],"offset":{"o":1}}"#,
        #"  {"data" : [ { "id" : "c1" , "tags" : [ "t" ] } ] , "offset" : "x" }  "#,
        #"{"data":[{"id":"c1","username":"\ud83d\ude00"}],"extra":{"id":"ignored"}}"#,
    ])
    func meansWhatTheTreeMeans(_ body: String) throws {
        let tree = try viaTree(body), fast = try streamed(body)
        #expect(fast?.items == tree?.items, "\(body)")
        #expect(fast?.next == tree?.next, "\(body)")
        #expect((fast == nil) == (tree == nil), "\(body)")
    }

    @Test(arguments: [
        #"{"data":[{"id":"c1"}],"offset":"x""#,
        #"{"data":[{"id":"c1",}]}"#,
        #"{"data":[{"id":"c1"}]}x"#,
        #"{"data":[{"id":"c1","junk":[01]}]}"#,
        #"{"data":[{"id":"c1","junk":"\x"}]}"#,
        #"{"data":[{"id":"c1","junk":"\ud83d"}]}"#,
        "{\"data\":[{\"id\":\"c1\",\"junk\":\"tab\there\"}]}",
        #"{"data":[{"id":"c1","junk":tru}]}"#,
        #"{"data":[],"data":[]}"#,
        #"{"data":[],"offset":"a","offset":"b"}"#,
        #"{"data":[{"id":"c1","id":"c2"}]}"#,
        #"{"data":[{"id":"c1","tags":["a"],"tags":["b"]}]}"#,
        #"{"data":[{"id":"c1","username":"a","username":"b"}]}"#,
        #"{"data":[{"id":"c1","custom_id":"a","custom_id":"b"}]}"#,
        #"{"data":[{"id":"c1""#,
        "",
    ])
    func refusesWhatTheParserRefuses(_ body: String) {
        #expect(throws: JSONParser.Error.self, "\(body)") { try streamed(body) }
        #expect(throws: JSONParser.Error.self, "\(body)") { try viaTree(body) }
    }

    @Test func invalidUTF8AnywhereIsRefused() {
        for body in [
            Array(#"{"data":[{"id":"c"#.utf8) + [0xFF] + Array(#""}]}"#.utf8),
            Array(#"{"data":[{"id":"c1","junk":""#.utf8) + [0xC3, 0x28] + Array(#""}]}"#.utf8),
        ] {
            #expect(throws: JSONParser.Error.self) { try Wire.consumerPage(body, tags: TagInterner()) }
            #expect(throws: JSONParser.Error.self) { try Wire.jsonPage(body) }
        }
    }

    @Test func nestingIsBoundedWhereNothingIsRead() {
        let deep = #"{"data":[{"id":"c1","junk":"# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}]}"
        #expect(throws: JSONParser.Error.self) { try streamed(deep) }
        #expect(throws: JSONParser.Error.self) { try viaTree(deep) }
    }

    @Test func equalTagArraysAreSharedUpToTheLimit() throws {
        let interner = TagInterner(limit: 1)
        let body = #"{"data":[{"id":"a","tags":["t","u"]},{"id":"b","tags":["t","u"]},{"id":"c","tags":["v"]},{"id":"d","tags":["v"]}]}"#
        let page = try #require(try Wire.consumerPage(Array(body.utf8), tags: interner))
        let tags = page.items.map { $0!.tags! }
        #expect(tags == [["t", "u"], ["t", "u"], ["v"], ["v"]])
        func storage(_ a: [String]) -> UnsafeRawPointer? { a.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
        #expect(storage(tags[0]) == storage(tags[1]))
        #expect(storage(tags[2]) != storage(tags[3]))
    }
}
