import SyncCore
import SyncEngine

/// The client side of RFC 4533 as a pure state machine: what the feed knows of each entry (by
/// entryUUID), the cookie that knowledge corresponds to, and the refresh in progress. Messages in,
/// `FeedEvent`s out; `LDAPDirectoryFeed` does the I/O and evaluates `disabled_filter` before it
/// hands a user in. Deterministic: events come in message order, deletions concluded at the end
/// of a present phase in key order.
///
/// A refresh is staged and applied only when the server says it is done, so an interrupted refresh
/// (a dropped connection, result 4, any non-success) concludes nothing and leaves `users` and
/// `cookie` as they were: the next search resumes from the same cookie. A fresh refresh (no cookie:
/// nothing known, nothing delivered) writes straight into `entries` and is taken back if it ends
/// early, which is the same and holds each entry once.
struct SyncSession: Sendable {
    enum Phase: Sendable, Equatable {
        case idle
        case refreshing
        case persisting
    }

    /// What the feed knows of each entry in scope, by entryUUID (held packed: a watch keeps one
    /// per user for as long as it runs).
    private(set) var entries: [CompactText: DirectoryUser] = [:]
    /// `entries` by their keys as text (for tests and diagnostics; it copies).
    var users: [String: DirectoryUser] {
        Dictionary(uniqueKeysWithValues: entries.map { ($0.key.string, $0.value) })
    }
    /// The server's cookie for `users`; nil before a first refresh (or a server that gives none).
    private(set) var cookie: [UInt8]?
    private(set) var phase: Phase = .idle
    /// The refresh in progress continues from `cookie`; otherwise it rebuilds `users` silently.
    private(set) var resuming = false

    private struct Change: Sendable {
        var user: DirectoryUser?
        var changedAt: Double?
    }
    private var staged: [CompactText: Change] = [:]
    private var stagedOrder: [CompactText] = []
    private var stagedCookie: [UInt8]?
    /// The server answered an empty cookie during a resumed refresh: it did not know ours.
    private var cookieDropped = false
    /// Present phase: every entry the server named as still there. Kept only when resuming: a
    /// fresh refresh starts from nothing, so there is nothing for it to conclude gone.
    private var present: Set<CompactText> = []
    /// A `.live` was delivered since the last `.refreshRequired`.
    private var wasLive = false

    /// Entries known, staged and named present: the memory this session holds.
    var footprint: Int { entries.count + staged.count + present.count }

    /// A sync search starts; it resumes from `cookie` when there is one. Without one after a
    /// `.live`, the feed cannot resume and says so.
    mutating func begin() -> [FeedEvent] {
        clearRefresh()
        phase = .refreshing
        resuming = cookie != nil
        guard !resuming else { return [] }
        entries = [:]
        if wasLive {
            wasLive = false
            return [.refreshRequired("the server gave no cookie to resume from")]
        }
        return []
    }

    /// The search ended before its refresh was done: nothing is concluded from it.
    mutating func interrupted() {
        discardRefresh()
        phase = .idle
    }

    /// The server cannot continue from the cookie: everything is forgotten, the next search
    /// starts fresh (the caller delivers `.refreshRequired`).
    mutating func reset() {
        clearRefresh()
        entries = [:]
        cookie = nil
        phase = .idle
        wasLive = false
    }

    /// Test hook: the cookie the next search sends.
    mutating func replaceCookie(_ value: [UInt8]) { cookie = value }

    /// Staged entries that are active by their attributes: the ones `disabled_filter` may still
    /// deactivate before the refresh is applied (a fresh refresh's, in key order).
    var stagedActiveKeys: [String] {
        guard resuming else { return entries.filter { $0.value.state == .active }.keys.sorted().map(\.string) }
        return stagedOrder.filter { staged[$0]?.user?.state == .active }.map(\.string)
    }

    /// Whether `stagedActiveKeys` has any (without spelling them out).
    var hasStagedActive: Bool {
        resuming ? staged.values.contains { $0.user?.state == .active } : entries.values.contains { $0.state == .active }
    }

    /// Marks staged entries as matching `disabled_filter`.
    mutating func markDisabled(_ keys: Set<String>) {
        for key in keys.map(CompactText.init) {
            if resuming {
                guard staged[key]?.user?.state == .active else { continue }
                staged[key]?.user?.state = .deactivated
                staged[key]?.user?.deactivationReason = "matches disabled_filter"
            } else {
                guard entries[key]?.state == .active else { continue }
                entries[key]?.state = .deactivated
                entries[key]?.deactivationReason = "matches disabled_filter"
            }
        }
    }

