// Events/s into PostgreSQL through AuthRelayPostgres's EventStore: batches
// of 512, each acknowledged (counted) only after its COMMIT returned, with 1
// and with 4 concurrent writers (one connection each, distinct agents), by
// both write methods; beside them the same kind of rows loaded by
// `psql \copy` from a file in one COPY: what PostgreSQL itself ingests here.
// Benchmarks/postgres.sh builds it (release) and runs it; see there.
import AuthRelayHarness
import Glibc
import AuthRelayPostgres
import Synchronization
import SystemSupport

struct Options {
    var seconds = 5
    var batch = 512
    var writers = [1, 4]
    var methods: [EventStore.WriteMethod] = [.pipelinedArrays, .copyThenMerge]
    var copyRows = 1_000_000
    var url: String?
    var passwordFile: String?
    var durable = true
    var rounds = 3
    /// Through authrelayd (Collectors.swift): its path and legacy-reporter's; none: the store alone.
    var authrelayd: String?
    var reporter: String?
    var beforeAuthrelayd: String?
    var agents = [1, 4]

    init(_ arguments: [String]) {
        var rest = arguments[...]
        func value() -> String {
            guard let next = rest.popFirst() else { fail("a value is missing after \(arguments.last ?? "")") }
            return next
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--seconds": seconds = Int(value()) ?? seconds
            case "--batch": batch = Int(value()) ?? batch
            case "--writers": writers = value().split(separator: ",").compactMap { Int($0) }
            case "--methods": methods = value().split(separator: ",").compactMap { EventStore.WriteMethod(rawValue: String($0)) }
            case "--copy-rows": copyRows = Int(value()) ?? copyRows
            case "--url": url = value()
            case "--password-file": passwordFile = value()
            case "--rounds": rounds = max(1, Int(value()) ?? rounds)
            case "--not-durable": durable = false
            case "--authrelayd": authrelayd = value()
            case "--reporter": reporter = value()
            case "--before-authrelayd": beforeAuthrelayd = value()
            case "--agents": agents = value().split(separator: ",").compactMap { Int($0) }
            default: fail("""
                unknown flag \(flag)
                usage: authrelay-postgres-bench [--seconds N] [--batch N] [--writers 1,4] [--methods arrays,copy]
                       [--copy-rows N] [--rounds N] [--url postgresql://... [--password-file F]] [--not-durable]
                       [--authrelayd PATH --reporter PATH [--before-authrelayd PATH] [--agents 1,4]]
                """)
            }
        }
    }
}

func twoDecimals(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

/// The cluster the benchmark started (none with --url): removed on every way out.
nonisolated(unsafe) var cluster: TemporaryPostgres?

func fail(_ message: String) -> Never {
    cluster?.remove()
    Processes.writeToStandardError("authrelay-postgres-bench: \(message)\n")
    exit(1)
}

/// One writer's rows: realistic sizes (paths of 20-40 bytes, a 32-byte
/// digest, 1 % denials), numbered from 1 per (agent, boot).
func makeBatch(agent: String, boot: String, firstSequence: UInt64, count: Int) -> [EventRow] {
    let now = SystemClock.realtimeNanoseconds()
    return (0..<count).map { index in
        let sequence = firstSequence + UInt64(index)
        return EventRow(
            source: .batch(agentID: agent, bootID: boot), sequence: sequence, timestampNanoseconds: now + UInt64(index),
            kind: index % 7 == 0 ? "exec" : "open", verdict: sequence % 100 == 0 ? "deny" : "allow",
            decisionNanoseconds: 20_000 + UInt64(index % 1000), pid: Int32(1000 + index % 300), ppid: 1,
            uid: 1000, gid: 1000, flags: sequence % 3 == 0 ? 1 : 0, executablePath: "/usr/bin/program-\(index % 40)",
            targetPath: "/home/user/project/file-\(sequence % 5000).txt",
            digest: (0..<32).map { UInt8(truncatingIfNeeded: Int(sequence) &* 31 &+ $0) },
            receivedNanoseconds: now, peer: PeerCredentials(uid: 0, gid: 0, pid: 4242))
    }
}

/// CPU seconds a process has used (utime + stime of /proc/PID/stat): what a
/// run costs, whatever else shares the cores (wall-clock rates here move by
/// a third from run to run with other work on the machine).
func cpuSeconds(_ pid: Int32) -> Double {
    guard let stat = FileSystem.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

struct RunResult {
    var events = 0
    var batches = 0
    /// The writers' server processes' CPU.
    var serverCPU = 0.0
    /// This process's CPU (encoding, libpq, the row generation too).
    var clientCPU = 0.0
    var seconds = 0.0
    var latencies: [UInt64] = []

    var rate: Int { Int(Double(events) / seconds) }

    func percentile(_ fraction: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]) / 1e6
    }
}

