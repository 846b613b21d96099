import AuthRelayProtocol
import ONCRPC

/// One reported event as the collector received it: the fixed fields by
/// value, the paths and the digest as views of the decoded call's bytes.
///
/// The views are valid only during the call that received them (the server
/// frees the argument after the reply): nothing is copied per event, and a
/// sink that keeps anything copies it. `ViewBatchDecoder` fills these from the
/// call's bytes; the handler edge (ReportHandlers.swift) from decoded C structs
/// when rpcgen's routine decoded the argument (version 1, the fallback).
package struct ReceivedEvent {
    package var sequence: UInt64
    package var timestampNanoseconds: UInt64
    /// The wire values, unknown ones included: the output names them
    /// ("open", "kind-N"; see `OutputLineWriter`).
    package var kind: UInt32
    package var verdict: UInt32
    package var decisionNanoseconds: UInt64
    package var pid: Int32
    package var ppid: Int32
    package var uid: UInt32
    package var gid: UInt32
    package var flags: UInt32
    /// The bytes as sent, without the terminating NUL; not necessarily UTF-8.
    package var executablePath: UnsafeRawBufferPointer
    package var targetPath: UnsafeRawBufferPointer
    package var digest: UnsafeRawBufferPointer
}

/// One version 2 or version 3 batch as received: the header and its events,
/// whose views (see `ReceivedEvent`) are valid only during the call.
///
/// The handlers keep one and lay every batch into it: `events` keeps its
/// capacity from batch to batch, so receiving allocates nothing once it has
/// held the largest batch.
package struct ReceivedBatch {
    /// The header's ids as sent (not necessarily UTF-8): the output writes
    /// these bytes; de-duplication keys on their repaired Strings (`key`).
    package var agentID = UnsafeRawBufferPointer(start: nil, count: 0)
    package var bootID = UnsafeRawBufferPointer(start: nil, count: 0)
    package var firstSequence: UInt64 = 0
    /// Version 2: events the agent dropped before this batch (its queue was full).
    package var dropped: UInt64 = 0
    package var events: ContiguousArray<ReceivedEvent> = []
    /// Version 3: the ranges this batch accounts for that will never be sent, as the agent said them
    /// (unchecked: `BatchRule` checks them against the events).
    package var losses: ContiguousArray<LossRange> = []
    /// Version 3: the agent's sender and spool as the header carried them; nil for version 2.
    package var status: AgentStatus?

    /// The (agent id, boot id) pair, as Strings made once per batch. Invalid
    /// UTF-8 is repaired as `String(cString:)` repairs it, so the key equals
    /// what a reader decodes from the output's ids.
    package var key: AgentKey {
        AgentKey(agentID: String(decoding: agentID, as: UTF8.self), bootID: String(decoding: bootID, as: UTF8.self))
    }

    /// The protocol says events follow first_seq by one.
    package var isContiguous: Bool {
        var expected = firstSequence
        for event in events {
            guard event.sequence == expected else { return false }
            expected &+= 1
        }
        return true
    }

    /// Forgets the events and losses (keeping the capacity) and the ids: their views end with the call.
    package mutating func removeAll() {
        events.removeAll(keepingCapacity: true)
        losses.removeAll(keepingCapacity: true)
        status = nil
        agentID = UnsafeRawBufferPointer(start: nil, count: 0)
        bootID = UnsafeRawBufferPointer(start: nil, count: 0)
    }
}

/// A version 3 REPORT_BOOT_END as received: how an earlier run of an agent
/// ended. The ids are views valid during the call.
package struct ReceivedBootEnd {
    package var agentID: UnsafeRawBufferPointer
    /// The run that ended.
    package var bootID: UnsafeRawBufferPointer
    /// The wire value of `ar_boot_ending`: 0 clean, 1 unclean, anything else breaks the protocol.
    package var ending: UInt32
    package var lastSequence: UInt64
    package var endedNanoseconds: UInt64
    /// The run that reports it.
    package var reportedBy: UnsafeRawBufferPointer

    package var key: AgentKey {
        AgentKey(agentID: String(decoding: agentID, as: UTF8.self), bootID: String(decoding: bootID, as: UTF8.self))
    }
}

