import CAuthRelayRPC
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
            case UInt32(AR_KIND_OPEN.rawValue): self = .open
            case UInt32(AR_KIND_EXEC.rawValue): self = .exec
            default: self = .other(rawValue)
            }
        }

        public var rawValue: UInt32 {
            switch self {
            case .open: UInt32(AR_KIND_OPEN.rawValue)
            case .exec: UInt32(AR_KIND_EXEC.rawValue)
            case .other(let value): value
            }
        }

        /// The name the output and the logs use: "open", "exec", or "kind-N"
        /// with N read as the signed XDR enum it is on the wire.
        public var description: String { Self.name(of: rawValue) }

        /// The one table of kind names (the JSON Lines writer uses it too).
        public static func name(of rawValue: UInt32) -> String {
            switch rawValue {
            case UInt32(AR_KIND_OPEN.rawValue): "open"
            case UInt32(AR_KIND_EXEC.rawValue): "exec"
            default: "kind-\(Int32(bitPattern: rawValue))"
            }
        }
    }

    public enum Verdict: UInt32, Sendable, Equatable, CustomStringConvertible {
        case allow = 0
        case deny = 1

        public var description: String { Self.name(of: rawValue) }

        /// The one table of verdict names: "allow", "deny", or "verdict-N"
        /// (N signed, as the XDR enum is).
        public static func name(of rawValue: UInt32) -> String {
            switch rawValue {
            case UInt32(AR_VERDICT_ALLOW.rawValue): "allow"
            case UInt32(AR_VERDICT_DENY.rawValue): "deny"
            default: "verdict-\(Int32(bitPattern: rawValue))"
            }
        }
    }

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// The verdict came from a decision cache.
        public static let cached = Flags(rawValue: UInt32(AR_FLAG_CACHED))
        /// The deadline guard answered because the decision would have missed its budget.
        public static let deadline = Flags(rawValue: UInt32(AR_FLAG_DEADLINE))
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

    /// Bounds from rpcgen/authrelay.x, as rpcgen generated them.
    public static let maxPathBytes = Int(AR_PATH_MAX)
    public static let maxDigestBytes = Int(AR_DIGEST_MAX)
    public static let maxIDBytes = Int(AR_ID_MAX)
    public static let maxBatchEvents = Int(AR_BATCH_MAX)

    /// Checks every bound of the `.x` so nothing over a bound is ever sent.
    public func validate() throws(EventError) {
        try Self.checkString(executablePath, field: "exe_path", limit: Self.maxPathBytes)
        try Self.checkString(targetPath, field: "target_path", limit: Self.maxPathBytes)
        if digest.count > Self.maxDigestBytes {
            throw .overBound(field: "digest", bytes: digest.count, limit: Self.maxDigestBytes)
        }
    }

    package static func checkString(_ text: String, field: String, limit: Int) throws(EventError) {
        let count = text.utf8.count
        if count > limit { throw .overBound(field: field, bytes: count, limit: limit) }
        if containsNUL(text) { throw .embeddedNUL(field: field) }
    }

    /// Whether `text` has a NUL byte: memchr over the UTF-8 bytes in place when
    /// the string has them contiguous (native and small strings). The generic
    /// `utf8.contains(0)` steps a String index per byte; it was a quarter of the
    /// sender thread's time in `authrelay latency sender`, which checks every event.
    package static func containsNUL(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let start = bytes.baseAddress else { return false }
            return memchr(start, 0, bytes.count) != nil
        } ?? text.utf8.contains(0)
    }

    /// Bytes this event takes on the wire (XDR), for byte-bounded queues and batches.
    public var encodedSize: Int {
        WireSize.event(executablePath: executablePath.utf8.count, targetPath: targetPath.utf8.count, digest: digest.count)
    }
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

