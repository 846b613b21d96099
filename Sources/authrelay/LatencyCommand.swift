import ArgumentParser
import AuthRelayCLI
import AuthRelayHarness
import AuthRelayLatency
import ONCRPC
import SystemSupport

/// `authrelay latency`: flags only; the scenarios live in AuthRelayLatency.
/// Every value is typed, so a bad one fails at parse time with its flag's
/// name; `validate()` checks what spans flags (AUTHRELAY_CHECK_ARGUMENTS runs
/// it too), and `run()` only builds the options and calls the scenario.
struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Measure what ONC RPC costs against other IPC, and whether it reaches the auth decision.",
        subcommands: [LatencyTransportsCommand.self, LatencyBatchingCommand.self, LatencyAuthPathCommand.self,
                      LatencySenderCommand.self, LatencySharedMemoryPeerCommand.self, LatencyCallsCommand.self])
}

/// Flags every latency subcommand takes.
struct LatencyCommonOptions: ParsableArguments {
    @Flag(help: "Run every scenario in a few seconds (what CI runs).")
    var quick = false

    @Option(help: ArgumentHelp("Write the results as JSON, one object per scenario.", valueName: "file"))
    var json: String?

    @Option(help: ArgumentHelp("Write one HdrHistogram .hgrm percentile file per scenario into this directory.", valueName: "dir"))
    var hgrm: String?

    @Option(help: ArgumentHelp("Write an SVG chart of the latency distributions (log scale).", valueName: "file"))
    var svg: String?

    @Option(help: ArgumentHelp("Use this collector instead of starting one: tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH, rpcbind://HOST/NETID (repeatable).", valueName: "endpoint"))
    var collector: [RPCEndpoint] = []

    @Option(help: "The collector program to start next to this binary: authrelayd (the default when built) or legacy-collector.")
    var collectorProgram: CollectorProgram?

    @Flag(help: "No progress lines on stderr.")
    var noProgress = false

    @Option(help: ArgumentHelp("The folder holding grpc-collector and grpc-reporter (default: $\(GRPCPeers.environmentVariable), next to this program, or \(GRPCPeers.buildFolder)).", valueName: "dir"))
    var grpcPeers: String?

    @Flag(name: .customLong("no-grpc"), help: "No gRPC rows, even when grpc-collector and grpc-reporter are built.")
    var noGRPC = false

    /// Where the gRPC peers are; nil with --no-grpc. A --grpc-peers folder without them is an error;
    /// not finding them elsewhere only skips the gRPC rows (with a note saying how to build them).
    func grpcLookup(_ executables: Executables) throws -> GRPCPeers.Lookup? {
        if noGRPC { return nil }
        let lookup = GRPCPeers.find(explicit: grpcPeers, beside: executables)
        if let grpcPeers, lookup.peers == nil {
            throw ValidationError("--grpc-peers \(grpcPeers): no executable \(GRPCPeers.collectorName) and \(GRPCPeers.reporterName) there (\(GRPCPeers.buildCommand))")
        }
        return lookup
    }

    func executables() throws -> Executables {
        do {
            return try Executables.besideRunningProgram()
        } catch {
            throw ValidationError(error.description)
        }
    }

    func progress(_ label: String) -> Progress {
        Progress(label: "authrelay latency \(label)", enabled: !noProgress)
    }

    /// Prints the table, writes the files asked for, fails when a check failed.
    func emit(_ report: LatencyReport) throws {
        print(TableWriter.render(report), terminator: "")
        for line in try OutputFiles.write(report, json: json, hgrmDirectory: hgrm, svg: svg) { print(line) }
        if !report.errors.isEmpty { throw ExitCode(1) }
    }
}

struct LatencyTransportsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transports",
        abstract: "One-event calls over ONC RPC tcp, udp and unix beside the plain C client, unary gRPC, a raw socket ping-pong and a shared-memory ring, interleaved.")

    @OptionGroup var common: LatencyCommonOptions

    @Option(help: "Calls per scenario (default 100000; --quick 2000).")
    var count: Int?

    @Option(help: "Interleaved rounds (default 10; --quick 4).")
    var rounds: Int?

    @Option(help: "Transports to measure, comma-separated: tcp, udp, unix.")
    var transports = TransportList([.tcp, .udp, .local])

    var options: TransportsBenchmark.Options {
        var options: TransportsBenchmark.Options = common.quick ? .quick : .init()
        if let count { options.count = count }
        if let rounds { options.rounds = rounds }
        options.transports = transports.transports
        options.collectors = common.collector
        options.program = common.collectorProgram
        return options
    }

    func validate() throws {
        guard options.count > 0, options.rounds > 0 else { throw ValidationError("--count and --rounds must be positive") }
    }

    func run() throws {
        let executables = try common.executables()
        var options = self.options
        options.grpc = try common.grpcLookup(executables)
        try common.emit(try TransportsBenchmark.run(options, executables: executables, progress: common.progress("transports")))
    }
}

