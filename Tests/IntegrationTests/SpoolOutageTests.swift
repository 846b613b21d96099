import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Foundation
import SystemSupport
import TestSupport
import Testing

/// The sender with a spool against authrelayd (version 3) over real sockets:
/// healthy, a stopped collector and an absent one at a steady rate, then
/// back. Nothing dropped, nothing written twice, the spool empty at the end.
@Suite("Spool: collector outages", .serialized, .timeLimit(.minutes(3)))
struct SpoolOutageTests {
    init() { TestProcess.prepare() }

    /// The collector is back now: the first acknowledgement within 2 s, 1,000
    /// more events at 2,000/s, then every one of the 8,000 delivered once.
    static func resumeAndFinish(_ sender: EventSender, _ daemon: StartedCollector, acknowledgedBefore: UInt64,
                                what: String, sourceLocation: SourceLocation = #_sourceLocation) -> ShutdownReport {
        let back = SystemClock.monotonicNanoseconds()
        #expect(eventually(timeout: .seconds(5)) { sender.stats.acknowledged > acknowledgedBefore }, sourceLocation: sourceLocation)
        let resumed = Duration.nanoseconds(Int64(SystemClock.monotonicNanoseconds() - back))
        print("\(what): delivery resumed \(resumed) after the collector was back")
        #expect(resumed < .seconds(2), sourceLocation: sourceLocation)
        let submitted = Int(sender.stats.submitted)
        SpoolTest.submit(sender, from: submitted, count: 8000 - submitted, rate: 2000)
        let report = sender.close(drainTimeout: .seconds(30))
        #expect(report.isBalanced, "\(report)", sourceLocation: sourceLocation)
        #expect(report.stats.dropped == 0 && report.stats.acknowledged == 8000, "\(report.stats)", sourceLocation: sourceLocation)
        let output = BootOutput(lines: (try? daemon.outputLines()) ?? [], bootID: sender.configuration.bootID)
        #expect(output.exactly(1...8000) == nil, "\(output.exactly(1...8000) ?? "")", sourceLocation: sourceLocation)
        #expect(output.gaps.isEmpty && output.losses.isEmpty, sourceLocation: sourceLocation)
        return report
    }

    @Test("healthy: every event delivered once through the spool, its segments deleted as acknowledged")
    func healthy() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        let sender = SpoolTest.sender(daemon.unix, spool: directory.file("spool"), capacity: 32_768)
        for index in 0..<20_000 { #expect(sender.submit(SpoolTest.event(index)) == .queued) }
        let report = sender.close(drainTimeout: .seconds(30))
        #expect(report.isBalanced, "\(report)")
        #expect(report.undelivered == 0)
        #expect(report.stats.acknowledged == 20_000)
        #expect(report.stats.spooled == 20_000)
        #expect(report.stats.spool == .disk)
        #expect(report.stats.collectorVersion == .v3)

        let output = BootOutput(lines: try daemon.outputLines(), bootID: sender.configuration.bootID)
        #expect(output.exactly(1...20_000) == nil)
        #expect(output.gaps.isEmpty && output.losses.isEmpty)
        #expect(output.ends.count == 1 && output.ends.first?.ending == "clean" && output.ends.first?.last == 20_000, "\(output.ends)")
        #expect(output.indexBySequence.allSatisfy { $0.key == UInt64($0.value + 1) }, "events numbered in submit order")
        // Only the boot's last (open) segment may stay, and it is wholly acknowledged.
        #expect(report.stats.spoolSegments <= 1, "\(report.stats)")
    }

    @Test("a SIGSTOPped collector at 2,000 events/s: nothing dropped or duplicated, delivery resumes within 2 s")
    func stoppedCollector() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--fsync", "never"])
        defer { daemon.stop() }
        // A queue of 1,024: without the spool, a 3 s outage at 2,000/s would drop most of it.
        let sender = SpoolTest.sender(daemon.unix, spool: directory.file("spool"), capacity: 1024)
        SpoolTest.submit(sender, count: 1000, rate: 2000)
        #expect(eventually(timeout: .seconds(10)) { sender.stats.acknowledged == 1000 })

        #expect(daemon.process.pause())
        let queued = SpoolTest.submit(sender, from: 1000, count: 6000, rate: 2000)
        #expect(queued == 6000, "submits dropped while the collector was stopped: \(sender.stats)")
        #expect(sender.stats.acknowledged == 1000)
        daemon.process.signal(SIGCONT)
        let report = Self.resumeAndFinish(sender, daemon, acknowledgedBefore: 1000, what: "stopped collector")
        #expect(report.undelivered == 0)
    }

    @Test("a collector absent for the first 3 s at 2,000 events/s: every event delivered once it starts")
    func absentAtStart() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-spool")
        defer { directory.remove() }
        let socketPath = directory.file("later.sock")
        // A small live window: most of the backlog is read back from the disk.
        let sender = SpoolTest.sender(.unix(path: socketPath), spool: directory.file("spool"), capacity: 1024, liveWindowBytes: 64 << 10)
        SpoolTest.submit(sender, count: 6000, rate: 2000)
        #expect(sender.stats.acknowledged == 0)
        #expect(sender.stats.spooled >= 5000, "\(sender.stats)")

        let daemon = try StartedCollector(in: directory, extra: ["--unix-socket", socketPath, "--fsync", "never"])
        defer { daemon.stop() }
        let report = Self.resumeAndFinish(sender, daemon, acknowledgedBefore: 0, what: "absent collector")
        #expect(report.stats.replayed > 0, "the backlog is read back from the spool")
    }
}
