import AuthRelay
import AuthRelayProtocol
import Testing

@testable import AuthRelayAgent

@Suite("DecisionStats")
struct DecisionStatsTests {
    @Test("counts verdicts, deadline answers and own-process opens; records every decision's latency")
    func counts() {
        let pipeline = AuthPipeline(policy: Policy(rules: [.path(prefix: "/secret", verdict: .deny)]), sender: nil)
        let stats = DecisionStats()
        for index in 0..<10 {
            let target = index % 5 == 0 ? "/secret/\(index)" : "/public/\(index)"
            stats.record(pipeline.handle(AuthRequest(kind: .open, pid: 1, executablePath: "/bin/cat", targetPath: target)) { _ in })
        }
        // Arrived 90 ms ago: the guard answers with the fail verdict (allow).
        let late = AuthRequest(kind: .exec, pid: 1, executablePath: "/bin/sh", targetPath: "/secret/late",
                               arrivalNanoseconds: Timestamps.monotonic() - 90_000_000)
        stats.record(pipeline.handle(late) { _ in })
        stats.recordOwnProcess()
        stats.recordOwnProcess()

        #expect(stats.decisions == 11)
        #expect(stats.allowed == 9)
        #expect(stats.denied == 2)
        #expect(stats.forcedByDeadline == 1)
        #expect(stats.ownProcessAllowed == 2, "own-process opens are not decisions")
        #expect(stats.latency.totalCount == 11)
        #expect(stats.latency.max >= 90_000_000, "the late request's latency runs from its arrival")
    }

    @Test("a very old request still counts (its latency clamped to the histogram's hour)")
    func clampsLatency() {
        let pipeline = AuthPipeline(policy: Policy(), sender: nil)
        let stats = DecisionStats()
        let ancient = AuthRequest(kind: .open, pid: 1, executablePath: "/bin/cat", targetPath: "/x", arrivalNanoseconds: 0)
        stats.record(pipeline.handle(ancient) { _ in })
        #expect(stats.latency.totalCount == 1)
    }
}
