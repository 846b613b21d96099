import AuthRelayHarness
import Foundation
import Glibc
import SystemSupport
import TestSupport
import Testing

/// One event as a collector wrote it, whatever its output format.
struct CollectedEvent: Equatable {
    var kind: String      // "open", "exec"
    var verdict: String   // "allow", "deny"
    var pid: Int32
    var targetPath: String
    var ppid: Int32 = 0
    var uid: UInt32 = 0
    var executablePath = ""

    /// Same request and answer; the details from /proc are checked separately.
    func isSameDecision(as other: CollectedEvent) -> Bool {
        kind == other.kind && verdict == other.verdict && pid == other.pid && targetPath == other.targetPath
    }
}

/// A collector on an AF_LOCAL socket in a temporary directory, writing one line per event.
///
/// authrelayd (JSON Lines) when the built one serves `--unix-socket`; else the
/// plain C legacy-collector, which speaks version 1 and writes tab-separated
/// key=value lines (the agent's sender negotiates down to version 1).
final class TestCollector {
    let socketPath: String
    let outputPath: String
    let process: ChildProcess
    let isAuthrelayd: Bool

    init(in directory: TemporaryDirectory) throws {
        socketPath = directory.file("collector.sock")
        outputPath = directory.file("collector-events.txt")
        isAuthrelayd = Self.authrelaydIsUsable
        if isAuthrelayd {
            let data = directory.file("collector-data")
            try FileSystem.makeDirectories(data)
            process = try ChildProcess(BuiltPrograms.path("authrelayd"), [
                "--transports", "unix", "--unix-socket", socketPath, "--no-rpcbind",
                "--output", outputPath, "--sink", "jsonl", "--data-dir", data,
            ], outputIn: directory)
        } else {
            process = try ChildProcess(BuiltPrograms.path("legacy-collector"),
                                       ["-n", "-t", "unix", "-s", socketPath, "-o", outputPath], outputIn: directory)
        }
        try waitForSocket()
    }

    /// The agent's --collector value.
    var address: String { "unix://\(socketPath)" }

    /// Whether the built authrelayd has the flags these tests use (it is being written alongside the agent).
    static let authrelaydIsUsable: Bool = {
        guard let help = try? ChildProcess.run(BuiltPrograms.path("authrelayd"), ["--help"], timeout: .seconds(20)) else {
            return false
        }
        return help.output.contains("--unix-socket") && help.output.contains("--sink")
    }()

    private func waitForSocket() throws(HarnessError) {
        let deadline = SystemClock.deadline(after: .seconds(10))
        while SystemClock.monotonicNanoseconds() < deadline {
            if FileSystem.exists(socketPath) && (isAuthrelayd || process.stderr.contains("ready")) { return }
            if let ended = process.exitStatus {
                throw HarnessError("\(process.name) ended (\(ended)) before serving \(socketPath)\n\(process.describeOutput())")
            }
            SystemClock.sleep(.milliseconds(20))
        }
        throw HarnessError("\(process.name): no socket \(socketPath) within 10 s\n\(process.describeOutput())")
    }

    /// Every event written so far.
    var events: [CollectedEvent] {
        let text = FileSystem.readText(outputPath) ?? ""
        return text.split(separator: "\n").compactMap { isAuthrelayd ? Self.parseJSON($0) : Self.parseLegacy($0) }
    }

    /// Waits until `predicate` holds for the events written; bounded.
    @discardableResult
    func waitForEvents(timeout: Duration = .seconds(15), _ predicate: ([CollectedEvent]) -> Bool) -> [CollectedEvent] {
        var current = events
        _ = eventually(timeout: timeout) {
            current = events
            return predicate(current)
        }
        return current
    }

    /// `{"type":"event",...,"kind":"open","verdict":"allow","pid":N,...,"target_path":"..."}`
    static func parseJSON(_ line: Substring) -> CollectedEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              object["type"] as? String == "event",
              let kind = object["kind"] as? String, let verdict = object["verdict"] as? String,
              let pid = (object["pid"] as? NSNumber)?.int32Value, let target = object["target_path"] as? String
        else { return nil }
        return CollectedEvent(kind: kind, verdict: verdict, pid: pid, targetPath: target,
                              ppid: (object["ppid"] as? NSNumber)?.int32Value ?? 0,
                              uid: (object["uid"] as? NSNumber)?.uint32Value ?? 0,
                              executablePath: object["exe_path"] as? String ?? "")
    }

    /// `seq=1<TAB>...kind=OPEN<TAB>verdict=ALLOW<TAB>...pid=N<TAB>...target_path=...` (Docs/Protocol.md).
    static func parseLegacy(_ line: Substring) -> CollectedEvent? {
        var fields: [Substring: Substring] = [:]
        for field in line.split(separator: "\t") {
            guard let equals = field.firstIndex(of: "=") else { continue }
            fields[field[..<equals]] = field[field.index(after: equals)...]
        }
        guard let kind = fields["kind"], let verdict = fields["verdict"],
              let pid = fields["pid"].flatMap({ Int32($0) }), let target = fields["target_path"] else { return nil }
        return CollectedEvent(kind: kind.lowercased(), verdict: verdict.lowercased(), pid: pid, targetPath: String(target),
                              ppid: fields["ppid"].flatMap { Int32($0) } ?? 0,
                              uid: fields["uid"].flatMap { UInt32($0) } ?? 0,
                              executablePath: String(fields["exe_path"] ?? ""))
    }

    /// Stops it (SIGTERM, SIGKILL after a grace period); the events were read before.
    func stop() {
        process.stop()
    }
}

