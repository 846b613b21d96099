import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// An agent with two collectors (two authrelayd processes, each with its own
/// JSON Lines output) over real sockets: the one in use killed with SIGKILL,
/// stopped, or absent from the start. The sender moves to the other and
/// resends what was not acknowledged with the same numbers, so the two
/// outputs together hold every event; a repeat across them is only ever a
/// batch that was in flight (at-least-once: PostgreSQL's primary key removes
/// it, PostgresFleetTests shows that).
@Suite("Failover between collectors", .serialized, .timeLimit(.minutes(3)))
struct FailoverTests {
    init() { TestProcess.prepare() }

    /// The boot as both collectors saw it: every sequence of 1...total at
    /// least once, no loss or gap line in either, repeats at most `inFlight`.
    static func checkTogether(_ first: StartedCollector, _ second: StartedCollector, bootID: String, total: UInt64,
                              inFlight: Int, sourceLocation: SourceLocation = #_sourceLocation) -> (first: Int, second: Int) {
        let one = BootOutput(lines: (try? first.outputLines()) ?? [], bootID: bootID)
        let two = BootOutput(lines: (try? second.outputLines()) ?? [], bootID: bootID)
        let delivered = Set(one.sequences).union(two.sequences)
        let missing = (1...total).filter { !delivered.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) events in neither output, first \(missing.prefix(5))", sourceLocation: sourceLocation)
        #expect(delivered.max() == total, sourceLocation: sourceLocation)
        #expect(one.duplicates == 0 && two.duplicates == 0, "a collector wrote an event twice", sourceLocation: sourceLocation)
        let repeated = Set(one.sequences).intersection(two.sequences).count
        #expect(repeated <= inFlight, "\(repeated) events in both outputs: more than one batch in flight", sourceLocation: sourceLocation)
        #expect(one.losses.isEmpty && two.losses.isEmpty, sourceLocation: sourceLocation)
        print("failover: \(one.sequences.count) events in the first output, \(two.sequences.count) in the second, \(repeated) in both")
        return (one.sequences.count, two.sequences.count)
    }

    /// How long after `since` the sender's acknowledgements passed `count`.
    static func acknowledged(_ sender: EventSender, past count: UInt64, since: UInt64, within timeout: Duration) -> Duration? {
        guard eventually(timeout: timeout, { sender.stats.acknowledged > count }) else { return nil }
        return .nanoseconds(Int64(SystemClock.monotonicNanoseconds() - since))
    }

