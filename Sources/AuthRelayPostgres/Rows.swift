/// The rows the store writes, as plain Swift values the collector fills from
/// its views of a call (this module knows nothing of XDR or RPC). Field names
/// follow the JSON Lines output (Docs/Protocol.md), which the columns mirror.

/// The reporting process as the kernel saw it (unix socket only).
package struct PeerCredentials: Sendable, Equatable, Hashable {
    package var uid: UInt32
    package var gid: UInt32
    package var pid: Int32

    package init(uid: UInt32, gid: UInt32, pid: Int32) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }
}

/// One authorization decision: a `"type":"event"` line.
package struct EventRow: Sendable, Equatable {
    /// Where it came from: a batch (de-duplicated by agent, boot and seq) or
    /// a version 1 REPORT_EVENT (no agent or boot: stored as it comes).
    package enum Source: Sendable, Equatable, Hashable {
        case batch(agentID: String, bootID: String)
        case legacy
    }

    package var source: Source
    package var sequence: UInt64
    package var timestampNanoseconds: UInt64
    /// "open", "exec" or "kind-N": the names the JSON Lines use.
    package var kind: String
    /// "allow", "deny" or "verdict-N".
    package var verdict: String
    package var decisionNanoseconds: UInt64
    package var pid: Int32
    package var ppid: Int32
    package var uid: UInt32
    package var gid: UInt32
    package var flags: UInt32
    package var executablePath: String
    package var targetPath: String
    package var digest: [UInt8]
    /// CLOCK_REALTIME at the collector when the call arrived.
    package var receivedNanoseconds: UInt64
    package var peer: PeerCredentials?

    package init(source: Source, sequence: UInt64, timestampNanoseconds: UInt64, kind: String, verdict: String,
                 decisionNanoseconds: UInt64 = 0, pid: Int32, ppid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0,
                 flags: UInt32 = 0, executablePath: String, targetPath: String, digest: [UInt8] = [],
                 receivedNanoseconds: UInt64, peer: PeerCredentials? = nil) {
        self.source = source
        self.sequence = sequence
        self.timestampNanoseconds = timestampNanoseconds
        self.kind = kind
        self.verdict = verdict
        self.decisionNanoseconds = decisionNanoseconds
        self.pid = pid
        self.ppid = ppid
        self.uid = uid
        self.gid = gid
        self.flags = flags
        self.executablePath = executablePath
        self.targetPath = targetPath
        self.digest = digest
        self.receivedNanoseconds = receivedNanoseconds
        self.peer = peer
    }
}

/// Events that will never arrive: a `"type":"loss"` line.
package struct LossRow: Sendable, Equatable {
    /// The reasons of protocol version 3 and the collector's own.
    package enum Reason: String, Sendable, CaseIterable {
        case queueFull = "queue_full"
        case spoolEvicted = "spool_evicted"
        case spoolCorrupt = "spool_corrupt"
        case refused
        case sequenceGap = "sequence_gap"
        case outputLost = "output_lost"
        case agentDropped = "agent_dropped"
    }

    /// Which events: an exact range of sequence numbers, or (version 2's
    /// `dropped`, whose drops took no numbers) a count before a sequence.
    package enum Extent: Sendable, Equatable {
        case range(first: UInt64, last: UInt64)
        case before(sequence: UInt64, count: UInt64)

        package var count: UInt64 {
            switch self {
            case .range(let first, let last): last &- first &+ 1
            case .before(_, let count): count
            }
        }
    }

    package var agentID: String
    package var bootID: String
    package var reason: Reason
    package var extent: Extent
    package var receivedNanoseconds: UInt64
    package var peer: PeerCredentials?

    package init(agentID: String, bootID: String, reason: Reason, extent: Extent, receivedNanoseconds: UInt64,
                 peer: PeerCredentials? = nil) {
        self.agentID = agentID
        self.bootID = bootID
        self.reason = reason
        self.extent = extent
        self.receivedNanoseconds = receivedNanoseconds
        self.peer = peer
    }
}

/// How one boot of an agent ended: a `"type":"boot_end"` line (AR3_REPORT_BOOT_END).
package struct BootEndRow: Sendable, Equatable {
    package enum Ending: String, Sendable {
        case clean
        case unclean
    }

    package var agentID: String
    /// The boot that ended.
    package var bootID: String
    package var ending: Ending
    /// Clean: the last seq assigned; unclean: the last that reached the spool.
    package var lastSequence: UInt64
    /// CLOCK_REALTIME of the stop, or of the spool's last write.
    package var endedNanoseconds: UInt64
    /// The boot id that reported it.
    package var reportedBy: String
    package var receivedNanoseconds: UInt64
    package var peer: PeerCredentials?

    package init(agentID: String, bootID: String, ending: Ending, lastSequence: UInt64, endedNanoseconds: UInt64,
                 reportedBy: String, receivedNanoseconds: UInt64, peer: PeerCredentials? = nil) {
        self.agentID = agentID
        self.bootID = bootID
        self.ending = ending
        self.lastSequence = lastSequence
        self.endedNanoseconds = endedNanoseconds
        self.reportedBy = reportedBy
        self.receivedNanoseconds = receivedNanoseconds
        self.peer = peer
    }
}

/// What one `store` call commits in one transaction: one batch, or the
/// batches of several connections gathered by the caller (group commit).
package struct StoreBatch: Sendable, Equatable {
    package var events: [EventRow]
    package var losses: [LossRow]
    package var bootEnds: [BootEndRow]

    package init(events: [EventRow] = [], losses: [LossRow] = [], bootEnds: [BootEndRow] = []) {
        self.events = events
        self.losses = losses
        self.bootEnds = bootEnds
    }

    /// Appends `other`'s rows (to commit several calls' batches as one).
    package mutating func append(_ other: StoreBatch) {
        events += other.events
        losses += other.losses
        bootEnds += other.bootEnds
    }

    package var isEmpty: Bool { events.isEmpty && losses.isEmpty && bootEnds.isEmpty }
}

/// What a committed `store` wrote: rows new to the database; the rest were
/// already there (a retry, or another collector's copy) and were skipped.
package struct StoreReceipt: Sendable, Equatable {
    package var eventsStored = 0
    package var eventsDuplicate = 0
    package var legacyEventsStored = 0
    package var lossesStored = 0
    package var lossesDuplicate = 0
    package var bootEndsStored = 0
    package var bootEndsDuplicate = 0

    package init() {}
}