/// `writers` threads, each with its own store, storing batches for `seconds`.
func run(method: EventStore.WriteMethod, writers: Int, options: Options, settings: ConnectionSettings,
         round: Int) -> RunResult {
    let total = Mutex(RunResult())
    let failures = Mutex<[String]>([])
    let group = ThreadGroup()
    let start = Atomic<UInt64>(0)
    let ready = Atomic<Int>(0)
    for writer in 0..<writers {
        group.start(name: "bench-writer-\(writer)") {
            var result = RunResult()
            do {
                let store = try EventStore.open(settings, collectorID: "bench-collector-\(writer)")
                store.method = method
                let backend = Int32((try store.query("SELECT pg_backend_pid()").first?.first ?? nil) ?? "") ?? 0
                _ = try store.store(StoreBatch())  // nothing: connects and prepares before the clock starts
                let cpuBefore = cpuSeconds(backend)
                defer { result.serverCPU = cpuSeconds(backend) - cpuBefore }
                ready.add(1, ordering: .sequentiallyConsistent)
                while start.load(ordering: .sequentiallyConsistent) == 0 { SystemClock.sleep(.milliseconds(1)) }
                let deadline = start.load(ordering: .sequentiallyConsistent) + UInt64(options.seconds) * 1_000_000_000
                let agent = "agent-\(round)-\(method.rawValue)-\(writers)-\(writer)"
                var next: UInt64 = 1
                while SystemClock.monotonicNanoseconds() < deadline {
                    let rows = makeBatch(agent: agent, boot: "boot-1", firstSequence: next, count: options.batch)
                    let began = SystemClock.monotonicNanoseconds()
                    let receipt = try store.store(StoreBatch(events: rows))
                    result.latencies.append(SystemClock.monotonicNanoseconds() - began)
                    result.events += receipt.eventsStored
                    result.batches += 1
                    next += UInt64(options.batch)
                }
            } catch {
                ready.add(1, ordering: .sequentiallyConsistent)
                failures.withLock { $0.append("\(error)") }
            }
            let mine = result
            total.withLock { total in
                total.events += mine.events
                total.batches += mine.batches
                total.serverCPU += mine.serverCPU
                total.latencies += mine.latencies
            }
        }
    }
    while ready.load(ordering: .sequentiallyConsistent) < writers { SystemClock.sleep(.milliseconds(1)) }
    let clientBefore = cpuSeconds(Processes.currentID)
    let began = SystemClock.monotonicNanoseconds()
    start.store(began, ordering: .sequentiallyConsistent)
    group.joinAll()
    if let failure = failures.withLock({ $0.first }) { fail("a writer failed: \(failure)") }
    var result = total.withLock { $0 }
    result.seconds = Double(SystemClock.monotonicNanoseconds() - began) / 1e9
    result.clientCPU = cpuSeconds(Processes.currentID) - clientBefore
    return result
}