    @Test("the collector in use killed with SIGKILL mid-stream: the agent moves to the next within 1 s and loses nothing")
    func killedCollector() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-failover")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory, dataDirectory: directory.file("data-1"), output: directory.file("one.jsonl"),
                                         extra: ["--fsync", "never"])
        defer { first.stop() }
        let second = try StartedCollector(in: directory, dataDirectory: directory.file("data-2"), output: directory.file("two.jsonl"),
                                          extra: ["--fsync", "never"])
        defer { second.stop() }
        let sender = SpoolTest.sender(first.unix, failover: [second.tcp], spool: directory.file("spool"))
        SpoolTest.submit(sender, count: 2000, rate: 2000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 2000 })
        #expect(sender.stats.activeCollector == 0)

        // Events keep coming while the collector dies: a burst, the time to their acknowledgement, then a steady stream.
        let killed = SystemClock.monotonicNanoseconds()
        _ = first.process.kill()
        SpoolTest.submit(sender, from: 2000, count: 200, rate: 50_000)
        let movedIn = Self.acknowledged(sender, past: 2000, since: killed, within: .seconds(5))
        print("SIGKILL: acknowledgements resumed on the second collector after \(movedIn.map { "\($0)" } ?? "never")")
        #expect(movedIn != nil && movedIn! < .seconds(1), "delivery resumed \(String(describing: movedIn)) after the kill")
        SpoolTest.submit(sender, from: 2200, count: 1800, rate: 2000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 4000 }, "\(sender.stats)")
        #expect(sender.stats.activeCollector == 1 && sender.stats.failovers == 1, "\(sender.stats)")

        let report = sender.close(drainTimeout: .seconds(10))
        #expect(report.isBalanced && report.undelivered == 0 && report.stats.dropped == 0, "\(report)")
        let counts = Self.checkTogether(first, second, bootID: sender.configuration.bootID, total: 4000,
                                        inFlight: sender.configuration.maxBatchEvents)
        #expect(counts.first >= 2000 && counts.second > 0)
        // The boot's end goes to the collector in use.
        let ends = BootOutput(lines: try second.outputLines(), bootID: sender.configuration.bootID).ends
        #expect(ends.count == 1 && ends.first?.ending == "clean" && ends.first?.last == 4000, "\(ends)")
    }

    @Test("a stopped collector (SIGSTOP) times out and the next takes over; with --prefer-first the agent returns once it answers")
    func stoppedThenPreferredAgain() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-failover")
        defer { directory.remove() }
        let first = try StartedCollector(in: directory, dataDirectory: directory.file("data-1"), output: directory.file("one.jsonl"),
                                         extra: ["--fsync", "never"])
        defer {
            first.process.signal(SIGCONT)
            first.stop()
        }
        let second = try StartedCollector(in: directory, dataDirectory: directory.file("data-2"), output: directory.file("two.jsonl"),
                                          extra: ["--fsync", "never"])
        defer { second.stop() }
        let sender = SpoolTest.sender(first.tcp, failover: [second.unix], spool: directory.file("spool"), preferFirst: true)
        SpoolTest.submit(sender, count: 1000, rate: 2000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 1000 })

        first.process.signal(SIGSTOP)
        let stopped = SystemClock.monotonicNanoseconds()
        SpoolTest.submit(sender, from: 1000, count: 200, rate: 50_000)
        // The call to the stopped one fails after its timeout (500 ms here), then the move is immediate.
        let movedIn = Self.acknowledged(sender, past: 1000, since: stopped, within: .seconds(5))
        print("SIGSTOP: delivery resumed on the second collector after \(movedIn.map { "\($0)" } ?? "never") (call timeout 500 ms)")
        #expect(movedIn != nil && movedIn! < .milliseconds(1500))
        SpoolTest.submit(sender, from: 1200, count: 1800, rate: 2000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 3000 }, "\(sender.stats)")
        #expect(sender.stats.activeCollector == 1)

        // Back: the background probe hears it within about a second, and the next batches go there.
        first.process.signal(SIGCONT)
        let continued = SystemClock.monotonicNanoseconds()
        #expect(eventually(timeout: .seconds(5)) {
            _ = sender.submit(SpoolTest.event(Int(sender.stats.submitted)))
            SystemClock.sleep(.milliseconds(5))
            return sender.stats.activeCollector == 0
        }, "never went back to the preferred collector: \(sender.stats)")
        print("SIGCONT: back on the preferred collector after \(Duration.nanoseconds(Int64(SystemClock.monotonicNanoseconds() - continued)))")
        let total = sender.stats.submitted
        let report = sender.close(drainTimeout: .seconds(10))
        #expect(report.isBalanced && report.undelivered == 0, "\(report)")
        #expect(report.stats.failovers == 2, "\(report.stats)")
        _ = Self.checkTogether(first, second, bootID: sender.configuration.bootID, total: total,
                               inFlight: 2 * sender.configuration.maxBatchEvents)
    }

    @Test("the first collector absent from the start: every event goes to the second, none waits for the first")
    func firstAbsent() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-failover")
        defer { directory.remove() }
        let second = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { second.stop() }
        // Nothing bound this path: connecting fails at once (ENOENT).
        let absent = RPCEndpoint.unix(path: directory.file("nobody-listens.sock"))
        let sender = SpoolTest.sender(absent, failover: [second.unix], spool: directory.file("spool"))
        let start = SystemClock.monotonicNanoseconds()
        SpoolTest.submit(sender, count: 500, rate: 5000)
        let firstAck = Self.acknowledged(sender, past: 0, since: start, within: .seconds(5))
        print("first collector absent: the first acknowledgement after \(firstAck.map { "\($0)" } ?? "never")")
        #expect(firstAck != nil && firstAck! < .seconds(1))
        let report = sender.close(drainTimeout: .seconds(10))
        #expect(report.isBalanced && report.undelivered == 0 && report.stats.acknowledged == 500, "\(report)")
        let output = BootOutput(lines: try second.outputLines(), bootID: sender.configuration.bootID)
        #expect(output.exactly(1...500) == nil, "\(output.exactly(1...500) ?? "")")
    }
}

