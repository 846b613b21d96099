import AuthRelay
import AuthRelayProtocol
import Foundation
import ONCRPC
import Synchronization
import Testing

/// An authrelayd started for one test: its ports come from its "listening" log lines.
final class CollectorDaemon {
    let process: ChildProcess
    let directory: TemporaryDirectory
    let dataDirectory: String
    let socketPath: String
    let outputPath: String
    private(set) var tcpPort: UInt16 = 0
    private(set) var udpPort: UInt16 = 0

    /// Starts authrelayd with every transport on loopback, no rpcbind unless
    /// `rpcbind`, the data directory and output in `directory`; `extra` goes last.
    init(in directory: TemporaryDirectory, rpcbind: Bool = false, program: UInt32? = nil, port: UInt16 = 0,
         dataDirectory: String? = nil, output: String? = nil, extra: [String] = []) throws {
        self.directory = directory
        self.dataDirectory = dataDirectory ?? directory.file("data")
        socketPath = directory.file("authrelayd-\(UUID().uuidString.prefix(6)).sock")
        outputPath = output ?? directory.file("events.jsonl")
        var arguments = ["--data-dir", self.dataDirectory, "--unix-socket", socketPath, "--output", outputPath,
                         "--port", String(port), "--log-level", "debug"]
        if !rpcbind { arguments.append("--no-rpcbind") }
        if let program { arguments += ["--program", String(program)] }
        process = try ChildProcess("authrelayd", arguments + extra, in: directory)
        do {
            let log = try process.waitFor("ready")
            tcpPort = Self.port(in: log, transport: "tcp")
            udpPort = Self.port(in: log, transport: "udp")
        } catch {
            process.stop()  // never ready: nothing of it may outlive the test
            throw error
        }
    }

    static func port(in log: String, transport: String) -> UInt16 {
        guard let range = log.range(of: "listening \(transport) 127.0.0.1:") else { return 0 }
        return UInt16(log[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    var tcp: RPCEndpoint { .tcp(host: "127.0.0.1", port: tcpPort) }
    var udp: RPCEndpoint { .udp(host: "127.0.0.1", port: udpPort) }
    var unix: RPCEndpoint { .unix(path: socketPath) }
    var pid: Int32 { process.pid }

    @discardableResult
    func stop() -> Int32 { process.stop() }

    /// The output's lines as JSON objects (every line must parse).
    func outputLines() throws -> [[String: Any]] {
        try Self.jsonLines(atPath: outputPath)
    }

    static func jsonLines(atPath path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return try data.split(separator: UInt8(ascii: "\n")).map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw CollectorTestError.notAnObject(String(decoding: line, as: UTF8.self))
            }
            return object
        }
    }

    /// Resident memory of the daemon in KiB (VmRSS).
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Open descriptors of the daemon.
    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }
}

enum CollectorTestError: Error {
    case notAnObject(String)
}

/// Events and batches for collector tests.
enum Reports {
    static func event(_ sequence: UInt64, path: String = "/etc/passwd") -> Event {
        Event(sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000 + sequence, kind: sequence % 2 == 0 ? .exec : .open,
              verdict: sequence % 3 == 0 ? .deny : .allow, decisionNanoseconds: 1500, pid: 4242, ppid: 1, uid: 1000, gid: 100,
              flags: .cached, executablePath: "/usr/bin/cat", targetPath: path, digest: [0xDE, 0xAD, 0xBE, 0xEF])
    }

    static func batch(agent: String = "agent-1", boot: String = "boot-1", first: UInt64, count: Int, dropped: UInt64 = 0) -> EventBatch {
        EventBatch(header: BatchHeader(agentID: agent, bootID: boot, firstSequence: first, dropped: dropped),
                   events: (0..<count).map { event(first + UInt64($0)) })
    }

    static func events(of lines: [[String: Any]], agent: String? = nil) -> [[String: Any]] {
        lines.filter { $0["type"] as? String == "event" && (agent == nil || $0["agent_id"] as? String == agent) }
    }

    static func sequences(of lines: [[String: Any]], agent: String? = nil) -> [UInt64] {
        events(of: lines, agent: agent).compactMap { ($0["seq"] as? NSNumber)?.uint64Value }
    }
}

/// Runs `body` until it returns true or `timeout` passes; true when it did.
func eventually(timeout: Duration = .seconds(10), _ body: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try body() { return true }
        usleep(20_000)
    }
    return false
}

/// Runs a command to its end (bounded) and returns its status and output.
@discardableResult
func runCommand(_ path: String, _ arguments: [String], timeout: Duration = .seconds(20)) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)  // not SIGTERM: a command that ignores it would hang the test
        process.waitUntilExit()
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Program numbers handed out by this process so far.
private let programNumbersIssued = Atomic<UInt32>(0)

/// A program number of the transient range (0x40000000-0x5fffffff) per call, so
/// tests that use the machine's rpcbind never share a registration (a second
/// registration of a number replaces the first). 29 bits: the low 20 bits of
/// the pid keep test processes apart (pids are unique among running processes,
/// and up to 2^20 they map one to one), and a process-wide counter in the other
/// 9 keeps the calls of one process apart: 512 before it wraps, far more than
/// the tests ask for, and a wrapped number's daemon stopped long before.
func uniqueProgramNumber() -> UInt32 {
    let call = programNumbersIssued.wrappingAdd(1, ordering: .relaxed).oldValue
    return 0x4000_0000 | (UInt32(truncatingIfNeeded: getpid()) & 0xF_FFFF) << 9 | (call & 0x1FF)
}
