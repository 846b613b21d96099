import Glibc

/// One authorization decision, as reported to the collector.
///
/// Mirrors `struct ar_event` in rpcgen/authrelay.x; Docs/Protocol.md documents each field.
public struct Event: Sendable, Equatable {
    /// What was asked. Unknown kinds from newer peers are kept, not rejected.
    public enum Kind: Sendable, Equatable, Hashable, CustomStringConvertible {
        case open
        case exec
        case other(UInt32)

        public init(rawValue: UInt32) {
            switch rawValue {
            case 1: self = .open
            case 2: self = .exec
            default: self = .other(rawValue)
            }
        }

        public var rawValue: UInt32 {
            switch self {
            case .open: 1
            case .exec: 2
            case .other(let value): value
            }
        }

        public var description: String {
            switch self {
            case .open: "open"
            case .exec: "exec"
            case .other(let value): "kind-\(value)"
            }
        }
    }

    public enum Verdict: UInt32, Sendable, Equatable, CustomStringConvertible {
        case allow = 0
        case deny = 1

        public var description: String { self == .allow ? "allow" : "deny" }
    }

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// The verdict came from a decision cache.
        public static let cached = Flags(rawValue: 1)
        /// The deadline guard answered because the decision would have missed its budget.
        public static let deadline = Flags(rawValue: 2)
    }

    /// Per (agent id, boot id), from 1 with no gaps; assigned by the sender, 0 before.
    public var sequence: UInt64
    /// CLOCK_REALTIME when the request arrived, in nanoseconds since the epoch.
    public var timestampNanoseconds: UInt64
    public var kind: Kind
    public var verdict: Verdict
    /// From the request's arrival to the answer, in nanoseconds.
    public var decisionNanoseconds: UInt64
    public var pid: Int32
    public var ppid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var flags: Flags
    public var executablePath: String
    public var targetPath: String
    /// A content digest (e.g. SHA-256), at most `Event.maxDigestBytes`.
    public var digest: [UInt8]

    public init(
        sequence: UInt64 = 0, timestampNanoseconds: UInt64, kind: Kind, verdict: Verdict,
        decisionNanoseconds: UInt64 = 0, pid: Int32, ppid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0,
        flags: Flags = [], executablePath: String, targetPath: String, digest: [UInt8] = []
    ) {
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
    }

    /// Bounds from rpcgen/authrelay.x.
    public static let maxPathBytes = 4096
    public static let maxDigestBytes = 64
    public static let maxIDBytes = 64
    public static let maxBatchEvents = 512

    /// Checks every bound of the `.x` so nothing over a bound is ever sent.
    public func validate() throws(EventError) {
        try Self.checkString(executablePath, field: "exe_path", limit: Self.maxPathBytes)
        try Self.checkString(targetPath, field: "target_path", limit: Self.maxPathBytes)
        if digest.count > Self.maxDigestBytes {
            throw .overBound(field: "digest", bytes: digest.count, limit: Self.maxDigestBytes)
        }
    }

    static func checkString(_ text: String, field: String, limit: Int) throws(EventError) {
        let count = text.utf8.count
        if count > limit { throw .overBound(field: field, bytes: count, limit: limit) }
        if containsNUL(text) { throw .embeddedNUL(field: field) }
    }

    /// Whether `text` has a NUL byte: memchr over the UTF-8 bytes in place when
    /// the string has them contiguous (native and small strings). The generic
    /// `utf8.contains(0)` steps a String index per byte; it was a quarter of the
    /// sender thread's time in `authrelay latency sender`, which checks every event.
    static func containsNUL(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let start = bytes.baseAddress else { return false }
            return memchr(start, 0, bytes.count) != nil
        } ?? text.utf8.contains(0)
    }

    /// Bytes this event takes on the wire (XDR), for byte-bounded queues and batches.
    public var encodedSize: Int {
        // 3 hypers + kind + verdict + 5 ints + 3 length words = 64 fixed bytes.
        64 + Self.padded(executablePath.utf8.count) + Self.padded(targetPath.utf8.count) + Self.padded(digest.count)
    }

    static func padded(_ count: Int) -> Int { (count + 3) & ~3 }
}

/// A value that breaks a bound of the protocol, caught before anything is sent.
public enum EventError: Error, Sendable, Equatable, CustomStringConvertible {
    case overBound(field: String, bytes: Int, limit: Int)
    case embeddedNUL(field: String)
    case tooManyEvents(count: Int, limit: Int)
    case sequenceMismatch(expected: UInt64, found: UInt64)

    public var description: String {
        switch self {
        case .overBound(let field, let bytes, let limit): "\(field) is \(bytes) bytes, over the protocol bound of \(limit)"
        case .embeddedNUL(let field): "\(field) contains a NUL byte, which an XDR string cannot carry"
        case .tooManyEvents(let count, let limit): "a batch of \(count) events is over the protocol bound of \(limit)"
        case .sequenceMismatch(let expected, let found): "batch events must follow first_seq by one: expected \(expected), found \(found)"
        }
    }
}

/// What a batch is sent with: who sent it and what it lost before it.
public struct BatchHeader: Sendable, Equatable {
    public var agentID: String
    public var bootID: String
    public var firstSequence: UInt64
    /// Events the agent dropped since its previous batch.
    public var dropped: UInt64

    public init(agentID: String, bootID: String, firstSequence: UInt64, dropped: UInt64 = 0) {
        self.agentID = agentID
        self.bootID = bootID
        self.firstSequence = firstSequence
        self.dropped = dropped
    }
}

public struct EventBatch: Sendable, Equatable {
    public var header: BatchHeader
    public var events: [Event]

    public init(header: BatchHeader, events: [Event]) {
        self.header = header
        self.events = events
    }

    /// Checks the header's ids, the event count and every event against the `.x` bounds.
    /// A batch with no events is valid: it reports drops only.
    public func validate() throws(EventError) {
        try validate(eventFields: true)
    }

    /// `eventFields` false: the events' own fields are known to be within bounds
    /// (the sender sanitized each as it took it), so only the header, the count
    /// and the numbering are checked.
    package func validate(eventFields: Bool) throws(EventError) {
        try Event.checkString(header.agentID, field: "agent_id", limit: Event.maxIDBytes)
        try Event.checkString(header.bootID, field: "boot_id", limit: Event.maxIDBytes)
        guard events.count <= Event.maxBatchEvents else {
            throw .tooManyEvents(count: events.count, limit: Event.maxBatchEvents)
        }
        for (offset, event) in events.enumerated() {
            let expected = header.firstSequence &+ UInt64(offset)
            guard event.sequence == expected else { throw .sequenceMismatch(expected: expected, found: event.sequence) }
            if eventFields { try event.validate() }
        }
    }
}

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

    public init() {}
}
