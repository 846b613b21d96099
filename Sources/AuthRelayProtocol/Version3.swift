import CAuthRelayRPC

/// Why a range of sequence numbers will never be delivered (version 3).
public enum LossReason: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The agent's memory queue was full.
    case queueFull
    /// The agent's spool was full: its oldest records were evicted.
    case spoolEvicted
    /// Spooled records failed their checksum.
    case spoolCorrupt
    /// A collector refused them as breaking a rule; never sent again.
    case refused
    case other(UInt32)

    public init(rawValue: UInt32) {
        switch rawValue {
        case UInt32(AR_LOSS_QUEUE_FULL.rawValue): self = .queueFull
        case UInt32(AR_LOSS_SPOOL_EVICTED.rawValue): self = .spoolEvicted
        case UInt32(AR_LOSS_SPOOL_CORRUPT.rawValue): self = .spoolCorrupt
        case UInt32(AR_LOSS_REFUSED.rawValue): self = .refused
        default: self = .other(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .queueFull: UInt32(AR_LOSS_QUEUE_FULL.rawValue)
        case .spoolEvicted: UInt32(AR_LOSS_SPOOL_EVICTED.rawValue)
        case .spoolCorrupt: UInt32(AR_LOSS_SPOOL_CORRUPT.rawValue)
        case .refused: UInt32(AR_LOSS_REFUSED.rawValue)
        case .other(let value): value
        }
    }

    /// The name the output and the logs use: "queue_full", ... or "reason-N".
    public var description: String {
        switch self {
        case .queueFull: "queue_full"
        case .spoolEvicted: "spool_evicted"
        case .spoolCorrupt: "spool_corrupt"
        case .refused: "refused"
        case .other(let value): "reason-\(Int32(bitPattern: value))"
        }
    }
}

/// Sequence numbers `first...last` of one agent run that will never be delivered, and why.
public struct LossRange: Sendable, Equatable, Hashable {
    public var first: UInt64
    public var last: UInt64
    public var reason: LossReason

    public init(first: UInt64, last: UInt64, reason: LossReason) {
        self.first = first
        self.last = last
        self.reason = reason
    }

    /// Events in the range (saturating: a range from a peer may be anything).
    public var count: UInt64 {
        guard last >= first else { return 0 }
        return last - first == .max ? .max : last - first + 1
    }
}

/// The agent's sender and spool as they are when a batch is sent (version 3).
public struct AgentStatus: Sendable, Equatable {
    public var submitted: UInt64 = 0
    public var spooled: UInt64 = 0
    public var replayed: UInt64 = 0
    public var evicted: UInt64 = 0
    public var corrupt: UInt64 = 0
    public var queueDropped: UInt64 = 0
    public var memoryFallbacks: UInt64 = 0
    public var spoolBytes: UInt64 = 0
    /// CLOCK_REALTIME ns of the oldest undelivered spooled event; 0 when none.
    public var oldestSpooledNanoseconds: UInt64 = 0
    public var spoolSegments: UInt32 = 0
    /// Spooling to disk (false: memory only).
    public var spoolUsable = false

    public init() {}
}

/// How an agent run ended, as a later run of the same agent reports it (version 3).
public struct BootEnd: Sendable, Equatable {
    public enum Ending: Sendable, Equatable, CustomStringConvertible {
        /// Stopped on request; what it could not deliver is in its spool.
        case clean
        /// Killed or crashed: events not yet spooled were lost.
        case unclean

        public var description: String { self == .clean ? "clean" : "unclean" }
    }

    public var agentID: String
    /// The run that ended.
    public var bootID: String
    public var ending: Ending
    /// Clean: the last sequence assigned; unclean: the last that reached the spool.
    public var lastSequence: UInt64
    /// CLOCK_REALTIME ns of the stop, or of the spool's last write.
    public var endedNanoseconds: UInt64
    /// The run that reports it.
    public var reportedBy: String

    public init(agentID: String, bootID: String, ending: Ending, lastSequence: UInt64, endedNanoseconds: UInt64,
                reportedBy: String) {
        self.agentID = agentID
        self.bootID = bootID
        self.ending = ending
        self.lastSequence = lastSequence
        self.endedNanoseconds = endedNanoseconds
        self.reportedBy = reportedBy
    }

    /// Checks the ids against the protocol's bounds.
    public func validate() throws(EventError) {
        try Event.checkString(agentID, field: "agent_id", limit: Event.maxIDBytes)
        try Event.checkString(bootID, field: "boot_id", limit: Event.maxIDBytes)
        try Event.checkString(reportedBy, field: "reported_by", limit: Event.maxIDBytes)
    }
}

/// One agent run as a collector last heard of it (version 3 GET_STATS).
public struct AgentView: Sendable, Equatable {
    public var agentID: String
    public var bootID: String
    public var highestSequence: UInt64
    /// CLOCK_REALTIME ns of its last batch.
    public var lastReportNanoseconds: UInt64
    public var status: AgentStatus

    public init(agentID: String, bootID: String, highestSequence: UInt64, lastReportNanoseconds: UInt64, status: AgentStatus) {
        self.agentID = agentID
        self.bootID = bootID
        self.highestSequence = highestSequence
        self.lastReportNanoseconds = lastReportNanoseconds
        self.status = status
    }
}

/// What only version 3's GET_STATS carries, beside the version 2 counters.
public struct CollectorStatsV3: Sendable, Equatable {
    public var unservedCalls: UInt64 = 0
    public var lostQueueFull: UInt64 = 0
    public var lostSpoolEvicted: UInt64 = 0
    public var lostSpoolCorrupt: UInt64 = 0
    public var lostRefused: UInt64 = 0
    public var outputLost: UInt64 = 0
    public var bootsClean: UInt64 = 0
    public var bootsUnclean: UInt64 = 0
    public var evictedConnections: UInt64 = 0
    /// The most recently heard first, at most `Event.maxAgentViews`.
    public var agents: [AgentView] = []

    public init() {}
}

extension Event {
    /// Loss ranges in one version 3 batch header.
    public static let maxLossRanges = Int(AR_LOSS_MAX)
    /// Agents in one version 3 GET_STATS answer.
    public static let maxAgentViews = Int(AR_AGENTS_MAX)
}
