/// The protocol versions AuthRelay speaks.
public enum ProtocolVersion: UInt32, Sendable, Comparable, CustomStringConvertible {
    /// One event per call; what a legacy C collector implements.
    case v1 = 1
    /// Batches with loss accounting, and GET_STATS.
    case v2 = 2
    /// Loss ranges with reasons, the agent's spool status, how a boot ended.
    case v3 = 3

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "v\(rawValue)" }
}
