import SyncCore
import SyncEngine

/// The client side of Active Directory's `uSNChanged` polling as a pure state machine: what the
/// feed knows of each entry (by objectGUID), the server and USN that knowledge is valid up to, and
/// the diff of one poll against it. `ActiveDirectoryFeed` does the I/O. Deterministic: a poll's
/// changes come in the order of their `uSNChanged` (the directory's own order), then by key.
///
/// The mark is the rootDSE's `highestCommittedUSN` read *before* a complete read or poll began:
/// every change committed after it carries a higher USN, so the next poll (`uSNChanged>=mark+1`)
/// sees it whether or not this read did. Never the highest `uSNChanged` seen in the results: an
/// entry changed while a paged search was under way can carry a USN below one already returned
/// and would be skipped for good.
struct USNSession: Sendable {
    /// Which domain controller, and how far into its history.
    struct Mark: Sendable, Equatable {
        /// The DC's `invocationId` (its NTDS Settings object): a restore or another DC changes it.
        var invocationID: String
        /// The rootDSE's `highestCommittedUSN`.
        var usn: Int64
    }

    /// One entry as a search returned it.
    struct Entry: Sendable, Equatable {
        /// The objectGUID as text.
        var key: String
        /// The user it maps to; nil for a tombstone, an entry outside the filter, or one without a
        /// readable id (then what was known of it is kept).
        var user: DirectoryUser?
        var usn: Int64
        /// `whenChanged`, unix seconds.
        var changedAt: Double?

        init(_ key: String, _ user: DirectoryUser?, usn: Int64, changedAt: Double? = nil) {
            self.key = key
            self.user = user
            self.usn = usn
            self.changedAt = changedAt
        }
    }

    /// What one poll read, all after the server's mark was read.
    struct Poll: Sendable {
        /// Entries that match the filter: those changed since the last mark, or every one when
        /// `complete` (a full read, after a group changed under a `memberOf` filter).
        var matched: [Entry] = []
        var complete = false
        /// Every object of the domain changed since the last mark (filter or not), read after
        /// `matched`: key → uSNChanged.
        var changed: [String: Int64] = [:]
        /// Tombstones (`isDeleted`) changed since the last mark.
        var deleted: [Entry] = []
    }

    /// What to do once the server's current mark is read.
    enum Step: Sendable, Equatable {
        /// Nothing known yet: read everything silently.
        case fullRead
        /// Read what changed since the mark.
        case poll(since: Int64)
        /// What is known no longer describes this server: start over (the caller says so).
        case refreshRequired(String)
    }

    /// What the feed knows of each entry in scope, by objectGUID.
    private(set) var users: [String: DirectoryUser] = [:]
    /// The server and USN `users` is valid up to; nil before a first complete read.
    private(set) var mark: Mark?
    /// A connection was lost since the last `.live`: the next complete poll says `.live(resumed: true)`.
    private(set) var resuming = false

    /// Decides from the server's current mark; a mark from another DC (invocationId) or one that
    /// went back (a restore) cannot be continued from.
    func step(_ server: Mark) -> Step {
        guard let mark else { return .fullRead }
        if server.invocationID != mark.invocationID {
            return .refreshRequired(
                "the domain controller's invocationId changed from \(mark.invocationID) to \(server.invocationID) (another DC answers, or it was restored from a backup); uSNChanged values do not carry over"
            )
        }
        if server.usn < mark.usn {
            return .refreshRequired(
                "highestCommittedUSN went back from \(mark.usn) to \(server.usn) (the directory was restored from a backup)"
            )
        }
        return .poll(since: mark.usn)
    }

    /// A complete silent read taken after `server` was read: it replaces everything known.
    mutating func filled(_ entries: [Entry], at server: Mark) -> [FeedEvent] {
        users = [:]
        for entry in entries { if let user = entry.user { users[entry.key] = user } }
        mark = server
        resuming = false
        return [.live(resumed: false)]
    }

    /// Applies a complete poll taken after `server` was read: every entry whose state differs
    /// from what was known is a `.changed`, then `.live(resumed: true)` if a connection was lost
    /// since the last one. An entry counts as gone (now nil) when it is a tombstone, or when it is
    /// absent from `matched` although `changed` shows it unchanged since `server.usn` (so it was
    /// the same throughout the poll, and the filter no longer selects it, or it left base_dn);
    /// one changed after the mark was read is left for the next poll, which reads it again.
    mutating func apply(_ poll: Poll, at server: Mark) -> [FeedEvent] {
        var candidates: [String: Entry] = [:]
        func offer(_ entry: Entry) {
            if let current = candidates[entry.key], current.usn > entry.usn { return }
            candidates[entry.key] = entry
        }
        var matchedKeys: Set<String> = []
        for entry in poll.matched {
            matchedKeys.insert(entry.key)
            if entry.user != nil { offer(entry) }
        }
        if poll.complete {
            for key in users.keys where !matchedKeys.contains(key) {
                let usn = poll.changed[key] ?? server.usn
                if usn <= server.usn { offer(Entry(key, nil, usn: usn)) }
            }
        } else {
            for (key, usn) in poll.changed where usn <= server.usn && !matchedKeys.contains(key) && users[key] != nil {
                offer(Entry(key, nil, usn: usn))
            }
        }
        for entry in poll.deleted where users[entry.key] != nil || candidates[entry.key] != nil {
            offer(Entry(entry.key, nil, usn: entry.usn, changedAt: entry.changedAt))
        }
        var events: [FeedEvent] = []
        for entry in candidates.values.sorted(by: { ($0.usn, $0.key) < ($1.usn, $1.key) }) {
            let before = users[entry.key]
            guard before != entry.user else { continue }
            if let user = entry.user { users[entry.key] = user } else { users.removeValue(forKey: entry.key) }
            events.append(.changed(key: entry.key, before: before, now: entry.user, changedAt: entry.changedAt))
        }
        mark = server
        if resuming {
            resuming = false
            events.append(.live(resumed: true))
        }
        return events
    }

    /// A read or poll did not complete: nothing is concluded from it; the next complete poll
    /// continues from the same mark.
    mutating func interrupted() {
        if mark != nil { resuming = true }
    }

    /// The server cannot be continued from: everything is forgotten, the next read is a fresh one.
    mutating func reset() {
        users = [:]
        mark = nil
        resuming = false
    }

    /// Test hook: pretend the last mark was another.
    mutating func replaceMark(_ value: Mark) { mark = value }
}
