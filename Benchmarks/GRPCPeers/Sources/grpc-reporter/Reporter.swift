// grpc-reporter: the gRPC counterpart of legacy-reporter -L for `authrelay latency`.
//
//   unary           one ReportEvent call per event, one after another
//   stream          one ReportBatches stream; sends a batch of --batch events, waits
//                   for its ack, sends the next (latency per batch)
//   authpath-naive  requests arrive at --rate; each makes one ReportEvent call with
//                   the --timeout deadline before the next request is taken; the
//                   latency runs from the request's scheduled arrival, timeouts included
//
// stdout: exactly one line at the end, legacy-reporter's -L format plus timeouts=:
//   grpc-reporter: calls=C events=E seconds=S calls_per_s=X events_per_s=Y
//                  p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. timeouts=T errors=K
// stderr: "grpc-reporter: running" once the warm-up is done and the measured calls
// start; the first 10 failed calls ("grpc-reporter: seq 5: deadlineExceeded: ...").
// Exit status: 0 when every call succeeded, 1 otherwise, 2 for bad flags.
import ArgumentParser
import Dispatch
import GRPCBenchProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCPeerSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let program = "grpc-reporter"

enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
    case unary
    case stream
    case authpathNaive = "authpath-naive"
}

struct Reporter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: program,
        abstract: "A gRPC reporter for the AuthRelay latency benchmark (the counterpart of legacy-reporter -L).",
        discussion: """
            Prints one line on stdout: calls= events= seconds= calls_per_s= events_per_s= p50_us= \
            p90_us= p99_us= p999_us= max_us= timeouts= errors= (errors counts every failed call, \
            timeouts those of them that ran out of --timeout). calls counts acknowledged calls \
            (unary, authpath-naive) or batches (stream). Latency is per call (unary), per batch \
            from its write to its ack (stream), or per request from its scheduled arrival to the \
            end of its call, timeouts included (authpath-naive). Exit status 0 when every call \
            succeeded, 1 otherwise, 2 for bad flags.
            """)

    @Option(help: ArgumentHelp("The collector: tcp://HOST:PORT or unix:///PATH.", valueName: "URL"))
    var target: String

    @Option(help: "unary, stream or authpath-naive.")
    var mode: Mode = .unary

    @Option(help: ArgumentHelp("Events per batch in stream mode (1...512).", valueName: "N"))
    var batch = 1

    @Option(name: [.customShort("n"), .customLong("count")], help: ArgumentHelp("Events (unary, stream) or requests (authpath-naive) to send.", valueName: "EVENTS"))
    var count: UInt64 = 10_000

    @Option(name: .customLong("timeout"), help: ArgumentHelp("Deadline of each call (unary, authpath-naive) or each batch's ack (stream), in milliseconds.", valueName: "MS"))
    var timeoutMilliseconds: UInt64 = 5000

    @Option(help: ArgumentHelp("Start calls (batches in stream mode, requests in authpath-naive) at this many per second; default: back to back (authpath-naive: 2000).", valueName: "R"))
    var rate: Double?

    @Option(name: .customLong("max-seconds"), help: ArgumentHelp("Start no call or request after this many seconds (the run stops early).", valueName: "S"))
    var maxSeconds: Double?

    @Option(help: ArgumentHelp("Also write the HdrHistogram percentile distribution (µs) to this file.", valueName: "FILE"))
    var hgrm: String?

    @Option(name: .customLong("start-seq"), help: "seq of the first event.")
    var startSequence: UInt64 = 1

    @Flag(name: .customLong("no-warmup"), help: "Skip the warm-up Ping (which connects before the clock starts).")
    var noWarmup = false

    func validate() throws {
        guard PeerEndpoint(parsing: target) != nil else {
            throw ValidationError("bad --target: \(target) (want tcp://HOST:PORT or unix:///PATH)")
        }
        guard (1...Bounds.batchMax).contains(batch) else { throw ValidationError("bad --batch: \(batch) (1...\(Bounds.batchMax))") }
        if batch != 1 && mode != .stream { throw ValidationError("--batch is for --mode stream") }
        guard (1...3_600_000).contains(timeoutMilliseconds) else { throw ValidationError("bad --timeout: \(timeoutMilliseconds) ms") }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("bad --rate: \(rate)") }
        if let maxSeconds, !(maxSeconds > 0 && maxSeconds.isFinite) { throw ValidationError("bad --max-seconds: \(maxSeconds)") }
    }
}