func median(_ values: [Int]) -> Int {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

let copyColumns = "agent_id, boot_id, seq, timestamp_ns, kind, verdict, decision_ns, pid, ppid, uid, gid, flags, "
    + "exe_path, target_path, digest, received_ns, peer_uid, peer_gid, peer_pid, collector_id"

/// The rows of `makeBatch` as COPY text (tab-separated, \N for NULL, bytea as \x hex).
func copyFile(rows count: Int, path: String) throws(SystemError) {
    var text = ""
    text.reserveCapacity(count * 220)
    var sequence: UInt64 = 1
    while Int(sequence) <= count {
        for row in makeBatch(agent: "agent-copy", boot: "boot-1", firstSequence: sequence, count: min(4096, count - Int(sequence) + 1)) {
            let digest = row.digest.map { byte in
                let hex = Array("0123456789abcdef")
                return String([hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            }.joined()
            let fields: [String] = [
                "agent-copy", "boot-1", "\(row.sequence)", "\(row.timestampNanoseconds)", row.kind, row.verdict,
                "\(row.decisionNanoseconds)", "\(row.pid)", "\(row.ppid)", "\(row.uid)", "\(row.gid)", "\(row.flags)",
                row.executablePath, row.targetPath, "\\\\x" + digest, "\(row.receivedNanoseconds)",
                "\(row.peer!.uid)", "\(row.peer!.gid)", "\(row.peer!.pid)", "bench-copy",
            ]
            text += fields.joined(separator: "\t") + "\n"
            sequence = row.sequence + 1
        }
    }
    try FileSystem.writeFile(path, Array(text.utf8))
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let settings: ConnectionSettings
do {
    if let url = options.url {
        settings = ConnectionSettings(conninfo: url, passwordFile: options.passwordFile)
    } else {
        let started = try TemporaryPostgres(options: .init(durable: options.durable))
        try started.createDatabase("bench")
        cluster = started
        settings = ConnectionSettings(conninfo: started.url(database: "bench"), passwordFile: started.passwordFile)
        print("cluster: \(started.binaries), port \(started.port), fsync \(options.durable ? "on" : "off"), synchronous_commit on")
    }
    let store = try EventStore.open(settings, collectorID: "bench")
    try store.migrate()
    let version = try store.query("SHOW server_version").first?.first ?? nil
    print("server \(version ?? "?"), batches of \(options.batch), \(options.seconds) s per run, \(options.rounds) rounds, TCP loopback")
    var copyPath: String?
    if let cluster {
        copyPath = FileSystem.directoryName(of: cluster.passwordFile) + "/copy.tsv"
        try copyFile(rows: options.copyRows, path: copyPath!)
    }
    // Every configuration once per round, interleaved, so a noisy neighbour
    // weighs on all of them alike; the medians are the figures.
    var rates: [String: [Int]] = [:]
    var serverNanoseconds: [String: [Int]] = [:]
    var order: [String] = []
    func record(_ name: String, _ rate: Int, serverCPUPerEvent: Double? = nil) {
        if rates[name] == nil { order.append(name) }
        rates[name, default: []].append(rate)
        if let serverCPUPerEvent { serverNanoseconds[name, default: []].append(Int(serverCPUPerEvent * 1e9)) }
    }
    // Through authrelayd: collectors started once, every run against them.
    let programs = options.authrelayd.flatMap { daemon in
        options.reporter.map { CollectorPrograms(authrelayd: daemon, reporter: $0, before: options.beforeAuthrelayd) }
    }
    let benchDirectory = try TemporaryDirectory(prefix: "authrelay-fleet-bench")
    defer { benchDirectory.remove() }
    var collectors: [(name: String, collector: BenchCollector, agents: [Int], database: Bool)] = []
    if let programs {
        var postgres = ["--sink", "postgres", "--postgres-url", settings.conninfo]
        if let file = settings.passwordFile { postgres += ["--postgres-password-file", file] }
        collectors.append(("authrelayd --sink postgres", try BenchCollector(programs.authrelayd, in: benchDirectory, name: "pg", sink: postgres),
                           options.agents, true))
        let jsonl = ["--sink", "jsonl", "--fsync", "batch"]
        collectors.append(("authrelayd --sink jsonl --fsync batch (group commit)",
                           try BenchCollector(programs.authrelayd, in: benchDirectory, name: "jsonl", sink: jsonl), options.agents, false))
        if let before = programs.before {
            collectors.append(("authrelayd --sink jsonl --fsync batch (before: one fdatasync per batch)",
                               try BenchCollector(before, in: benchDirectory, name: "jsonl-before", sink: jsonl), options.agents, false))
        }
        print("collectors: \(programs.authrelayd)\(programs.before.map { ", before: \($0)" } ?? ""); agents: legacy-reporter, version 2 batches of \(options.batch), TCP loopback")
    }
    for round in 1...options.rounds {
        for (name, collector, agentCounts, database) in collectors {
            for agents in agentCounts {
                if database { _ = try store.query("TRUNCATE events") }
                let cpuBefore = collector.cpu
                let result = try runReporters(programs!, port: collector.port, agents: agents, seconds: options.seconds,
                                              batch: options.batch, in: benchDirectory)
                let collectorCPU = (collector.cpu - cpuBefore) / Double(max(1, result.events)) * 1e6
                var stored = ""
                if database {
                    let rows = Int((try store.query("SELECT count(*) FROM events").first?.first ?? nil) ?? "") ?? -1
                    if rows != result.events { fail("\(name): \(result.events) events acknowledged, \(rows) rows in the table") }
                    stored = " rows_in_table=\(rows)"
                }
                print("round \(round) \(name) agents=\(agents) events=\(result.events) events_per_s=\(result.rate)\(stored)"
                      + " collector_cpu_us_per_event=\(twoDecimals(collectorCPU))")
                record("\(name) agents=\(agents)", result.rate)
            }
        }
        for writers in options.writers {
            for method in options.methods {
                _ = try store.query("TRUNCATE events")
                let result = run(method: method, writers: writers, options: options, settings: settings, round: round)
                print("round \(round) method=\(method.rawValue) writers=\(writers) events=\(result.events)"
                      + " events_per_s=\(result.rate) commit_ms_p50=\(twoDecimals(result.percentile(0.5)))"
                      + " commit_ms_p99=\(twoDecimals(result.percentile(0.99)))"
                      + " server_cpu_us_per_event=\(twoDecimals(result.serverCPU / Double(max(1, result.events)) * 1e6))"
                      + " client_cpu_us_per_event=\(twoDecimals(result.clientCPU / Double(max(1, result.events)) * 1e6))")
                record("store method=\(method.rawValue) writers=\(writers)", result.rate,
                       serverCPUPerEvent: result.serverCPU / Double(max(1, result.events)))
            }
        }
        if let cluster, let copyPath {
            _ = try store.query("TRUNCATE events")
            let began = SystemClock.monotonicNanoseconds()
            try cluster.psql(["-c", "\\copy events (\(copyColumns)) FROM '\(copyPath)'"], database: "bench")
            let rate = Int(Double(options.copyRows) / (Double(SystemClock.monotonicNanoseconds() - began) / 1e9))
            print("round \(round) psql \\copy rows=\(options.copyRows) events_per_s=\(rate) (one COPY, one transaction)")
            record("psql \\copy (one transaction)", rate)
        }
    }
    let reference = rates["psql \\copy (one transaction)"].map(median)
    print("median events/s over \(options.rounds) rounds:")
    for name in order {
        let value = median(rates[name]!)
        let ratio = reference.map { " (\(twoDecimals(Double(value) / Double($0)))x of \\copy)" } ?? ""
        let cpu = serverNanoseconds[name].map { ", server CPU \(twoDecimals(Double(median($0)) / 1000)) us/event" } ?? ""
        print("  \(name): \(value)\(ratio)\(cpu)")
    }
    cluster?.remove()
} catch {
    fail("\(error)")
}
