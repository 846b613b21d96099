// Through authrelayd (Benchmarks/fleet.sh): agents are legacy-reporter
// processes (plain C, version 2 batches of 512, each waiting for its
// acknowledgement, which authrelayd gives only after the commit or the
// fdatasync), 1 or 4 at once against one collector over TCP loopback.
import AuthRelayHarness
import SystemSupport

/// Where the programs are, given on the command line.
struct CollectorPrograms {
    var authrelayd: String
    var reporter: String
    /// An authrelayd from before the group commit (JSON Lines only), if given.
    var before: String?
}

/// One authrelayd started for the benchmark, stopped by its pid when released.
final class BenchCollector {
    let process: ChildProcess
    let port: UInt16

    init(_ executable: String, in directory: TemporaryDirectory, name: String, sink: [String]) throws(HarnessError) {
        process = try ChildProcess(executable, [
            "--no-rpcbind", "--transports", "tcp", "--port", "0", "--data-dir", directory.file("\(name)-data"),
            "--output", directory.file("\(name).jsonl"), "--rotate-size", "0", "--log-level", "info",
        ] + sink, outputIn: directory, tag: name)
        let log = try process.waitFor("ready", timeout: .seconds(30))
        guard let range = log.firstRange(of: "listening tcp 127.0.0.1:"),
              let port = UInt16(log[range.upperBound...].prefix { $0.isNumber }) else {
            throw HarnessError("\(name): no listening line in its log:\n\(log)")
        }
        self.port = port
    }

    deinit { _ = process.stop() }

    /// CPU seconds the collector used so far.
    var cpu: Double { cpuSeconds(process.pid) }
}

/// `agents` reporters at once for `seconds`; the sum of their events/s and
/// the events they had acknowledged.
func runReporters(_ programs: CollectorPrograms, port: UInt16, agents: Int, seconds: Int, batch: Int,
                  in directory: TemporaryDirectory) throws(HarnessError) -> (rate: Int, events: Int) {
    var reporters: [ChildProcess] = []
    for index in 0..<agents {
        reporters.append(try ChildProcess(programs.reporter, ["-t", "tcp", "-P", "\(port)", "-B", "\(batch)", "-D", "\(seconds)"],
                                          outputIn: directory, tag: "reporter-\(port)-\(index)-\(UInt32.random(in: 0...UInt32.max))"))
    }
    var rate = 0
    var events = 0
    for reporter in reporters {
        let ended = try reporter.waitForExit(timeout: .seconds(Int64(seconds) + 60))
        let line = reporter.stdout
        func field(_ name: String) -> Int? {
            guard let range = line.firstRange(of: "\(name)=") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        guard case .exited(0) = ended, let perSecond = field("events_per_s"), let count = field("events") else {
            throw HarnessError("legacy-reporter failed (\(ended)):\n\(reporter.output)")
        }
        rate += perSecond
        events += count
    }
    return (rate, events)
}