@main
enum Main {
    static func main() async {
        let reporter: Reporter
        do {
            reporter = try Reporter.parse()
        } catch {
            // --help: stdout, status 0. A bad flag: the message and the usage on stderr, status 2 (as legacy-reporter).
            if Reporter.exitCode(for: error) == .success {
                print(Reporter.fullMessage(for: error))
                exit(0)
            }
            writeStandardError("\(program): \(Reporter.fullMessage(for: error))\n")
            exit(2)
        }
        exit(await Run(reporter).execute())
    }
}

/// One run of the reporter.
struct Run: Sendable {
    /// The options that matter once parsed (the command itself holds property wrappers).
    struct Options: Sendable {
        var mode: Mode
        var batch: Int
        var count: UInt64
        var timeoutMilliseconds: UInt64
        var rate: Double?
        var maxSeconds: Double?
        var hgrm: String?
        var noWarmup: Bool
    }

    let options: Options
    let endpoint: PeerEndpoint
    let events: BenchmarkEvents
    let timeoutNanoseconds: UInt64
    let callOptions: CallOptions

    init(_ options: Reporter) {
        self.options = Options(
            mode: options.mode, batch: options.batch, count: options.count,
            timeoutMilliseconds: options.timeoutMilliseconds, rate: options.rate, maxSeconds: options.maxSeconds,
            hgrm: options.hgrm, noWarmup: options.noWarmup)
        endpoint = PeerEndpoint(parsing: options.target)!
        events = BenchmarkEvents(agentID: program, startSequence: options.startSequence)
        timeoutNanoseconds = options.timeoutMilliseconds * 1_000_000
        var callOptions = CallOptions.defaults
        callOptions.timeout = .milliseconds(Int64(options.timeoutMilliseconds))
        self.callOptions = callOptions
    }

    typealias Service = AuthrelayBench_AuthRelayBench.Client<HTTP2ClientTransport.Posix>

