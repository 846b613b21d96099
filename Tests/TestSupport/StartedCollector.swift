import AuthRelayHarness
import ONCRPC
import SystemSupport

/// An authrelayd started for one test (not the collector module's daemon): its
/// ports come from its "listening" log lines, its output is read back with
/// `CollectorOutput`. Stopped by its pid when released.
package final class StartedCollector {
    package let process: ChildProcess
    package let directory: TemporaryDirectory
    package let dataDirectory: String
    package let socketPath: String
    package let outputPath: String
    package private(set) var tcpPort: UInt16 = 0
    package private(set) var udpPort: UInt16 = 0

    /// Starts authrelayd with every transport on loopback, no rpcbind unless
    /// `rpcbind`, the data directory and output in `directory`; `extra` goes
    /// last (a later flag wins). Returns once it logged "ready".
    package init(in directory: TemporaryDirectory, rpcbind: Bool = false, program: UInt32? = nil, port: UInt16 = 0,
                 dataDirectory: String? = nil, output: String? = nil, extra: [String] = []) throws(HarnessError) {
        self.directory = directory
        self.dataDirectory = dataDirectory ?? directory.file("data")
        socketPath = directory.file("authrelayd-\(String(UInt32.random(in: 0...UInt32.max), radix: 16)).sock")
        outputPath = output ?? directory.file("events.jsonl")
        var arguments = ["--data-dir", self.dataDirectory, "--unix-socket", socketPath, "--output", outputPath,
                         "--port", String(port), "--log-level", "debug"]
        if !rpcbind { arguments.append("--no-rpcbind") }
        if let program { arguments += ["--program", String(program)] }
        process = try ChildProcess(BuiltPrograms.path("authrelayd"), arguments + extra, outputIn: directory)
        do {
            let log = try process.waitFor("ready")
            tcpPort = Self.port(in: log, transport: "tcp")
            udpPort = Self.port(in: log, transport: "udp")
        } catch {
            process.stop()  // never ready: nothing of it may outlive the test
            throw error
        }
    }

    /// The port of "listening TRANSPORT 127.0.0.1:PORT" in a collector's log
    /// (authrelayd's and legacy-collector's words); 0 when there is none.
    package static func port(in log: String, transport: String) -> UInt16 {
        guard let range = log.firstRange(of: "listening \(transport) 127.0.0.1:") else { return 0 }
        return UInt16(log[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    package var tcp: RPCEndpoint { .tcp(host: "127.0.0.1", port: tcpPort) }
    package var udp: RPCEndpoint { .udp(host: "127.0.0.1", port: udpPort) }
    package var unix: RPCEndpoint { .unix(path: socketPath) }
    package var pid: Int32 { process.pid }

    /// SIGTERM (SIGKILL after a grace period); how it ended. Safe to call again.
    @discardableResult
    package func stop() -> Processes.Termination { process.stop() }

    /// The output's lines as JSON objects (every line must parse).
    package func outputLines() throws -> [[String: Any]] {
        try CollectorOutput.lines(atPath: outputPath)
    }

    /// Resident memory of the daemon in KiB (VmRSS).
    package var residentKiB: Int { Processes.statusKiB(pid, "VmRSS") ?? 0 }

    /// Open descriptors of the daemon.
    package var openDescriptors: Int { Processes.openDescriptorCount(pid) }
}
