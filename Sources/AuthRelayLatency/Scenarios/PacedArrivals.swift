import AuthRelay
import AuthRelayProtocol
import SystemSupport

/// Requests that arrive on a fixed schedule, whatever the agent is doing: a
/// request's latency runs from its scheduled arrival, so an agent that falls
/// behind pays for the wait of every request queued behind a slow one (no
/// coordinated omission).
struct PacedArrivals {
    let start: UInt64
    let interval: UInt64

    init(rate: Double) {
        interval = UInt64(max(1, 1e9 / max(rate, 1e-3)))
        start = Timestamps.monotonic() + 1_000_000
    }

    func arrival(of index: Int) -> UInt64 { start + UInt64(index) * interval }

    /// Waits until request `index` arrives and returns its arrival time. Sleeps
    /// until 100 µs before, then spins, so the generator's own wake-up lateness is
    /// not counted as decision time.
    func wait(for index: Int) -> UInt64 {
        let arrival = arrival(of: index)
        let now = Timestamps.monotonic()
        if now + 200_000 < arrival { SystemClock.sleep(untilMonotonic: arrival - 100_000) }
        while Timestamps.monotonic() < arrival {}
        return arrival
    }
}