    /// One entry and its Sync State. `user` is the entry's state for add and modify, nil for
    /// present and delete, and nil for an add or modify whose entry has no readable id (then what
    /// was known of it is kept; it still counts as present).
    mutating func entry(
        _ state: ContentSync.State, key text: String, user: DirectoryUser?, changedAt: Double?, cookie: [UInt8]?
    ) -> [FeedEvent] {
        let key = CompactText(text)
        switch phase {
        case .idle:
            return []
        case .refreshing:
            switch state {
            case .present:
                if resuming { present.insert(key) }
            case .add, .modify:
                if resuming { present.insert(key) }
                if let user { stage(key, Change(user: user, changedAt: changedAt)) }
            case .delete:
                stage(key, Change(user: nil, changedAt: changedAt))
            }
            store(cookie)
            return []
        case .persisting:
            var events: [FeedEvent] = []
            switch state {
            case .present:
                break
            case .add, .modify:
                if let user { events = apply(key, user, changedAt) }
            case .delete:
                events = apply(key, nil, changedAt)
            }
            store(cookie)
            return events
        }
    }

    /// A Sync Info message.
    mutating func info(_ info: ContentSync.Info) -> [FeedEvent] {
        guard phase != .idle else { return [] }
        var events: [FeedEvent] = []
        switch info {
        case .newCookie:
            break
        case .idSet(_, let refreshDeletes, let uuids):
            if refreshDeletes {
                for key in uuids.map(CompactText.init) {
                    if phase == .refreshing {
                        stage(key, Change(user: nil, changedAt: nil))
                    } else {
                        events += apply(key, nil, nil)
                    }
                }
            } else if phase == .refreshing && resuming {
                present.formUnion(uuids.map(CompactText.init))
            }
        case .refreshPresent:
            if phase == .refreshing { endPresentPhase() }
        case .refreshDelete:
            break
        }
        store(info.cookie)
        if phase == .refreshing && info.refreshDone { events += finishRefresh() }
        return events
    }

    /// A successful SearchResultDone with its Sync Done control (nil when it had none). A refresh
    /// it ends is applied (its deletions as `refreshDeletes` says); one without the control is
    /// not. The search is over either way.
    mutating func done(_ value: ContentSync.DoneValue?) -> [FeedEvent] {
        defer { phase = .idle }
        guard phase == .refreshing else {
            if phase == .persisting { store(value?.cookie) }
            return []
        }
        guard let value else {
            discardRefresh()
            return []
        }
        store(value.cookie)
        if !value.refreshDeletes { endPresentPhase() }
        return finishRefresh()
    }

    /// Applies the staged refresh: delivers its changes when resuming (silent otherwise), takes its
    /// cookie, and goes live. A resumed refresh that the server answered with an empty cookie did
    /// not continue from ours: then everything is forgotten and `.refreshRequired` is all it says.
    mutating func finishRefresh() -> [FeedEvent] {
        guard phase == .refreshing else { return [] }
        if resuming && cookieDropped {
            reset()
            return [.refreshRequired("the server did not continue from the cookie (it answered an empty one)")]
        }
        var events: [FeedEvent] = []
        for key in stagedOrder {
            guard let change = staged[key] else { continue }
            let before = entries[key]
            if let user = change.user { entries[key] = user } else { entries.removeValue(forKey: key) }
            if resuming && before != change.user {
                events.append(.changed(key: key.string, before: before, now: change.user, changedAt: change.changedAt))
            }
        }
        if let stagedCookie { cookie = stagedCookie }
        let resumed = resuming
        clearRefresh()
        phase = .persisting
        wasLive = true
        events.append(.live(resumed: resumed))
        return events
    }

    /// A resumed refresh is staged; a fresh one (silent, over an empty `entries`) goes straight
    /// into `entries`, so a watch never holds a million entries twice.
    private mutating func stage(_ key: CompactText, _ change: Change) {
        guard resuming else {
            if let user = change.user { entries[key] = user } else { entries.removeValue(forKey: key) }
            return
        }
        if staged.updateValue(change, forKey: key) == nil { stagedOrder.append(key) }
    }

    /// A change in the persist phase, delivered at once unless it changes nothing we model.
    private mutating func apply(_ key: CompactText, _ user: DirectoryUser?, _ changedAt: Double?) -> [FeedEvent] {
        let before = entries[key]
        if let user { entries[key] = user } else { entries.removeValue(forKey: key) }
        return before == user ? [] : [.changed(key: key.string, before: before, now: user, changedAt: changedAt)]
    }

    /// The end of a present phase: every known entry the server did not name is gone.
    private mutating func endPresentPhase() {
        if resuming {
            for key in entries.keys.sorted() where !present.contains(key) && staged[key] == nil {
                stage(key, Change(user: nil, changedAt: nil))
            }
        }
        present = []
    }

    private mutating func store(_ value: [UInt8]?) {
        guard let value else { return }
        if value.isEmpty {
            if phase == .refreshing && resuming { cookieDropped = true }
            return
        }
        if phase == .refreshing { stagedCookie = value } else { cookie = value }
    }

    /// A refresh that is not applied: a fresh one also takes back what it wrote into `entries`.
    private mutating func discardRefresh() {
        if phase == .refreshing && !resuming { entries = [:] }
        clearRefresh()
    }

    private mutating func clearRefresh() {
        staged = [:]
        stagedOrder = []
        stagedCookie = nil
        cookieDropped = false
        present = []
    }
}
