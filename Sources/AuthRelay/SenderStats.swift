import AuthRelayProtocol
import Synchronization
import SystemSupport

/// What the sender had not delivered when it stopped.
public struct ShutdownReport: Sendable, Equatable {
    public var stats: SenderStats
    /// Events submitted and queued but never acknowledged (the drain ran out of
    /// time or the collector was gone). With a spool, most of them wait there
    /// for the next run (`leftInSpool`).
    public var undelivered: UInt64
    /// Of `undelivered`, the events on disk: the next run delivers them (or
    /// reports them lost, should the spool evict them first).
    public var leftInSpool: UInt64 = 0

    public init(stats: SenderStats, undelivered: UInt64, leftInSpool: UInt64 = 0) {
        self.stats = stats
        self.undelivered = undelivered
        self.leftInSpool = leftInSpool
    }

    /// One line on the spool for a summary; nil when the sender ran without one.
    public var spoolSummary: String? {
        guard stats.spool != .off else { return nil }
        let oldest = stats.oldestSpooledAge.map { ", oldest waiting \($0.shortDescription)" } ?? ""
        return "spool \(stats.spool): spooled \(stats.spooled), replayed \(stats.replayed), evicted \(stats.spoolEvicted), "
            + "corrupt \(stats.spoolCorrupt), memory fallbacks \(stats.memoryFallbacks), "
            + "earlier runs delivered \(stats.earlierRunsDelivered), left in spool \(leftInSpool), "
            + "\(stats.spoolBytes) bytes in \(stats.spoolSegments) segments\(oldest)"
    }

    /// What went wrong with the events, one "what: count" each, for a
    /// summary's "problems:" line; empty when every event was delivered.
    public var problems: [String] {
        var problems: [String] = []
        func note(_ count: UInt64, _ text: String) {
            if count > 0 { problems.append("\(text): \(count)") }
        }
        note(stats.dropped + stats.evicted, "events dropped (memory queue full)")
        note(stats.spoolEvicted, "events evicted from a full spool")
        note(stats.spoolCorrupt, "events lost to a damaged spool")
        note(stats.rejected, "events the collector refused")
        if undelivered > 0 {
            let waiting = leftInSpool > 0 ? " (\(leftInSpool) left in the spool for the next run)" : ""
            problems.append("events not delivered: \(undelivered)\(waiting)")
        }
        if stats.sinkErrors > 0 {
            problems.append("collector sink errors (it could not store events; they were sent again): \(stats.sinkErrors) in \(stats.sinkErrorEpisodes) episodes")
        }
        return problems
    }

    /// submitted == acknowledged + dropped + evicted + rejected + spoolLost + undelivered.
    public var isBalanced: Bool {
        stats.submitted == stats.acknowledged + stats.dropped + stats.evicted + stats.rejected + stats.spoolLost + undelivered
    }
}

public struct SenderStats: Sendable, Equatable {
    /// Where undelivered events wait.
    public enum SpoolState: UInt8, Sendable, CustomStringConvertible {
        /// Configured without a spool: memory only, drops counted but not numbered.
        case off
        /// On disk (and a small window of them in memory).
        case disk
        /// The spool is configured but unusable: memory only until it is usable again.
        case memory

        public var description: String {
            switch self {
            case .off: "off"
            case .disk: "disk"
            case .memory: "memory (spool unusable)"
            }
        }
    }

    public var queueDepth: Int
    public var highWaterMark: Int
    /// How long the batch being delivered has waited, measured from its first
    /// event's own timestamp (nil when nothing is being delivered). Events still
    /// in the queue are younger.
    public var oldestUndeliveredAge: Duration?
    public var submitted: UInt64
    /// Events put on the wire, counting resends.
    public var sent: UInt64
    /// Events of this run acknowledged by the collector.
    public var acknowledged: UInt64
    /// Refused at submit: queue full or over its byte bound.
    public var dropped: UInt64
    /// Evicted from a full queue under `.dropOldest`.
    public var evicted: UInt64
    /// Refused by the collector as breaking a protocol rule (never retried).
    public var rejected: UInt64
    /// Batches (or version 1 events) sent again after a failed call.
    public var retries: UInt64
    public var reconnects: UInt64
    /// Fields cut to a protocol bound before sending (the event is still delivered).
    public var sanitized: UInt64
    /// Refused because they came after `close`; not part of `submitted`.
    public var refusedAfterClose: UInt64
    public var collectorVersion: ProtocolVersion?
    public var state: EventSender.State
    public var lastError: String?

