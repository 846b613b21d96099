import Foundation
import Glibc

/// The plain C `legacy-collector` (Sources/legacy-collector), started from the built
/// products for one test, its stderr and event lines in a temporary folder, stopped
/// by its pid. Every wait is bounded.
///
/// Started with posix_spawn and an empty signal mask, not Foundation.Process: tests
/// run on libdispatch worker threads, which block SIGTERM, and a child spawned by
/// Process inherits that mask, so SIGTERM would never reach it.
final class LegacyCollector {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The built program, next to the test bundle.
    static let path: String? = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("legacy-collector").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    let directory: String
    let outputPath: String
    let errorPath: String
    private(set) var pid: pid_t = 0
    private var exitStatus: Int32?

    var stderr: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }
    /// The event lines written so far (-o).
    var lines: [String] {
        ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Starts `legacy-collector ARGUMENTS -o OUTPUT` and waits for "ready".
    init(_ arguments: [String]) throws {
        guard let path = Self.path else { throw Failure(description: "legacy-collector is not built next to the tests") }
        directory = NSTemporaryDirectory() + "legacy-collector-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        outputPath = directory + "/events.txt"
        errorPath = directory + "/stderr.txt"
        pid = try Self.spawn(path, arguments + ["-o", outputPath], stderr: errorPath)
        do {
            try waitFor("legacy-collector: ready")
        } catch {
            stop()
            throw error
        }
    }

    private static func spawn(_ path: String, _ arguments: [String], stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var nothing = sigset_t()
        sigemptyset(&nothing)
        posix_spawnattr_setsigmask(&attributes, &nothing)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT] { sigaddset(&defaults, signal) }  // this process ignores SIGPIPE
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard status == 0 else { throw Failure(description: "posix_spawn \(path): \(String(cString: strerror(status)))") }
        return pid
    }

    /// True until the process has exited (and been reaped here).
    var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        exitStatus = status
        return false
    }

    /// Waits until stderr contains `text`.
    func waitFor(_ text: String, timeout: Duration = .seconds(10)) throws {
        let deadline = ContinuousClock.now + timeout
        while !stderr.contains(text) {
            guard isRunning else {
                throw Failure(description: "legacy-collector exited (\(exitStatus ?? -1)):\n\(stderr)")
            }
            guard ContinuousClock.now < deadline else {
                throw Failure(description: "legacy-collector: no \"\(text)\" within \(timeout):\n\(stderr)")
            }
            usleep(10_000)
        }
    }

    /// The TCP port from "legacy-collector: listening tcp 127.0.0.1:PORT".
    var tcpPort: UInt16? {
        stderr.split(separator: "\n").lazy
            .filter { $0.hasPrefix("legacy-collector: listening tcp ") }
            .compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } }
            .first
    }

    /// SIGTERM, then SIGKILL after two seconds; returns the wait status.
    @discardableResult
    func stop() -> Int32 {
        guard isRunning else { return exitStatus ?? 0 }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(2)
        while isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            exitStatus = status
        }
        return exitStatus ?? 0
    }

    /// Stops the collector and removes its folder.
    func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
