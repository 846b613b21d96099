/// One reporting agent in one boot: sequences restart when either changes.
package struct AgentKey: Hashable, Sendable {
    package var agentID: String
    package var bootID: String
}

/// The highest sequence written per (agent id, boot id): what de-duplication
/// and gap detection compare each batch with.
///
/// Bounded: past `capacity` pairs, the least recently reported tenth is
/// forgotten (a pair that reports again starts over, so a very late retry of
/// a forgotten pair could be written twice; a pair is new after each boot).
package struct SequenceTracker {
    private struct Entry {
        var highest: UInt64
        var lastUsed: UInt64
        var dropReport: DropReport?
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

    /// Raises the pair's highest sequence to `sequence` (never lowers it) and
    /// remembers `dropReport` when one was recorded.
    package mutating func record(_ key: AgentKey, highest sequence: UInt64, dropReport: DropReport? = nil) {
        clock &+= 1
        if var entry = entries[key] {
            entry.highest = max(entry.highest, sequence)
            entry.lastUsed = clock
            if let dropReport { entry.dropReport = dropReport }
            entries[key] = entry
            return
        }
        entries[key] = Entry(highest: sequence, lastUsed: clock, dropReport: dropReport)
        if entries.count > capacity { forgetLeastRecent() }
    }

    private mutating func forgetLeastRecent() {
        let forget = max(1, capacity / 10)
        let oldest = entries.sorted { $0.value.lastUsed < $1.value.lastUsed }.prefix(forget).map(\.key)
        for key in oldest { entries[key] = nil }
    }

    /// Every pair, least recently used first (for checkpoints).
    package var snapshot: [(key: AgentKey, highest: UInt64, dropReport: DropReport?)] {
        entries.sorted { $0.value.lastUsed < $1.value.lastUsed }.map { ($0.key, $0.value.highest, $0.value.dropReport) }
    }
}
