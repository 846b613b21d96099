import AuthRelay
import AuthRelayProtocol
import SystemSupport

/// What `EventSender.submit` costs the thread that calls it: producer threads
/// (plain pthreads, as auth threads are) submit on a paced schedule, and every
/// submit is timed on its own with two CLOCK_MONOTONIC reads around it.
///
/// Paced, not flat out: an auth thread submits once per decision, after
/// answering the kernel, so submits arrive at the rate decisions do. Flat out,
/// the producers would outrun the sender ten to one, fill the queue in every
/// collector condition (healthy would measure the drop path) and take the CPU
/// the sender needs. The schedule is in 1 ms ticks (`perTick` submits back to
/// back, then sleep to the next tick): arrivals come in bursts, as a process
/// walking a directory tree makes them, and the producers leave the CPU to the
/// sender and the collector between bursts.
struct SubmitCostRun {
    /// Submits per producer thread.
    let submits: Int
    let producers: Int
    /// Submits per second over all producers.
    let rate: Double
    let events: [Event]

    static let tickNanoseconds: UInt64 = 1_000_000

    /// What the producers measured.
    struct Outcome {
        var latency = LatencyDistribution()
        var dropped: UInt64 = 0
        /// From the first tick until every producer has returned.
        var seconds = 0.0
    }

    /// Runs the producers against `sender` and waits for them. With no sender
    /// they time nothing between the two clock reads, on the same schedule:
    /// the cost of the timing itself, and the tail a thread that wakes for
    /// each tick pays for anything.
    func run(_ sender: EventSender?) -> Outcome {
        let perTick = max(1, Int((rate / Double(producers) * Double(Self.tickNanoseconds) / 1e9).rounded()))
        let slots = (0..<producers).map { _ in ProducerSlot() }
        let start = Timestamps.monotonic() + 2_000_000  // every thread created before the first tick
        let threads = ThreadGroup()
        for (index, slot) in slots.enumerated() {
            let body = ProducerBody(submits: submits, perTick: perTick, start: start, events: events,
                                    offset: index * events.count / producers)
            threads.start(name: "latency-producer") { body.run(sender, into: slot) }
        }
        threads.joinAll()
        var outcome = Outcome()
        outcome.seconds = Time.seconds(since: start)
        for slot in slots {
            let (latency, dropped) = slot.result.withLock { $0 }
            outcome.latency.add(latency)
            outcome.dropped += dropped
        }
        return outcome
    }
}

/// Where one producer thread leaves its histogram when it is done.
private final class ProducerSlot: Sendable {
    let result = Locked<(LatencyDistribution, UInt64)>((LatencyDistribution(), 0))
}

/// One producer thread's loop.
private struct ProducerBody: Sendable {
    let submits: Int
    let perTick: Int
    let start: UInt64
    let events: [Event]
    /// Where in `events` this producer starts, so two producers do not submit the same event at once.
    let offset: Int

    func run(_ sender: EventSender?, into slot: ProducerSlot) {
        var latency = LatencyDistribution()
        var dropped: UInt64 = 0
        var done = 0
        var tick: UInt64 = 0
        while done < submits {
            SystemClock.sleep(untilMonotonic: start + tick * SubmitCostRun.tickNanoseconds)
            tick += 1
            let end = min(done + perTick, submits)
            while done < end {
                let event = events[(done + offset) % events.count]  // the copy (retains) is not timed
                let before: UInt64
                let after: UInt64
                if let sender {
                    before = Timestamps.monotonic()
                    let result = sender.submit(event)
                    after = Timestamps.monotonic()
                    if result == .dropped { dropped += 1 }
                } else {
                    before = Timestamps.monotonic()
                    after = Timestamps.monotonic()
                }
                latency.record(nanoseconds: after - before)
                done += 1
            }
        }
        slot.result.withLock { $0 = (latency, dropped) }
    }
}
