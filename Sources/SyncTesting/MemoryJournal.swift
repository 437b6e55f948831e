import Synchronization
import SyncCore
import SyncEngine

/// An in-memory journal for engine tests: records in order (with seq), and an append that can fail.
public final class MemoryJournal: JournalStore, Sendable {
    private let records = Mutex<[[String: JSONValue]]>([])
    /// Once this many records are in, appends fail (a full disk); nil never fails. A group append
    /// that would go past it fails whole, as the file journal takes a group back.
    private let failAfter: Int?

    public init(failAfter: Int? = nil) { self.failAfter = failAfter }

    public struct Full: Error, CustomStringConvertible {
        public var description: String { "no space left on device" }
    }

    @discardableResult
    public func append(contentsOf events: [JournalEvent]) throws -> [Int64] {
        try records.withLock { list in
            if let failAfter, list.count + events.count > failAfter { throw Full() }
            return events.map { event in
                var record = event.fields
                record["seq"] = .int(Int64(list.count + 1))
                list.append(record)
                return Int64(list.count)
            }
        }
    }

    public var head: String { records.withLock { "\($0.count):memory" } }

    /// Every record appended, in order.
    public var all: [JSONValue] { records.withLock { $0.map(JSONValue.object) } }

    /// Every record appended, decoded as a reader would (time is "?": this twin keeps no clock).
    public var entries: [JournalEntry] { all.compactMap { JournalEntry(record: $0) } }

    /// `event action consumer-id` of intents and outcomes, and the event of the rest.
    public var lines: [String] {
        all.map { r in
            let event = r["event"]?.stringValue ?? "?"
            guard event == "intent" || event == "outcome" else { return event }
            let what = "\(event) \(r["action"]?.stringValue ?? "?") \(r["consumer"]?["id"]?.stringValue ?? "?")"
            return event == "outcome" ? what + " " + (r["outcome"]?.stringValue ?? "?") : what
        }
    }
}

/// Opens a `MemoryJournal` for a run, reporting what a real journal's opening might have found.
public struct MemoryJournalOpening: JournalOpening {
    public var journal: MemoryJournal
    public var repaired: String?
    public var interrupted: (run: String, intentsWithoutOutcome: [Int64])?
    public var lastGoodUsers: Int?

    public init(
        journal: MemoryJournal, repaired: String? = nil, interrupted: (run: String, intentsWithoutOutcome: [Int64])? = nil,
        lastGoodUsers: Int? = nil
    ) {
        self.journal = journal
        self.repaired = repaired
        self.interrupted = interrupted
        self.lastGoodUsers = lastGoodUsers
    }

    public func openForRun() throws -> OpenedJournal {
        OpenedJournal(store: journal, lock: "memory lock", lastGoodUsers: lastGoodUsers, repaired: repaired, interrupted: interrupted)
    }
}
