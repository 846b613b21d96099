import ONCRPC

/// One reported event as the collector received it: the fixed fields by
/// value, the paths and the digest as views of the decoded call's bytes.
///
/// The views are valid only during the call that received them (the server
/// frees the argument after the reply): nothing is copied per event, and a
/// sink that keeps anything copies it. The handler edge (ReportHandlers.swift)
/// fills these from the decoded C structs.
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

/// One version 2 batch as received: the header and its events, whose views
/// (see `ReceivedEvent`) are valid only during the call.
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
    /// Events the agent dropped before this batch (its queue was full).
    package var dropped: UInt64 = 0
    package var events: ContiguousArray<ReceivedEvent> = []

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

    /// Forgets the events (keeping the capacity) and the ids: their views end with the call.
    package mutating func removeAll() {
        events.removeAll(keepingCapacity: true)
        agentID = UnsafeRawBufferPointer(start: nil, count: 0)
        bootID = UnsafeRawBufferPointer(start: nil, count: 0)
    }
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

/// What a batch lost before it: each becomes a "loss" line.
package enum LossRecord: Equatable, Sendable {
    /// The agent's header said it dropped `count` events before the batch starting at `beforeSequence`.
    case agentDropped(count: UInt64, beforeSequence: UInt64)
    /// Sequences `first...last` never arrived.
    case sequenceGap(first: UInt64, last: UInt64)

    /// How many events it stands for.
    package var count: UInt64 {
        switch self {
        case .agentDropped(let count, _): count
        case .sequenceGap(let first, let last): last - first + 1
        }
    }
}
