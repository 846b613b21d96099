import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import Synchronization
import SystemSupport

/// How fast a spooled backlog goes to the collector once it answers again
/// (issue 12: at least 0.8x the live end-to-end rate, new events not starved):
/// a sender with the default spool, connected, the collector SIGSTOPped,
/// `replayEvents` events submitted and written to the spool, the collector
/// continued; replayed events/s from SIGCONT to the last acknowledgement,
/// while a producer keeps submitting live events at `replayLiveRate`.
enum SenderReplay {
    static func run(_ options: SenderBenchmark.Options, collector: SenderCollector, liveResults: [ScenarioResult],
                    progress: Progress) throws(LatencyError) -> (results: [ScenarioResult], notes: [String], errors: [String]) {
        guard options.replayEvents > 0, options.spoolModes.contains(true) else { return ([], [], []) }
        guard collector.canRun(.stopped) else {
            return ([], ["replay: skipped, it needs a collector this run starts (not --collector)"], [])
        }
        progress.update("replay of a \(options.replayEvents)-event backlog")
        let endpoint = try collector.endpoint(.local)
        let spool = try SenderBenchmark.spoolDirectory()
        defer { FileSystem.removeTree(spool) }
        let backlog = SenderBenchmark.eventPool(options.replayEvents)
        let sender = SenderBenchmark.makeSender(endpoint: endpoint, agentID: "authrelay-latency-replay", spool: spool) { configuration in
            configuration.capacity = options.replayEvents + 1
            configuration.maxQueuedBytes = 1 << 40
        }
        try SenderBenchmark.warmUp(sender, endpoint: endpoint)
        collector.beforeProducers(.stopped)
        for event in backlog { sender.submit(event) }
        let spooledBy = Timestamps.monotonic() + 300_000_000_000
        while sender.stats.spooled < UInt64(options.replayEvents) + 1 && Timestamps.monotonic() < spooledBy {
            SystemClock.sleep(.milliseconds(5))
        }
        let spooled = sender.stats
        collector.afterProducers(.stopped)
        let start = Timestamps.monotonic()

        // Live events beside the backlog, paced.
        let live = LiveProducer(sender: sender, rate: options.replayLiveRate)
        let producer = ThreadGroup()
        producer.start(name: "latency-live") { live.run() }
        let target = UInt64(options.replayEvents) + 1
        let deadline = start + 600_000_000_000
        var failure: String?
        while sender.stats.acknowledged < target {
            if Timestamps.monotonic() > deadline {
                failure = "replay: \(sender.stats.acknowledged) of \(target) acknowledged after 600 s"
                break
            }
            SystemClock.sleep(.microseconds(500))
        }
        let seconds = Time.seconds(since: start)
        live.stop()
        producer.joinAll()
        let report = sender.close(drainTimeout: .seconds(30))

        var result = ScenarioResult(name: "replay-\(options.replayEvents)-spool", transport: TransportsBenchmark.label(.local),
                                    rateUnit: "events/s", count: UInt64(options.replayEvents), seconds: seconds,
                                    summary: PercentileSummary(p50: 0, p90: 0, p99: 0, p999: 0, max: 0))
        result.rate = Double(options.replayEvents) / max(seconds, 1e-9)
        result.events = UInt64(options.replayEvents)
        let liveSubmitted = live.submitted
        result.notes.append("backlog of \(options.replayEvents) events (\(spooled.spoolBytes) spool bytes, \(spooled.spoolSegments) segments) replayed in \(fixed(seconds, 2)) s; \(report.stats.replayed) read back from the disk, the rest from memory")
        result.notes.append("live events beside it at \(fixed(options.replayLiveRate, 0))/s: \(liveSubmitted) submitted, \(report.stats.acknowledged - target) acknowledged by the end, \(report.stats.dropped) dropped, undelivered \(report.undelivered)")
        var notes: [String] = []
        if let liveRate = liveResults.first(where: { $0.name == "sender-\(TransportsBenchmark.label(.local))-spool" })?.rate, liveRate > 0 {
            let ratio = result.rate / liveRate
            notes.append("goal replay at least 0.8x the live end-to-end rate (with the spool, unix): \(ratio >= 0.8 ? "met" : "NOT met") (\(fixed(ratio, 2))x: \(TableWriter.grouped(result.rate)) against \(TableWriter.grouped(liveRate)) events/s)")
        }
        var errors: [String] = []
        if let failure { errors.append(failure) }
        if report.undelivered > 0 || report.stats.dropped > 0 {
            errors.append("replay: \(report.undelivered) undelivered, \(report.stats.dropped) dropped")
        }
        return ([result], notes, errors)
    }
}

/// Submits events at a steady rate until stopped.
private final class LiveProducer: Sendable {
    private let sender: EventSender
    private let rate: Double
    private let stopped = Atomic<Bool>(false)
    private let count = Atomic<UInt64>(0)

    init(sender: EventSender, rate: Double) {
        self.sender = sender
        self.rate = rate
    }

    var submitted: UInt64 { count.load(ordering: .relaxed) }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() {
        let start = Timestamps.monotonic()
        var index: UInt64 = 0
        while !stopped.load(ordering: .relaxed) {
            SystemClock.sleep(untilMonotonic: start + UInt64(Double(index) / rate * 1e9))
            sender.submit(BenchmarkEvent.make(index: index, sequence: 0))
            count.add(1, ordering: .relaxed)
            index += 1
        }
    }
}
