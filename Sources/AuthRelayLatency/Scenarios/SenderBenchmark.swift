import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport

/// `authrelay latency sender`: what `EventSender.submit` costs an auth thread
/// (1 and 2 producer threads; collector healthy, SIGSTOPped and absent; with
/// the spool and without), the events/s the EventSender gets into the
/// collector end to end (with the spool and without) beside the plain C client
/// sending batches of 512, interleaved in the same run, and how fast a spooled
/// backlog replays once a stopped collector continues.
package enum SenderBenchmark {
    package struct Options: Sendable {
        /// Timed submits per producer thread in each scenario (over all its rounds).
        package var submits = 500_000
        package var producerCounts = [1, 2]
        /// Submits per second over all producer threads, paced in 1 ms ticks.
        package var rate = 200_000.0
        package var conditions: [CollectorCondition] = [.healthy, .stopped, .absent]
        /// Interleaved rounds of the submit scenarios.
        package var submitRounds = 5
        /// How long a healthy or stopped scenario's sender may drain at its end.
        package var drainTimeout: Duration = .seconds(10)
        /// End to end: events per EventSender round.
        package var events = 2_000_000
        /// End to end: how long each C client round runs (`legacy-reporter -D`).
        package var cRoundLength: Duration = .seconds(1)
        /// End to end: interleaved rounds per client and transport.
        package var rounds = 5
        package var transports: [RPCTransport] = [.local, .tcp]
        /// Each submit and end-to-end scenario without a spool and with one (issue 12).
        package var spoolModes: [Bool] = [false, true]
        /// Replay: events spooled while the collector is stopped, then delivered (0: skipped).
        package var replayEvents = 1_000_000
        /// Replay: live submits per second beside the backlog.
        package var replayLiveRate = 2000.0

        /// Existing collectors instead of starting one (the submit cost then runs healthy only).
        package var collectors: [RPCEndpoint] = []
        /// The collector to start; nil: `CollectorProgram.standard(in:)`.
        package var program: CollectorProgram?
        /// Goals: submit p99.9 under this in every condition (also the over-budget bound)...
        package var submitGoal: Duration = .microseconds(2)
        /// ...and end-to-end events/s at least this fraction of the C client's.
        package var throughputGoal = 0.8
        package var quick = false

        package init() {}

        /// What `--quick` runs: a few seconds in all.
        package static var quick: Options {
            var options = Options()
            options.submits = 20_000
            options.submitRounds = 1  // one round of 20,000 overflows the stopped sender's 16,384-event queue
            options.drainTimeout = .seconds(3)
            options.events = 200_000
            options.cRoundLength = .milliseconds(100)
            options.rounds = 2
            // The rows CI checks (SenderBenchmarkTests) are the memory sender's; the spool's come with a full run.
            options.spoolModes = [false]
            options.quick = true
            return options
        }

        var submitGoalNanoseconds: UInt64 { UInt64(max(0, submitGoal.nanoseconds)) }
    }

    /// The events the submit cost's producers cycle through. The copy a
    /// producer takes (a retain) is outside the timed region; the one the queue takes is inside.
    static let eventPoolSize = 4096

    /// `count` events with the same fields the C client sends (distinct paths and digests).
    static func eventPool(_ count: Int) -> [Event] {
        (0..<UInt64(count)).map { BenchmarkEvent.make(index: $0, sequence: 0) }
    }

    package static func run(_ options: Options, executables: Executables, progress: Progress) throws(LatencyError) -> LatencyReport {
        try check(options)
        var report = LatencyReport(subcommand: "sender", quick: options.quick)
        report.budgetMicroseconds = Double(options.submitGoalNanoseconds) / 1000
        let collector = try SenderCollector(options, executables: executables)
        defer { collector.stop() }
        report.notes.append(collector.note)

        let submitEvents = eventPool(eventPoolSize)
        let control = SubmitCostRun(submits: options.submits, producers: 1, rate: options.rate, events: submitEvents).run(nil)
        let clock = control.latency
        report.results.append(ScenarioResult(name: "clock-pair", transport: "none", rateUnit: "pairs/s", latency: clock,
                                             seconds: control.seconds))

        let submit = try SenderSubmitScenarios.run(options, collector: collector, events: submitEvents, progress: progress)
        report.results += submit.results
        let throughput = try SenderThroughput.run(options, collector: collector, events: eventPool(options.events),
                                                  executables: executables, progress: progress)
        report.results += throughput.results
        let replay = try SenderReplay.run(options, collector: collector, liveResults: throughput.results, progress: progress)
        report.results += replay.results

        let histogram = clock.histogram
        report.notes.append("every submit is timed between two clock_gettime(CLOCK_MONOTONIC) reads; clock-pair is that pair around nothing on the same schedule (1 thread, \(fixed(options.rate, 0))/s in 1 ms ticks): p50 \(histogram.valueAtPercentile(50)) ns (the timing itself, included in every submit figure), p99 \(histogram.valueAtPercentile(99)) ns, p99.9 \(histogram.valueAtPercentile(99.9)) ns (what a thread that wakes each tick pays for anything)")
        report.notes.append("submit: \(options.submits) timed submits per producer thread and scenario in \(options.submitRounds) interleaved rounds, \(fixed(options.rate, 0))/s over all producers in 1 ms ticks, \(eventPoolSize) prebuilt events, default EventSender configuration (capacity \(EventSender.Configuration(endpoint: .unix(path: "/"), agentID: "").capacity)); stopped: SIGSTOP once the sender is connected, SIGCONT before its \(options.drainTimeout.shortDescription) drain; absent: nothing listens")
        report.notes.append("submit rows: over_budget = submits over \(options.submitGoal.shortDescription), delivered = acknowledged by the collector, dropped = never acknowledged (dropped at submit, or still queued at close)")
        report.notes.append("spool: the agent's default (\(SpoolSizing.defaultMaxBytes >> 20) MiB, \(SpoolSizing.defaultSegmentBytes >> 20) MiB segments, every event written to it before it is sent) in a fresh directory under /tmp per scenario and round; rows named -spool")
        report.notes += submit.notes + throughput.notes + replay.notes + goalNotes(report.results, options) + spoolGoalNotes(report.results)
        report.errors += submit.errors + throughput.errors + replay.errors
        return report
    }

    private static func check(_ options: Options) throws(LatencyError) {
        if let bad = options.conditions.first(where: { ![.healthy, .stopped, .absent].contains($0) }) {
            throw LatencyError("condition \(bad.rawValue) is not measured by sender (healthy, stopped, absent)")
        }
        if options.transports.contains(.udp) || options.collectors.contains(where: { $0.transport == .udp }) {
            throw LatencyError("sender runs over stream transports (unix, tcp): a batch of 512 events does not fit a UDP datagram")
        }
        guard options.submits > 0, options.rate > 0, options.events > 0, options.cRoundLength > .zero, options.rounds > 0,
              options.submitRounds > 0, options.producerCounts.allSatisfy({ $0 > 0 }) else {
            throw LatencyError("submits, rate, events, seconds, rounds and producer counts must be positive")
        }
    }

    /// Whether the goals are met, in words.
    private static func goalNotes(_ results: [ScenarioResult], _ options: Options) -> [String] {
        var notes: [String] = []
        let goal = options.submitGoalNanoseconds
        let submits = results.filter { $0.authPath != nil }
        if let worst = submits.max(by: { $0.summary.p999 < $1.summary.p999 }) {
            let worstNanoseconds = UInt64((worst.summary.p999 * 1000).rounded())
            let met = submits.allSatisfy { UInt64(($0.summary.p999 * 1000).rounded()) < goal }
            notes.append("goal submit p99.9 under \(options.submitGoal.shortDescription) in every collector state: \(met ? "met" : "NOT met") (worst p99.9 \(worstNanoseconds) ns, \(worst.name))")
        }
        for result in results {
            guard let comparison = result.comparedToC else { continue }
            let met = comparison.rateRatio >= options.throughputGoal
            notes.append("goal end-to-end at least \(fixed(options.throughputGoal, 2))x the C client over \(result.transport): \(met ? "met" : "NOT met") (\(fixed(comparison.rateRatio, 2))x: \(TableWriter.grouped(result.rate)) events/s)")
        }
        return notes
    }

    /// Issue 12's goals: submit p99.9 with the spool within 1.1x of without, in every
    /// condition; healthy end to end with the spool at least 0.9x without.
    private static func spoolGoalNotes(_ results: [ScenarioResult]) -> [String] {
        var notes: [String] = []
        for spooled in results where spooled.name.hasSuffix("-spool") {
            let plainName = String(spooled.name.dropLast("-spool".count))
            guard let plain = results.first(where: { $0.name == plainName && $0.transport == spooled.transport }) else { continue }
            if spooled.authPath != nil {
                let ratio = spooled.summary.p999 / max(plain.summary.p999, 0.001)
                notes.append("goal submit p99.9 with the spool within 1.1x of without (\(plainName)): \(ratio <= 1.1 ? "met" : "NOT met") (\(fixed(ratio, 2))x: \(Int((spooled.summary.p999 * 1000).rounded())) ns against \(Int((plain.summary.p999 * 1000).rounded())) ns)")
            } else if spooled.rate > 0 && plain.rate > 0 {
                let ratio = spooled.rate / plain.rate
                notes.append("goal end to end with the spool at least 0.9x without over \(spooled.transport): \(ratio >= 0.9 ? "met" : "NOT met") (\(fixed(ratio, 2))x: \(TableWriter.grouped(spooled.rate)) against \(TableWriter.grouped(plain.rate)) events/s)")
            }
        }
        return notes
    }

    /// A spool directory of its own under /tmp (removed by the caller).
    static func spoolDirectory() throws(LatencyError) -> String {
        do {
            return try FileSystem.makeTemporaryDirectory(prefix: "authrelay-latency-spool")
        } catch {
            throw LatencyError("cannot make a spool directory: \(error)")
        }
    }

    /// A sender with the default configuration but for `configure`, that logs nothing below critical;
    /// with the agent's default spool in `spool` when given.
    static func makeSender(endpoint: RPCEndpoint, agentID: String, spool: String? = nil,
                           _ configure: (inout EventSender.Configuration) -> Void) -> EventSender {
        var configuration = EventSender.Configuration(endpoint: endpoint, agentID: agentID)
        configuration.spool = spool.map { EventSender.SpoolOptions(directory: $0 + "/spool") }
        configure(&configuration)
        var logger = Logger(label: "authrelay.latency.sender")
        logger.logLevel = .critical  // a stopped or absent collector is the point of some runs: count, do not print
        return EventSender(configuration: configuration, logger: logger)
    }

    /// Connects `sender` before the clock starts (as a running agent is) by delivering one event.
    static func warmUp(_ sender: EventSender, endpoint: RPCEndpoint, timeout: Duration = .seconds(5)) throws(LatencyError) {
        sender.submit(BenchmarkEvent.make(index: 0, sequence: 0))
        let deadline = Timestamps.monotonic() + UInt64(timeout.nanoseconds)
        while sender.stats.acknowledged < 1 {
            if Timestamps.monotonic() >= deadline {
                let error = sender.stats.lastError ?? "no answer"
                sender.close(drainTimeout: .zero)
                throw LatencyError("the EventSender could not deliver a first event to \(endpoint) within \(timeout.shortDescription): \(error)")
            }
            SystemClock.sleep(.milliseconds(1))
        }
    }
}