    // MARK: The collectors

    /// SINK_ERROR answers: the collector could not store what it was sent (kept and sent again).
    public var sinkErrors: UInt64 = 0
    /// Runs of SINK_ERROR answers, each ended by a report the collector stored (each logged once).
    public var sinkErrorEpisodes: UInt64 = 0
    /// Times the sender moved to another of its collectors (back to the preferred one included).
    public var failovers: UInt64 = 0
    /// The collector in use: an index into the configuration's `endpoints`.
    public var activeCollector = 0

    // MARK: The spool (zero and nil without one)

    public var spool: SpoolState = .off
    /// Bytes of every boot's segments and loss files.
    public var spoolBytes: Int64 = 0
    public var spoolSegments = 0
    /// Age of the oldest spooled event not yet acknowledged (to a segment's fill time); nil when none.
    public var oldestSpooledAge: Duration?
    /// Events of this run written to the spool.
    public var spooled: UInt64 = 0
    /// Events read back from the spool to send (the live ones come from memory).
    public var replayed: UInt64 = 0
    /// Events lost to a full spool (every boot it holds), and to checksum failures.
    public var spoolEvicted: UInt64 = 0
    public var spoolCorrupt: UInt64 = 0
    /// Of this run's events, those the delivery found evicted or corrupt in the spool.
    public var spoolLost: UInt64 = 0
    /// Times the spool became unusable and memory took over.
    public var memoryFallbacks: UInt64 = 0
    /// Events of earlier runs (found in the spool at start) delivered by this one.
    public var earlierRunsDelivered: UInt64 = 0
}

/// The sender's counters: atomics, written by producers and the sender threads, read by anyone.
final class SenderCounters: Sendable {
    let submitted = Atomic<UInt64>(0)
    let sent = Atomic<UInt64>(0)
    let acknowledged = Atomic<UInt64>(0)
    let dropped = Atomic<UInt64>(0)
    let refusedAfterClose = Atomic<UInt64>(0)
    let evicted = Atomic<UInt64>(0)
    let rejected = Atomic<UInt64>(0)
    let retries = Atomic<UInt64>(0)
    let reconnects = Atomic<UInt64>(0)
    let sanitized = Atomic<UInt64>(0)
    let queuedBytes = Atomic<Int>(0)
    let highWaterMark = Atomic<Int>(0)
    /// CLOCK_REALTIME ns of the oldest unacknowledged event; 0 when none.
    let oldestUndelivered = Atomic<UInt64>(0)
    let version = Atomic<UInt32>(0)
    let state = Atomic<UInt8>(EventSender.State.connecting.rawValue)
    let sinkErrors = Atomic<UInt64>(0)
    let sinkErrorEpisodes = Atomic<UInt64>(0)
    let failovers = Atomic<UInt64>(0)
    let activeCollector = Atomic<Int>(0)

    // With a spool
    let spoolState = Atomic<UInt8>(SenderStats.SpoolState.off.rawValue)
    let spoolBytes = Atomic<Int64>(0)
    let spoolSegments = Atomic<Int>(0)
    /// CLOCK_REALTIME ns; 0 when nothing spooled waits.
    let oldestSpooled = Atomic<UInt64>(0)
    let spooled = Atomic<UInt64>(0)
    let replayed = Atomic<UInt64>(0)
    let spoolEvicted = Atomic<UInt64>(0)
    let spoolCorrupt = Atomic<UInt64>(0)
    let spoolLost = Atomic<UInt64>(0)
    let memoryFallbacks = Atomic<UInt64>(0)
    let earlierRunsDelivered = Atomic<UInt64>(0)
    /// Events numbered and stored (spool or memory window): what the delivery owes.
    let stored = Atomic<UInt64>(0)

