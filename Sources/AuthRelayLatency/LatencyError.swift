/// Why a latency run could not be done, in words a user can act on.
public struct LatencyError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