/// `authrelay agent` watching a directory of a temporary directory.
final class TestAgent {
    let process: ChildProcess

    /// `collector` nil: a socket nobody listens on (the agent keeps its events and
    /// gives up on them after a short drain at stop).
    init(watching watched: String, deny: [String] = [], collector: String?, extra: [String] = [],
         in directory: TemporaryDirectory) throws {
        let address = collector ?? "unix://\(directory.file("no-collector.sock"))"
        var arguments = ["agent", "--watch", watched, "--collector", address, "--log-level", "info"]
        if collector == nil { arguments += ["--drain-seconds", "0.5"] }
        // A spool of its own: the default one is the machine's, and tests run side by side.
        if !extra.contains("--spool-dir") && !extra.contains("--no-spool") { arguments += ["--spool-dir", directory.file("agent-spool")] }
        for prefix in deny { arguments += ["--deny", prefix] }
        process = try ChildProcess(BuiltPrograms.path("authrelay"), arguments + extra, outputIn: directory)
        try process.waitFor("authrelay agent: ready")
    }

    var pid: Int32 { process.pid }

    /// SIGTERM, then how it ended and the summary it printed. Bounded.
    func stop(timeout: Duration = .seconds(30)) throws -> (status: Processes.Termination, summary: String) {
        process.signal(SIGTERM)
        let status = try process.waitForExit(timeout: timeout)
        return (status, process.stdout)
    }
}

/// A directory inside a temporary directory that the agent watches, with its real path
/// (what the agent reads back from /proc and reports).
struct WatchedDirectory {
    let path: String

    init(in directory: TemporaryDirectory, named name: String = "watched") throws {
        let made = directory.file(name)
        try FileSystem.makeDirectories(made)
        path = URL(fileURLWithPath: made).resolvingSymlinksInPath().path
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Creates a file; call before the agent starts (creating opens it too).
    @discardableResult
    func create(_ name: String, contents: String = "data\n") -> String {
        let path = file(name)
        try? FileSystem.writeFile(path, Array(contents.utf8))
        return path
    }

    /// Copies an executable in (e.g. /bin/true); call before the agent starts.
    @discardableResult
    func copyExecutable(_ source: String, as name: String) throws -> String {
        let path = file(name)
        try FileSystem.writeFile(path, try FileSystem.readFile(source), mode: 0o755)
        try FileSystem.setMode(path, 0o755)  // whatever the umask took away
        return path
    }
}

/// open(2) from this process: 0 when it succeeded (the descriptor is closed), else errno.
func openErrno(_ path: String) -> Int32 {
    do throws(SystemError) {
        try FileDescriptor.open(path, O_RDONLY).close()
        return 0
    } catch {
        return error.errno
    }
}

/// Starts `path` with its output discarded; the child, or the error number
/// exec failed with (a denied exec fails in posix_spawn itself).
func startProgram(_ path: String, _ arguments: [String] = []) -> Result<ChildProcess, SystemError> {
    do throws(HarnessError) {
        return .success(try ChildProcess(discardingOutputOf: path, arguments))
    } catch {
        return .failure(error.system ?? SystemError(function: "posix_spawn", errno: 0, path: path, detail: error.message))
    }
}

/// Waits until every thread of `pid` is stopped (state T in /proc/PID/task/*/stat); bounded.
func waitUntilStopped(_ pid: pid_t, timeout: Duration) -> Bool {
    eventually(timeout: timeout) {
        let tasks = (try? FileSystem.listDirectory("/proc/\(pid)/task")) ?? []
        let states = tasks.compactMap { Int32($0).flatMap(Processes.state) }  // /proc/TID/stat is the thread's
        return !states.isEmpty && states.allSatisfy { $0 == "T" || $0 == "t" }
    }
}

/// The number after `label` in `text` ("acknowledged 12" -> 12).
func number(after label: String, in text: String) -> UInt64? {
    guard let range = text.firstRange(of: label + " ") else { return nil }
    return UInt64(text[range.upperBound...].prefix { $0.isNumber })
}