    func noteDepth(_ depth: Int) {
        var current = highWaterMark.load(ordering: .relaxed)
        while depth > current {
            let (exchanged, now) = highWaterMark.weakCompareExchange(expected: current, desired: depth, ordering: .relaxed)
            if exchanged { return }
            current = now
        }
    }

    func snapshot(queueDepth: Int, lastError: String?) -> SenderStats {
        let nowNanoseconds = Timestamps.realtime()
        func age(_ since: UInt64) -> Duration? {
            since == 0 ? nil : .nanoseconds(Int64(nowNanoseconds > since ? nowNanoseconds - since : 0))
        }
        var stats = SenderStats(
            queueDepth: queueDepth, highWaterMark: highWaterMark.load(ordering: .relaxed),
            oldestUndeliveredAge: age(oldestUndelivered.load(ordering: .relaxed)),
            submitted: submitted.load(ordering: .relaxed), sent: sent.load(ordering: .relaxed),
            acknowledged: acknowledged.load(ordering: .relaxed), dropped: dropped.load(ordering: .relaxed),
            evicted: evicted.load(ordering: .relaxed), rejected: rejected.load(ordering: .relaxed),
            retries: retries.load(ordering: .relaxed), reconnects: reconnects.load(ordering: .relaxed),
            sanitized: sanitized.load(ordering: .relaxed), refusedAfterClose: refusedAfterClose.load(ordering: .relaxed),
            collectorVersion: ProtocolVersion(rawValue: version.load(ordering: .relaxed)),
            state: EventSender.State(rawValue: state.load(ordering: .relaxed)) ?? .connecting,
            lastError: lastError)
        stats.sinkErrors = sinkErrors.load(ordering: .relaxed)
        stats.sinkErrorEpisodes = sinkErrorEpisodes.load(ordering: .relaxed)
        stats.failovers = failovers.load(ordering: .relaxed)
        stats.activeCollector = activeCollector.load(ordering: .relaxed)
        stats.spool = SenderStats.SpoolState(rawValue: spoolState.load(ordering: .relaxed)) ?? .off
        stats.spoolBytes = spoolBytes.load(ordering: .relaxed)
        stats.spoolSegments = spoolSegments.load(ordering: .relaxed)
        stats.oldestSpooledAge = age(oldestSpooled.load(ordering: .relaxed))
        stats.spooled = spooled.load(ordering: .relaxed)
        stats.replayed = replayed.load(ordering: .relaxed)
        stats.spoolEvicted = spoolEvicted.load(ordering: .relaxed)
        stats.spoolCorrupt = spoolCorrupt.load(ordering: .relaxed)
        stats.spoolLost = spoolLost.load(ordering: .relaxed)
        stats.memoryFallbacks = memoryFallbacks.load(ordering: .relaxed)
        stats.earlierRunsDelivered = earlierRunsDelivered.load(ordering: .relaxed)
        return stats
    }

    /// What a version 3 batch header says of this sender.
    var agentStatus: AgentStatus {
        var status = AgentStatus()
        status.submitted = submitted.load(ordering: .relaxed)
        status.spooled = spooled.load(ordering: .relaxed)
        status.replayed = replayed.load(ordering: .relaxed)
        status.evicted = spoolEvicted.load(ordering: .relaxed)
        status.corrupt = spoolCorrupt.load(ordering: .relaxed)
        status.queueDropped = dropped.load(ordering: .relaxed) + evicted.load(ordering: .relaxed)
        status.memoryFallbacks = memoryFallbacks.load(ordering: .relaxed)
        status.spoolBytes = UInt64(max(0, spoolBytes.load(ordering: .relaxed)))
        status.oldestSpooledNanoseconds = oldestSpooled.load(ordering: .relaxed)
        status.spoolSegments = UInt32(clamping: spoolSegments.load(ordering: .relaxed))
        status.spoolUsable = spoolState.load(ordering: .relaxed) == SenderStats.SpoolState.disk.rawValue
        return status
    }
}
