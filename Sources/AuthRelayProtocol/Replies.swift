/// `ar_status`: what the collector did with a report.
public enum ReportStatus: Sendable, Equatable, CustomStringConvertible {
    case ok
    /// The request broke a protocol rule; retrying it will not help.
    case rejected
    /// The caller may not report to this collector.
    case unauthorized
    /// The collector could not store it; retry later.
    case sinkError
    case other(UInt32)

    public init(rawValue: UInt32) {
        switch rawValue {
        case 0: self = .ok
        case 1: self = .rejected
        case 2: self = .unauthorized
        case 3: self = .sinkError
        default: self = .other(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .ok: 0
        case .rejected: 1
        case .unauthorized: 2
        case .sinkError: 3
        case .other(let value): value
        }
    }

    public var description: String {
        switch self {
        case .ok: "ok"
        case .rejected: "rejected"
        case .unauthorized: "unauthorized"
        case .sinkError: "sink error"
        case .other(let value): "status \(value)"
        }
    }
}

/// Version 1's reply to one event.
public struct Ack: Sendable, Equatable {
    public var status: ReportStatus
    public var sequence: UInt64

    public init(status: ReportStatus, sequence: UInt64) {
        self.status = status
        self.sequence = sequence
    }
}

/// Version 2's reply to a batch.
public struct BatchAck: Sendable, Equatable {
    public var status: ReportStatus
    /// Events written now.
    public var accepted: UInt32
    /// Events already written before (a retry after a timeout, say).
    public var duplicates: UInt32
    /// The highest sequence stored for this agent and boot.
    public var highestSequence: UInt64

    public init(status: ReportStatus, accepted: UInt32, duplicates: UInt32, highestSequence: UInt64) {
        self.status = status
        self.accepted = accepted
        self.duplicates = duplicates
        self.highestSequence = highestSequence
    }
}

/// The collector's counters (GET_STATS).
public struct CollectorStats: Sendable, Equatable {
    public var startedNanoseconds: UInt64 = 0
    public var batches: UInt64 = 0
    public var events: UInt64 = 0
    public var written: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var legacyEvents: UInt64 = 0
    public var reportedDropped: UInt64 = 0
    public var gapEvents: UInt64 = 0
    public var rejected: UInt64 = 0
    public var sinkErrors: UInt64 = 0
    public var agents: UInt32 = 0
    public var connections: UInt32 = 0
    /// What version 3's GET_STATS adds; nil when read through version 2.
    public var version3: CollectorStatsV3?

    public init() {}
}
