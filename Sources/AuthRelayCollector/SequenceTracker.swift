import AuthRelayProtocol

/// One reporting agent in one boot: sequences restart when either changes.
package struct AgentKey: Hashable, Sendable {
    package var agentID: String
    package var bootID: String
}

/// What the collector knows of one (agent id, boot id) pair: what a checkpoint
/// records, and what GET_STATS version 3 shows.
package struct TrackedPair: Sendable {
    package var key: AgentKey
    /// The highest sequence handled (written, or accounted for by a loss line); 0 when none.
    package var highest: UInt64
    package var dropReport: SequenceTracker.DropReport?
    /// A boot_end line was written for this pair.
    package var bootEnded: Bool
    /// Its last line went to the output file now being written (not to one rotated
    /// away since): what the output must still hold if that file is intact.
    package var inCurrentFile: Bool
}

/// The highest sequence written per (agent id, boot id): what de-duplication
/// and gap detection compare each batch with; and per pair, what the agent
/// last said of itself (version 3) and whether its boot's end was recorded.
///
/// Bounded: past `capacity` pairs, the least recently reported tenth is
/// forgotten (a pair that reports again starts over, so a very late retry of
/// a forgotten pair could be written twice; a pair is new after each boot).
package struct SequenceTracker {
    private struct Entry {
        var highest: UInt64
        var lastUsed: UInt64
        var dropReport: DropReport?
        /// Version 3: the header's status of its last batch, and when that batch came (CLOCK_REALTIME).
        var status: AgentStatus?
        var lastReportNanoseconds: UInt64 = 0
        var bootEnded = false
        var inCurrentFile = false
    }

    /// The last header drop count recorded for a pair and the first_seq of its
    /// batch. A batch with no events (sent only to report drops) has no sequence
    /// of its own to de-duplicate by: a retry of it is recognised by this.
    package struct DropReport: Equatable, Sendable {
        package var beforeSequence: UInt64
        package var count: UInt64
    }

    package let capacity: Int
    private var entries: [AgentKey: Entry] = [:]
    private var clock: UInt64 = 0
    /// While a group of reports is being stored (the collector's writer thread,
    /// CollectorCore+Group.swift): every touched pair's entry as it was before
    /// the group (nil inside: it did not exist), to put back if the group's
    /// commit fails.
    private var journal: Journal?

    private struct Journal {
        var before: [AgentKey: Entry?] = [:]
        var clock: UInt64
        /// Pairs that had lines written in the group (for a rotation at its commit).
        var written: Set<AgentKey> = []
    }

    package init(capacity: Int) {
        self.capacity = max(16, capacity)
    }

    package var count: Int { entries.count }

    /// 0 when nothing was written for this pair yet.
    package func highest(_ key: AgentKey) -> UInt64 {
        entries[key]?.highest ?? 0
    }

    package func lastDropReport(_ key: AgentKey) -> DropReport? {
        entries[key]?.dropReport
    }

    package func bootEnded(_ key: AgentKey) -> Bool {
        entries[key]?.bootEnded ?? false
    }

    /// Raises the pair's highest sequence to `sequence` (never lowers it) and
    /// remembers `dropReport` when one was recorded.
    package mutating func record(_ key: AgentKey, highest sequence: UInt64, dropReport: DropReport? = nil) {
        update(key) { entry in
            entry.highest = max(entry.highest, sequence)
            if let dropReport { entry.dropReport = dropReport }
        }
    }

    /// The pair just had lines written to the current output file: `record` and
    /// the mark in one update (once per batch).
    package mutating func recordWritten(_ key: AgentKey, highest sequence: UInt64, dropReport: DropReport? = nil) {
        journal?.written.insert(key)
        update(key) { entry in
            entry.highest = max(entry.highest, sequence)
            if let dropReport { entry.dropReport = dropReport }
            entry.inCurrentFile = true
        }
    }

    /// The pair just had a line written to the current output file.
    package mutating func markWritten(_ key: AgentKey) {
        journal?.written.insert(key)
        update(key) { $0.inCurrentFile = true }
    }

    /// A version 3 batch of the pair came with `status` at `nanoseconds`.
    package mutating func heard(_ key: AgentKey, status: AgentStatus, at nanoseconds: UInt64) {
        update(key) { entry in
            entry.status = status
            entry.lastReportNanoseconds = nanoseconds
        }
    }

    package mutating func recordBootEnd(_ key: AgentKey) {
        update(key) { $0.bootEnded = true }
    }

    /// What a checkpoint said of a pair (never lowers what is known).
    package mutating func restore(_ pair: TrackedPair) {
        update(pair.key) { entry in
            entry.highest = max(entry.highest, pair.highest)
            if let report = pair.dropReport { entry.dropReport = report }
            entry.bootEnded = entry.bootEnded || pair.bootEnded
            entry.inCurrentFile = entry.inCurrentFile || pair.inCurrentFile
        }
    }

    /// The output was rotated: no pair's last line is in the new file yet.
    /// O(pairs), once per rotation (every --rotate-size bytes), never per batch.
    package mutating func outputRotated() {
        for key in entries.keys { entries[key]!.inCurrentFile = false }
    }

    private mutating func update(_ key: AgentKey, _ change: (inout Entry) -> Void) {
        remember(key)
        clock &+= 1
        if var entry = entries[key] {
            change(&entry)
            entry.lastUsed = clock
            entries[key] = entry
            return
        }
        var entry = Entry(highest: 0, lastUsed: clock)
        change(&entry)
        entries[key] = entry
        if entries.count > capacity { forgetLeastRecent() }
    }

    private mutating func forgetLeastRecent() {
        let forget = max(1, capacity / 10)
        let oldest = entries.sorted { $0.value.lastUsed < $1.value.lastUsed }.prefix(forget).map(\.key)
        for key in oldest {
            remember(key)
            entries[key] = nil
        }
    }

    // MARK: Groups

    /// Starts recording what changes, to undo it if the group is not stored.
    package mutating func beginGroup() {
        journal = Journal(clock: clock)
    }

    /// The group is stored: its changes stay. `outputRotated`: the output was
    /// rotated just before the group's lines went out, so only the pairs the
    /// group wrote have their last line in the new file.
    package mutating func commitGroup(outputRotated rotated: Bool) {
        guard let done = journal else { return }
        journal = nil
        if rotated {
            outputRotated()
            for key in done.written where entries[key] != nil { entries[key]!.inCurrentFile = true }
        }
    }

    /// The group was not stored: every pair is put back as it was before it.
    package mutating func rollbackGroup() {
        guard let undo = journal else { return }
        journal = nil
        for (key, entry) in undo.before { entries[key] = entry }
        clock = undo.clock
    }

    /// Keeps the entry as it was before the group, the first time the group touches it.
    private mutating func remember(_ key: AgentKey) {
        guard journal != nil, journal!.before[key] == nil else { return }
        journal!.before[key] = .some(entries[key])
    }

    /// Every pair, least recently used first (for checkpoints).
    package var snapshot: [TrackedPair] {
        entries.sorted { $0.value.lastUsed < $1.value.lastUsed }.map {
            TrackedPair(key: $0.key, highest: $0.value.highest, dropReport: $0.value.dropReport, bootEnded: $0.value.bootEnded,
                        inCurrentFile: $0.value.inCurrentFile)
        }
    }

    /// The pairs that sent a version 3 batch, the most recently heard first, at
    /// most `limit`: one pass keeping the `limit` most recent (GET_STATS may be
    /// called by anyone, so no sort of every pair per call).
    package func views(limit: Int) -> [AgentView] {
        guard limit > 0 else { return [] }
        var kept: [(key: AgentKey, entry: Entry)] = []
        kept.reserveCapacity(limit + 1)
        for (key, entry) in entries where entry.status != nil {
            if kept.count == limit, let last = kept.last, !Self.heardLater(entry, than: last.entry) { continue }
            let index = kept.firstIndex { Self.heardLater(entry, than: $0.entry) } ?? kept.count
            kept.insert((key, entry), at: index)
            if kept.count > limit { kept.removeLast() }
        }
        return kept.map {
            AgentView(agentID: $0.key.agentID, bootID: $0.key.bootID, highestSequence: $0.entry.highest,
                      lastReportNanoseconds: $0.entry.lastReportNanoseconds, status: $0.entry.status ?? AgentStatus())
        }
    }

    /// The later report; the same nanosecond goes by the order reports were handled.
    private static func heardLater(_ entry: Entry, than other: Entry) -> Bool {
        (entry.lastReportNanoseconds, entry.lastUsed) > (other.lastReportNanoseconds, other.lastUsed)
    }
}