    func execute() async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let tally = Tally()
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: endpoint.resolvableTarget, transportSecurity: .plaintext)
            try await withGRPCClient(transport: transport) { client in
                let service = Service(wrapping: client)
                if !options.noWarmup { await warmUp(service) }
                note(program, "running")
                switch options.mode {
                case .unary: await unary(service, tally)
                case .stream: await stream(service, tally)
                case .authpathNaive: await authpathNaive(service, tally)
                }
                finish(tally)
                // Closing the client waits for its connection; a stopped collector must not hold the exit.
                let status: Int32 = tally.errors == 0 ? 0 : 1
                DispatchQueue.global().asyncAfter(deadline: .now() + 1) { exit(status) }
            }
        } catch {
            note(program, "cannot create the client for \(endpoint): \(describe(error))")
            tally.errors += 1
            finish(tally)
        }
        return tally.errors == 0 ? 0 : 1
    }

    private func finish(_ tally: Tally) {
        if tally.end < tally.start { tally.end = tally.start }
        print(tally.summaryLine())
        fflush(nil) // stdout: the line must be out before a forced exit
        if let path = options.hgrm, !tally.writeHgrm(to: path) {
            note(program, "cannot write \(path)")
        }
    }

    /// One Ping (not counted by the collector): connects before the clock starts.
    private func warmUp(_ service: Service) async {
        do {
            _ = try await service.ping(AuthrelayBench_PingRequest(), options: callOptions)
        } catch {
            note(program, "warm-up ping failed: \(describe(error))")
        }
    }

    /// Whether --max-seconds forbids starting another call at `now`.
    private func outOfTime(_ tally: Tally, now: UInt64) -> Bool {
        guard let maxSeconds = options.maxSeconds else { return false }
        return now >= tally.start &+ UInt64(maxSeconds * 1e9)
    }

    // MARK: unary

    private func unary(_ service: Service, _ tally: Tally) async {
        let pacer = options.rate.map { Pacer(rate: $0) }
        tally.start = pacer?.start ?? Clock.monotonicNanoseconds()
        tally.end = tally.start
        var next: UInt64 = 0
        while next < options.count && !outOfTime(tally, now: Clock.monotonicNanoseconds()) {
            if let pacer { _ = await pacer.wait(for: next) }
            let event = events.event(index: next)
            next += 1
            let t0 = Clock.monotonicNanoseconds()
            do {
                let ack = try await service.reportEvent(event, options: callOptions)
                tally.end = Clock.monotonicNanoseconds()
                if ack.status == .ok && ack.seq == event.seq {
                    tally.succeeded(events: 1)
                    tally.record(nanoseconds: tally.end - t0)
                } else {
                    tally.failed("seq \(event.seq)", "collector answered status \(ack.status), seq \(ack.seq)", timeout: false)
                }
            } catch {
                tally.end = Clock.monotonicNanoseconds()
                tally.failed("seq \(event.seq)", describe(error), timeout: isTimeout(error))
            }
        }
    }

    // MARK: authpath-naive

    /// The naive agent: the call sits inside the decision, so a request is answered only
    /// after its call returns or times out, and later requests wait behind it.
    private func authpathNaive(_ service: Service, _ tally: Tally) async {
        let pacer = Pacer(rate: options.rate ?? 2000)
        tally.start = pacer.start
        tally.end = tally.start
        var next: UInt64 = 0
        while next < options.count {
            if next > 0 && outOfTime(tally, now: max(pacer.arrival(of: next), Clock.monotonicNanoseconds())) { break }
            let arrival = await pacer.wait(for: next)
            let event = events.event(index: next)
            next += 1
            do {
                let ack = try await service.reportEvent(event, options: callOptions)
                tally.end = Clock.monotonicNanoseconds()
                if ack.status == .ok && ack.seq == event.seq {
                    tally.succeeded(events: 1)
                } else {
                    tally.failed("seq \(event.seq)", "collector answered status \(ack.status), seq \(ack.seq)", timeout: false)
                }
            } catch {
                tally.end = Clock.monotonicNanoseconds()
                tally.failed("seq \(event.seq)", describe(error), timeout: isTimeout(error))
            }
            tally.record(nanoseconds: tally.end - arrival)
        }
    }

    // MARK: stream

    /// Where the stream run is; the request producer moves it on, a watchdog reads `openingSince`.
    final class StreamProgress: @unchecked Sendable {
        /// Index of the next event to send.
        var next: UInt64 = 0
        /// Batches started so far (for --rate).
        var batches: UInt64 = 0
        /// Monotonic ns when the current stream was asked for, until its producer runs; 0 after.
        let openingSince = Atomic<UInt64>(0)
    }

    struct Abandoned: Error {}

    private enum AttemptEnd: Sendable {
        case finished
        case failed(any Error)
        case notOpened // the stream did not start within --timeout
    }

    /// Batches over ReportBatches streams: one stream for the whole run while all goes
    /// well; a batch that fails or runs out of --timeout ends its stream (it is reset),
    /// and the next batch opens a new one.
    private func stream(_ service: Service, _ tally: Tally) async {
        let pacer = options.rate.map { Pacer(rate: $0) }
        let progress = StreamProgress()
        tally.start = pacer?.start ?? Clock.monotonicNanoseconds()
        tally.end = tally.start
        let batchSize = UInt64(options.batch)
        let timeoutNanoseconds = self.timeoutNanoseconds
        let count = options.count
        let events = self.events
        let run = self

        while progress.next < count && !outOfTime(tally, now: Clock.monotonicNanoseconds()) {
            // A new stream after a failed one keeps to the schedule too (the producer's wait for
            // the same batch then returns at once).
            if let pacer { _ = await pacer.wait(for: progress.batches) }
            let before = progress.next
            let mailbox = AckMailbox()
            progress.openingSince.store(Clock.monotonicNanoseconds(), ordering: .relaxed)

            let end: AttemptEnd = await withTaskGroup(of: AttemptEnd?.self) { group in
                group.addTask {
                    do {
                        try await service.reportBatches(
                            requestProducer: { writer in
                                progress.openingSince.store(0, ordering: .relaxed)
                                while progress.next < count && !run.outOfTime(tally, now: Clock.monotonicNanoseconds()) {
                                    if let pacer { _ = await pacer.wait(for: progress.batches) }
                                    let n = min(batchSize, count - progress.next)
                                    let batch = events.batch(firstIndex: progress.next, count: Int(n))
                                    progress.next += n
                                    progress.batches += 1
                                    let what = n == 1 ? "seq \(batch.firstSeq)" : "seq \(batch.firstSeq)..\(batch.firstSeq + n - 1)"

                                    let outcome = await race(timeoutNanoseconds: timeoutNanoseconds) {
                                        let t0 = Clock.monotonicNanoseconds()
                                        try await writer.write(batch)
                                        let ack = try await mailbox.next()
                                        return (t0, Clock.monotonicNanoseconds(), ack)
                                    }
                                    switch outcome {
                                    case .value(let (t0, t1, ack)):
                                        tally.end = t1
                                        if ack.status == .ok && UInt64(ack.accepted) == n && ack.highestSeq == batch.firstSeq + n - 1 {
                                            tally.succeeded(events: Int(n))
                                            tally.record(nanoseconds: t1 - t0)
                                        } else {
                                            tally.failed(what, "collector answered status \(ack.status), accepted \(ack.accepted), highest_seq \(ack.highestSeq)", timeout: false)
                                        }
                                    case .timeout:
                                        tally.end = Clock.monotonicNanoseconds()
                                        tally.failed(what, "no ack within \(run.options.timeoutMilliseconds) ms", timeout: true)
                                        throw Abandoned()
                                    case .failure(let error):
                                        tally.end = Clock.monotonicNanoseconds()
                                        tally.failed(what, describe(error), timeout: isTimeout(error))
                                        throw Abandoned()
                                    }
                                }
                            },
                            onResponse: { response in
                                do {
                                    for try await ack in response.messages { mailbox.deliver(ack) }
                                    mailbox.finish(nil)
                                } catch {
                                    mailbox.finish(error)
                                    throw error
                                }
                            })
                        return .finished
                    } catch {
                        return .failed(error)
                    }
                }
                group.addTask {
                    // Watchdog for a stream that never starts (e.g. a collector stopped before the
                    // connection was up): once per --timeout, so it costs nothing while all is well.
                    while true {
                        do { try await Task.sleep(nanoseconds: timeoutNanoseconds) } catch { return nil }
                        let since = progress.openingSince.load(ordering: .relaxed)
                        if since != 0 && Clock.monotonicNanoseconds() - since >= timeoutNanoseconds { return .notOpened }
                    }
                }
                var end: AttemptEnd?
                while end == nil, let next = await group.next() { end = next }
                group.cancelAll()
                return end ?? .finished
            }
            progress.openingSince.store(0, ordering: .relaxed)

            if progress.next == before {
                // The stream failed before its producer took a batch: that batch fails.
                let n = min(batchSize, count - before)
                progress.next += n
                progress.batches += 1
                tally.end = Clock.monotonicNanoseconds()
                let first = events.startSequence + before
                let what = n == 1 ? "seq \(first)" : "seq \(first)..\(first + n - 1)"
                switch end {
                case .notOpened:
                    tally.failed(what, "the stream did not open within \(options.timeoutMilliseconds) ms", timeout: true)
                case .failed(let error):
                    tally.failed(what, describe(error), timeout: isTimeout(error))
                case .finished:
                    tally.failed(what, "the stream ended before the batch was sent", timeout: false)
                }
            }
        }
    }
}
