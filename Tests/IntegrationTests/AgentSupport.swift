import AuthRelayAgent
import Foundation
import Testing

/// Why the fanotify tests cannot run here, or nil when they can (root, and the
/// kernel gives this process permission events).
let fanotifyUnavailableReason: String? = {
    if geteuid() != 0 { return "not root: fanotify permission events need CAP_SYS_ADMIN" }
    if let error = FanotifySource.probe() { return "fanotify permission events unavailable: \(error)" }
    return nil
}()

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
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            process = try ChildProcess("authrelayd", [
                "--transports", "unix", "--unix-socket", socketPath, "--no-rpcbind",
                "--output", outputPath, "--sink", "jsonl", "--data-dir", data,
            ], in: directory)
        } else {
            process = try ChildProcess("legacy-collector", ["-n", "-t", "unix", "-s", socketPath, "-o", outputPath],
                                       in: directory)
        }
        try waitForSocket()
    }

    /// The agent's --collector value.
    var address: String { "unix://\(socketPath)" }

    /// Whether the built authrelayd has the flags these tests use (it is being written alongside the agent).
    static let authrelaydIsUsable: Bool = {
        // Bounded: a --help that hangs fails the tests that need it instead of hanging them.
        guard let (_, output) = try? runCommand(Products.path("authrelayd"), ["--help"]) else { return false }
        return output.contains("--unix-socket") && output.contains("--sink")
    }()

    private func waitForSocket() throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: socketPath) && (isAuthrelayd || process.stderr.contains("ready")) {
                return
            }
            if !process.process.isRunning {
                throw ChildProcessError.exited(process.name, process.process.terminationStatus, process.stdout, process.stderr)
            }
            usleep(20_000)
        }
        throw ChildProcessError.timedOut(process.name, "socket \(socketPath)", process.stdout, process.stderr)
    }

    /// Every event written so far.
    var events: [CollectedEvent] {
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { isAuthrelayd ? Self.parseJSON($0) : Self.parseLegacy($0) }
    }

    /// Waits until `predicate` holds for the events written; bounded.
    @discardableResult
    func waitForEvents(timeout: Duration = .seconds(15), _ predicate: ([CollectedEvent]) -> Bool) -> [CollectedEvent] {
        let deadline = ContinuousClock.now + timeout
        var current = events
        while !predicate(current) && ContinuousClock.now < deadline {
            usleep(50_000)
            current = events
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

    /// Stops it; the events were read before. Short grace: a child started from a
    /// test thread may have SIGTERM blocked (the mask is inherited), then SIGKILL ends it.
    func stop() {
        process.stop(grace: .milliseconds(500))
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
        for prefix in deny { arguments += ["--deny", prefix] }
        process = try ChildProcess("authrelay", arguments + extra, in: directory)
        try process.waitFor("authrelay agent: ready")
    }

    var pid: Int32 { process.pid }

    /// SIGTERM, then the exit status and the summary it printed. Bounded.
    func stop(timeout: Duration = .seconds(30)) throws -> (status: Int32, summary: String) {
        process.signal(SIGTERM)
        let status = try process.waitForExit(timeout: timeout)
        return (status, process.stdout)
    }
}

/// A directory inside a temporary directory that the agent watches, with its real path
/// (what the agent reads back from /proc and reports).
struct WatchedDirectory {
    let path: String

    init(in directory: TemporaryDirectory) throws {
        let made = directory.file("watched")
        try FileManager.default.createDirectory(atPath: made, withIntermediateDirectories: true)
        path = URL(fileURLWithPath: made).resolvingSymlinksInPath().path
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Creates a file; call before the agent starts (creating opens it too).
    @discardableResult
    func create(_ name: String, contents: String = "data\n") -> String {
        let path = file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
        return path
    }

    /// Copies an executable in (e.g. /bin/true); call before the agent starts.
    @discardableResult
    func copyExecutable(_ source: String, as name: String) throws -> String {
        let path = file(name)
        try FileManager.default.copyItem(atPath: source, toPath: path)
        chmod(path, 0o755)
        return path
    }
}

/// open(2) from this process: 0 when it succeeded (the descriptor is closed), else errno.
func openErrno(_ path: String) -> Int32 {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    if descriptor < 0 { return errno }
    close(descriptor)
    return 0
}

/// posix_spawn(3) of `path` with stdout and stderr on /dev/null: the child's pid, or the exec errno.
func spawnProgram(_ path: String, _ arguments: [String] = []) -> Result<pid_t, POSIXError> {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let environment: [UnsafeMutablePointer<CChar>?] = [nil]  // the programs run here need none
    var pid = pid_t()
    let status = posix_spawn(&pid, path, &actions, nil, argv, environment)
    if status != 0 { return .failure(POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO)) }
    return .success(pid)
}

/// Waits for a child of this process; its exit status, or nil (after SIGKILL) when it does not end in time.
func waitForChild(_ pid: pid_t, timeout: Duration) -> Int32? {
    let deadline = ContinuousClock.now + timeout
    var status: Int32 = 0
    while ContinuousClock.now < deadline {
        if waitpid(pid, &status, WNOHANG) == pid {
            return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
        usleep(5_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
    return nil
}

/// Waits until every thread of `pid` is stopped (state T in /proc/PID/task/*/stat); bounded.
func waitUntilStopped(_ pid: pid_t, timeout: Duration) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let states = tasks.compactMap { task -> Character? in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                  let end = stat.range(of: ") ", options: .backwards) else { return nil }
            return stat[end.upperBound...].first
        }
        if !states.isEmpty && states.allSatisfy({ $0 == "T" || $0 == "t" }) { return true }
        usleep(5_000)
    }
    return false
}

/// The number after `label` in `text` ("acknowledged 12" -> 12).
func number(after label: String, in text: String) -> UInt64? {
    guard let range = text.range(of: label + " ") else { return nil }
    return UInt64(text[range.upperBound...].prefix { $0.isNumber })
}
