import AuthRelayHarness
import AuthRelayProtocol
import SystemSupport

/// The consumer of the shared-memory floor, in a process of its own as every
/// other peer is: `authrelay latency shm-peer --region PATH --parent PID`
/// (hidden). `authrelay` itself rather than a C program: no target to add,
/// nothing more to build, and one definition of the ring's layout (Swift on
/// both ends, as the Swift RPC rows are).
///
/// It copies each event out of its slot (what a consumer must do before the
/// slot is reused), then publishes the new tail, which is the acknowledgement.
package enum SharedMemoryPeer {
    package static let readyLine = "authrelay latency shm-peer: ready"

    /// Serves the ring at `region` until told to stop or `parent` is gone.
    package static func run(region: String, parent: Int32) throws(LatencyError) {
        let ring = try SharedMemoryRing.open(region)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SharedMemoryRing.slotPayload, alignment: 8)
        defer { buffer.deallocate() }
        var tail = ring.tail.pointee.load(ordering: .acquiring)
        ring.setState(.peerReady)
        Processes.writeToStandardError(readyLine + "\n")
        // Asked only when a wait ends without an event: a stop, or a parent gone without one.
        let giveUp = { ring.state == .stop || !Processes.signal(parent, 0) }
        do {
            while try ring.wait(until: ring.head, reaches: tail + 1, sleepingOn: ring.consumerSleeping,
                                slice: .milliseconds(100), giveUp: giveUp) {
                let head = ring.head.pointee.load(ordering: .acquiring)
                while tail < head {
                    _ = ring.read(at: tail, into: buffer)
                    tail += 1
                }
                ring.publish(tail, in: ring.tail, waking: ring.producerSleeping)
            }
        } catch {
            throw LatencyError("shm-peer: waiting on \(region) failed", system: error)
        }
    }
}

/// The producer side: a ring in /dev/shm (or the run's temporary directory
/// where there is no /dev/shm), its consumer started on it, and round trips:
/// copy the events into slots, publish the head, wake the consumer if it
/// sleeps, wait until the tail (its acknowledgement) covers them.
final class SharedMemoryLink {
    /// "futex": both sides sleep whenever they wait, so every hand-off wakes a
    /// sleeping reader; "spin": each side spins `spin` before it sleeps.
    let variant: String
    /// What the rows measure: a consumer that sleeps between hand-offs, and one that spins 50 µs first.
    static let variants: [(name: String, spin: Duration)] = [("futex", .zero), ("spin", .microseconds(50))]
    static let note = "shm: a single-producer single-consumer ring in a /dev/shm file both map, consumer `authrelay latency shm-peer` in its own process; the XDR bytes of the event copied in and out, acknowledged by the consumer's tail; futex: both sides sleep (futex) whenever they wait; spin: each spins up to 50 µs before sleeping"
    private let ring: SharedMemoryRing
    private let peer: ChildProcess
    private let payloads = BenchmarkEvent.encoded(count: 512)
    private var head: UInt64 = 0
    private let callTimeout: Duration = .seconds(5)

    init(variant: String, spin: Duration, directory: TemporaryDirectory) throws(LatencyError) {
        self.variant = variant
        guard let program = Processes.currentExecutable() else { throw LatencyError("cannot read /proc/self/exe") }
        let folder = SharedMemory.standardDirectory ?? directory.path
        let path = "\(folder)/authrelay-latency-\(Processes.currentID)-\(variant)-\(UInt32.random(in: 0...UInt32.max)).ring"
        do {
            ring = try SharedMemoryRing.create(path, spin: spin)
        } catch {
            throw LatencyError("shared memory: cannot create the ring", system: error)
        }
        // Unlinked once both have it mapped: nothing is left behind, whatever happens next.
        defer { try? FileSystem.removeFile(path) }
        if let tooLong = payloads.first(where: { $0.isEmpty || $0.count > SharedMemoryRing.slotPayload }) {
            throw LatencyError("shared memory: an encoded event of \(tooLong.count) bytes does not fit a \(SharedMemoryRing.slotSize)-byte slot")
        }
        peer = try ChildProcess(program, ["latency", "shm-peer", "--region", path, "--parent", "\(Processes.currentID)"],
                                outputIn: directory, tag: "shm-peer-\(variant)")
        try peer.waitFor(SharedMemoryPeer.readyLine)
        try warmUp()
    }

    deinit { stop() }

    /// Events the consumer has taken out of the ring: its own count.
    var consumed: UInt64 { ring.tail.pointee.load(ordering: .acquiring) }

    /// Hand-offs of `count` events (1...slotCount); the time from the first copy to the acknowledgement, ns.
    func roundTrip(events count: Int) throws(LatencyError) -> UInt64 {
        precondition((1...SharedMemoryRing.slotCount).contains(count), "a batch must fit the ring")
        let start = Timestamps.monotonic()
        for offset in 0..<UInt64(count) {
            let position = head + offset
            payloads[Int(position % UInt64(payloads.count))].withUnsafeBytes { ring.write($0, at: position) }
        }
        head += UInt64(count)
        ring.publish(head, in: ring.head, waking: ring.consumerSleeping)
        let deadline = start + UInt64(callTimeout.nanoseconds)
        let acknowledged: Bool
        do {
            acknowledged = try ring.wait(until: ring.tail, reaches: head, sleepingOn: ring.producerSleeping,
                                         slice: .milliseconds(100)) { !peer.isRunning || Timestamps.monotonic() > deadline }
        } catch {
            throw LatencyError("shared memory: waiting for the consumer failed", system: error)
        }
        guard acknowledged else {
            throw LatencyError("shared memory: the consumer did not take \(count) events within \(callTimeout) (\(peer.exitStatus.map { "it ended: \($0)" } ?? "it runs"))\n\(peer.describeOutput())")
        }
        return Timestamps.monotonic() - start
    }

    /// One round: `calls` hand-offs of `batch` events, at most `eventLimit` events in all
    /// (the last hand-off may be partial), each checked against the consumer's count.
    func round(calls: Int, batch: Int, eventLimit: Int = .max) throws(LatencyError) -> RoundOutcome {
        for _ in 0..<100 { _ = try roundTrip(events: batch) }  // warm the path again after the other scenarios
        let before = consumed
        let timed = try TimedBatches.run(calls: calls, batch: batch, eventLimit: eventLimit) { (count) throws(LatencyError) in
            try roundTrip(events: count)
        }
        return RoundOutcome(latency: timed.latency, calls: timed.latency.count, events: UInt64(timed.events), seconds: timed.seconds,
                            collectorEvents: consumed - before)
    }

    private func warmUp() throws(LatencyError) {
        for _ in 0..<1000 { _ = try roundTrip(events: 1) }
    }

    /// Tells the consumer to stop, wakes it, and reaps it (SIGTERM if it does not end).
    func stop() {
        guard peer.isRunning else { return }
        ring.setState(.stop)
        ring.publish(head, in: ring.head, waking: ring.consumerSleeping)
        if peer.wait(timeout: .seconds(2)) == nil { peer.stop() }
    }
}