struct LatencyBatchingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batching",
        abstract: "Events/s and per-call latency against batch size (ONC RPC, gRPC streams, a shared-memory ring), and classic one-way batched calls, checked against the collector's count.")

    @OptionGroup var common: LatencyCommonOptions

    @Option(help: "Events per scenario (default 200000; --quick 8192).")
    var events: Int?

    @Option(help: "Batch sizes, comma-separated (1...512).")
    var batchSizes = CommaList([1, 8, 64, 512])

    @Option(help: "Interleaved rounds (default 5; --quick 2).")
    var rounds: Int?

    @Option(help: "Transports, comma-separated: tcp, unix.")
    var transports = TransportList([.tcp, .local])

    @Option(help: "One-way calls between two flushes.")
    var flushEvery = 512

    var options: BatchingBenchmark.Options {
        var options: BatchingBenchmark.Options = common.quick ? .quick : .init()
        if let events { options.events = events }
        if let rounds { options.rounds = rounds }
        options.batchSizes = batchSizes.values
        options.transports = transports.transports
        options.flushEvery = flushEvery
        options.collectors = common.collector
        options.program = common.collectorProgram
        return options
    }

    func validate() throws {
        guard options.events > 0, options.rounds > 0 else { throw ValidationError("--events and --rounds must be positive") }
    }

    func run() throws {
        let executables = try common.executables()
        var options = self.options
        options.grpc = try common.grpcLookup(executables)
        try common.emit(try BatchingBenchmark.run(options, executables: executables, progress: common.progress("batching")))
    }
}

struct LatencyAuthPathCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authpath",
        abstract: "Auth decision latency without telemetry, with AuthRelay's queued sender, and with a clnt_call or a gRPC call inside the decision, under a healthy, slow, stopped and absent collector.")

    @OptionGroup var common: LatencyCommonOptions

    @Option(help: "Requests per scenario (default 10000; --quick 400).")
    var requests: Int?

    @Option(help: "Requests per second, paced.")
    var rate = 2000.0

    @Option(help: "Decision budget; slower decisions are counted as over budget.")
    var budget: Duration = .milliseconds(100)

    @Option(help: "Per-call delay of the slow collector.")
    var collectorDelay: Duration = .milliseconds(20)

    @Option(help: "The naive design's per-call timeout.")
    var naiveTimeout: Duration = .seconds(1)

    @Option(help: "At most this many naive requests in the slow and stopped conditions (default 200; --quick 24).")
    var naiveLimit: Int?

    @Option(help: "No scenario starts requests after this many seconds (default 30; --quick 2.5).")
    var maxSeconds: Seconds?

    @Option(help: "The transport to the collector: unix, tcp or udp.")
    var transport = TransportList([.local])

    @Option(help: "Conditions, comma-separated: healthy, slow, stopped, absent.")
    var conditions = CommaList(CollectorCondition.allCases)

    @Option(help: "Where requests come from: synthetic, or fanotify (real opens of files in --watch; root).")
    var source: AgentCommand.SourceKind = .synthetic

    @Option(help: ArgumentHelp("With --source fanotify: the directory whose files are opened (files are created in it for the run).", valueName: "dir"))
    var watch: String?

    @Option(help: "With --source fanotify: opens per scenario (default 200; --quick 100).")
    var opens: Int?

    var options: AuthPathBenchmark.Options {
        var options: AuthPathBenchmark.Options = common.quick ? .quick : .init()
        if let requests { options.requests = requests }
        if let naiveLimit { options.naiveLimit = naiveLimit }
        if let maxSeconds { options.maxDuration = maxSeconds.duration }
        options.rate = rate
        options.budget = budget
        options.collectorDelay = collectorDelay
        options.naiveTimeout = naiveTimeout
        options.transport = transport.transports[0]
        options.conditions = conditions.values
        options.collector = common.collector.first
        if let collector = options.collector { options.transport = collector.transport }
        options.program = common.collectorProgram
        if source == .fanotify {
            options.watch = watch
            if let opens { options.opens = opens }
        }
        return options
    }

    func validate() throws {
        guard transport.transports.count == 1 else { throw ValidationError("--transport takes one transport: unix, tcp or udp") }
        guard common.collector.count <= 1 else { throw ValidationError("authpath takes one --collector") }
        switch source {
        case .synthetic:
            guard watch == nil, opens == nil else { throw ValidationError("--watch and --opens go with --source fanotify") }
        case .fanotify:
            guard watch != nil else { throw ValidationError("--source fanotify needs --watch DIR") }
            guard options.opens > 0 else { throw ValidationError("--opens must be positive") }
        }
        guard options.requests > 0, options.rate > 0 else { throw ValidationError("--requests and --rate must be positive") }
    }

    func run() throws {
        let executables = try common.executables()
        var options = self.options
        options.grpc = try common.grpcLookup(executables)
        try common.emit(try AuthPathBenchmark.run(options, executables: executables, progress: common.progress("authpath")))
    }
}

