/// Version 3's batch rule (Docs/Protocol.md): a batch accounts for one
/// contiguous range `first_seq...last`, every sequence in it exactly one event
/// of the batch or inside exactly one loss range; events ascending, losses
/// ascending and disjoint, each loss `first_seq <= last_seq` with a reason the
/// protocol defines. A batch with no events and no losses accounts for nothing.
///
/// Every step is checked arithmetic: a range may end at `UInt64.max`, and
/// nothing may follow it.
enum BatchRule {
    /// The highest sequence `batch` accounts for (`first_seq - 1` when it
    /// accounts for none), or nil when it breaks the rule.
    static func lastAccounted(_ batch: ReceivedBatch) -> UInt64? {
        let first = batch.firstSequence
        guard first > 0 else { return nil }
        // The next sequence to account for; nil once the range has reached UInt64.max.
        var next: UInt64? = first
        var event = batch.events.startIndex
        var loss = batch.losses.startIndex
        while event < batch.events.endIndex || loss < batch.losses.endIndex {
            guard let expected = next else { return nil }  // something after UInt64.max
            if event < batch.events.endIndex, batch.events[event].sequence == expected {
                event += 1
                next = expected == .max ? nil : expected + 1
            } else if loss < batch.losses.endIndex, case let range = batch.losses[loss], range.first == expected,
                      range.last >= range.first, RangeReason(range.reason) != nil {
                loss += 1
                next = range.last == .max ? nil : range.last + 1
            } else {
                return nil
            }
        }
        return next.map { $0 - 1 } ?? .max  // next >= first >= 1
    }
}
