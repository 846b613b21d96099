/// Why sequences are missing: the numbers of protocol v3's `ar_loss_reason`,
/// so a LOSS record's code goes on the wire as it is.
package enum SpoolLossReason: UInt32, Sendable, CaseIterable {
    /// The agent's memory queue was full (the sender appends these).
    case queueFull = 1
    /// The spool was full: its oldest segment was evicted.
    case evicted = 2
    /// Spooled records failed their checksum.
    case corrupt = 3
    /// A collector refused them as breaking a rule.
    case refused = 4
}

/// The sequences first...last (inclusive) of one boot, lost for `reason`.
package struct SpoolLoss: Sendable, Equatable, CustomStringConvertible {
    package var first: UInt64
    package var last: UInt64
    package var reason: SpoolLossReason

    package init(first: UInt64, last: UInt64, reason: SpoolLossReason) {
        precondition(first <= last, "a loss range runs upwards: \(first)...\(last)")
        self.first = first
        self.last = last
        self.reason = reason
    }

    /// How many sequences the range holds (saturated).
    package var count: UInt64 { last &- first &+ 1 == 0 ? .max : last - first + 1 }

    /// What a LOSS record's count field says.
    var savedCount: UInt32 { UInt32(clamping: count) }

    package var description: String { "\(reason) \(first)...\(last)" }
}

/// What a `SpoolReader` yields, in sequence order.
package enum SpoolRecord {
    /// `count` events numbered from `firstSequence`, as the caller appended
    /// them. `payload` points into the reader's buffer: valid until the
    /// reader's next call. The first record after `from` / `rewind(to:)` may
    /// start below that sequence (records are never split): skip what is below.
    case events(firstSequence: UInt64, count: UInt32, payload: UnsafeRawBufferPointer)
    /// Sequences the spool does not hold: evicted, corrupt, or a loss the
    /// caller appended (queue full). Disjoint from everything else yielded.
    case loss(SpoolLoss)

    /// The first sequence it accounts for.
    package var firstSequence: UInt64 {
        switch self {
        case .events(let first, _, _): first
        case .loss(let loss): loss.first
        }
    }

    /// The last sequence it accounts for.
    package var lastSequence: UInt64 {
        switch self {
        case .events(let first, let count, _): first &+ UInt64(count) &- 1
        case .loss(let loss): loss.last
        }
    }
}