struct LatencySenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sender",
        abstract: "EventSender.submit cost in ns (1 and 2 producer threads; collector healthy, stopped, absent) and end-to-end events/s beside the C client sending batches of 512, interleaved.")

    @OptionGroup var common: LatencyCommonOptions

    @Option(help: "Timed submits per producer thread and scenario (default 500000; --quick 20000).")
    var submits: Int?

    @Option(help: "Producer thread counts, comma-separated.")
    var producers = CommaList([1, 2])

    @Option(help: "Submits per second over all producer threads, paced in 1 ms ticks.")
    var rate = 200_000.0

    @Option(help: "Collector conditions for the submit cost, comma-separated: healthy, stopped, absent.")
    var conditions = CommaList<CollectorCondition>([.healthy, .stopped, .absent])

    @Option(help: "Interleaved rounds of the submit scenarios (default 5; --quick 1).")
    var submitRounds: Int?

    @Option(help: "End to end: events per EventSender round (default 2000000; --quick 200000).")
    var events: Int?

    @Option(help: "End to end: seconds per C client round, legacy-reporter -B 512 -D (default 1; --quick 0.1).")
    var seconds: Seconds?

    @Option(help: "End to end: interleaved rounds per client and transport (default 5; --quick 2).")
    var rounds: Int?

    @Option(help: "End to end: transports, comma-separated: unix, tcp.")
    var transports = TransportList([.local, .tcp])

    var options: SenderBenchmark.Options {
        var options: SenderBenchmark.Options = common.quick ? .quick : .init()
        if let submits { options.submits = submits }
        if let submitRounds { options.submitRounds = submitRounds }
        if let events { options.events = events }
        if let seconds { options.cRoundLength = seconds.duration }
        if let rounds { options.rounds = rounds }
        options.rate = rate
        options.producerCounts = producers.values
        options.conditions = conditions.values
        options.transports = transports.transports
        options.collectors = common.collector
        options.program = common.collectorProgram
        return options
    }

    func validate() throws {
        if let slow = conditions.values.first(where: { $0 == .slow }) {
            throw ValidationError("unknown condition '\(slow.rawValue)' (healthy, stopped, absent)")
        }
        if let count = producers.values.first(where: { $0 <= 0 }) {
            throw ValidationError("cannot read producer count '\(count)'")
        }
        let options = self.options
        guard options.submits > 0, options.rate > 0, options.events > 0, options.cRoundLength > .zero, options.rounds > 0,
              options.submitRounds > 0 else {
            throw ValidationError("--submits, --rate, --events, --seconds, --rounds and --submit-rounds must be positive")
        }
    }

    func run() throws {
        try common.emit(try SenderBenchmark.run(options, executables: common.executables(), progress: common.progress("sender")))
    }
}

/// The consumer of the shared-memory rows, started by `transports` and `batching` themselves.
struct LatencySharedMemoryPeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shm-peer",
        abstract: "The consumer side of the shared-memory rows (started by transports and batching).",
        shouldDisplay: false)

    @Option(help: "The ring file the benchmark created.")
    var region: String

    @Option(help: "The benchmark's pid: the peer ends when it is gone.")
    var parent: Int32

    func run() throws {
        try SharedMemoryPeer.run(region: region, parent: parent)
    }
}

/// N bare CollectorClient.report(event) calls, for Benchmarks/instructions.sh
/// (callgrind counts the client; a timed loop would count the clock too).
struct LatencyCallsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calls",
        abstract: "Send --count version 1 REPORT_EVENT calls, one CollectorClient.report each, untimed (instruction counts).",
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The collector: tcp://HOST:PORT, udp://HOST:PORT, unix:///PATH, rpcbind://HOST/NETID.", valueName: "endpoint"))
    var collector: RPCEndpoint

    @Option(help: "How many calls.")
    var count = 1000

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    func run() throws {
        print("calls \(try TransportsBenchmark.calls(to: collector, count: count))")
    }
}

extension CollectorProgram: ExpressibleByArgument {}
extension CollectorCondition: ExpressibleByArgument {}
