import SystemSupport

/// Delays between reconnect attempts: doubling from `first` up to `limit`,
/// each with up to a quarter more at random so collectors that lost the same
/// server do not all come back in the same millisecond.
package struct Backoff: Sendable, Equatable {
    package let first: Duration
    package let limit: Duration
    private var next: Duration

    package init(first: Duration = .milliseconds(100), limit: Duration = .seconds(5)) {
        self.first = first
        self.limit = limit
        next = first
    }

    /// The delay before the next attempt; the one after is twice as long.
    package mutating func nextDelay() -> Duration {
        let base = next
        next = min(next * 2, limit)
        let jitter = Duration.nanoseconds(Int64.random(in: 0...max(0, base.nanoseconds / 4)))
        return base + jitter
    }

    /// Back to `first`, after a success.
    package mutating func reset() { next = first }
}