/// A line the collector writes that is neither an event nor a loss (its ids are the context's).
package enum CollectorNote {
    /// `"type":"boot_end"`: how a run of the agent ended, as a later run reported it.
    case bootEnd(ending: BootEnd.Ending, lastSequence: UInt64, endedNanoseconds: UInt64, reportedBy: UnsafeRawBufferPointer)
    /// `"type":"state_lost"`: this collector started with neither its state nor its output, and this
    /// (agent, boot), first seen at `firstSequence`, delivered before: the sequences below it are unknown, not lost.
    case stateLost(startedNanoseconds: UInt64, firstSequence: UInt64)
}

/// Who sent a batch or event, and when it arrived: the fields every line of it shares.
package struct ReportContext {
    /// Version 2's header ids as sent (views valid during the call); nil for a
    /// version 1 (legacy) event.
    package var agentID: UnsafeRawBufferPointer?
    package var bootID: UnsafeRawBufferPointer?
    /// CLOCK_REALTIME at arrival.
    package var receivedNanoseconds: UInt64
    /// The reporter's kernel credentials (unix socket only).
    package var peer: PeerCredentials?
}

/// What a batch lost before it (or the output lost, found at start): each becomes a "loss" line.
package enum LossRecord: Equatable, Sendable {
    /// The agent's version 2 header said it dropped `count` events before the batch starting at `beforeSequence`.
    case agentDropped(count: UInt64, beforeSequence: UInt64)
    /// Sequences `first...last` never arrived.
    case sequenceGap(first: UInt64, last: UInt64)
    /// Sequences `first...last` will never arrive, and why: a version 3 loss
    /// range, or (`outputLost`) acknowledged events the output no longer holds.
    case range(first: UInt64, last: UInt64, reason: RangeReason)

    /// How many events it stands for (saturating: `1...UInt64.max` is one more than a UInt64 holds).
    package var count: UInt64 {
        switch self {
        case .agentDropped(let count, _): count
        case .sequenceGap(let first, let last), .range(let first, let last, _): Self.count(first, last)
        }
    }

    package static func count(_ first: UInt64, _ last: UInt64) -> UInt64 {
        guard last >= first else { return 0 }
        return last - first == .max ? .max : last - first + 1
    }

    /// "sequence_gap 21...25", "agent_dropped 7 before 11": for log lines.
    package var summary: String {
        switch self {
        case .agentDropped(let count, let before): "agent_dropped \(count) before \(before)"
        case .sequenceGap(let first, let last): "sequence_gap \(first)...\(last)"
        case .range(let first, let last, let reason): "\(reason.lineReason.rawValue) \(first)...\(last)"
        }
    }
}

/// Why a range of sequences will never arrive: version 3's four reasons, and
/// what the collector itself finds at start.
package enum RangeReason: Sendable, Equatable, CaseIterable {
    case queueFull, spoolEvicted, spoolCorrupt, refused
    /// The checkpoint says these were written and acknowledged; the output no longer holds them.
    case outputLost

    /// A version 3 reason; nil for a value the protocol does not define.
    package init?(_ reason: LossReason) {
        switch reason {
        case .queueFull: self = .queueFull
        case .spoolEvicted: self = .spoolEvicted
        case .spoolCorrupt: self = .spoolCorrupt
        case .refused: self = .refused
        case .other: return nil
        }
    }

    /// The loss line's `reason`.
    package var lineReason: OutputLine.LossReason {
        switch self {
        case .queueFull: .queueFull
        case .spoolEvicted: .spoolEvicted
        case .spoolCorrupt: .spoolCorrupt
        case .refused: .refused
        case .outputLost: .outputLost
        }
    }
}
