import Foundation
import Testing

/// Helpers for tests that start the package's own programs. Every process is
/// started by path, stopped by its pid, and every wait is bounded in time.
enum Products {
    /// The folder holding the built products (next to the test bundle).
    static let directory: URL = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("authrelayd").path) {
                return url
            }
        }
        return URL(fileURLWithPath: ".build/debug")
    }()

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }
}

/// A temporary directory removed when the test ends (call `remove()` in a defer).
struct TemporaryDirectory {
    let url: URL
    var path: String { url.path }

    init(_ prefix: String = "authrelay-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A child process whose stdout and stderr go to files, so a test can wait for
/// a line and read everything afterwards. Stopped (by its pid) when released, so
/// a test that throws before its own `stop()` leaves nothing running.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    let stdoutPath: String
    let stderrPath: String
    /// Whether `run()` succeeded: Foundation's Process traps on `terminationStatus`
    /// of a process never launched, and `deinit` also runs when `init` throws.
    private var launched = false

    var pid: Int32 { process.processIdentifier }

    init(_ product: String, _ arguments: [String], in directory: TemporaryDirectory, environment: [String: String]? = nil) throws {
        name = product
        let tag = "\(product)-\(UUID().uuidString.prefix(6))"
        stdoutPath = directory.file("\(tag).out")
        stderrPath = directory.file("\(tag).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Products.path(product))
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        // A child inherits the spawning thread's signal mask, and test worker
        // threads block signals: spawn with none blocked so SIGTERM stops it.
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        launched = true
    }

    deinit { stop() }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits until stdout or stderr contains `text`; fails with both outputs when it does not in time.
    @discardableResult
    func waitFor(_ text: String, timeout: Duration = .seconds(10)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let output = stdout + stderr
            if output.contains(text) { return output }
            if !process.isRunning {
                throw ChildProcessError.exited(name, process.terminationStatus, stdout, stderr)
            }
            usleep(20_000)
        }
        throw ChildProcessError.timedOut(name, text, stdout, stderr)
    }

    /// Waits for the process to exit by itself; returns its status.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                stop()
                throw ChildProcessError.timedOut(name, "exit", stdout, stderr)
            }
            usleep(10_000)
        }
        return process.terminationStatus
    }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status. Safe to call
    /// again and after the process exited (returns its status), or when it never started (-1).
    @discardableResult
    func stop(grace: Duration = .seconds(5)) -> Int32 {
        guard launched else { return -1 }
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGCONT)  // a stopped process cannot handle SIGTERM
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }
}

enum ChildProcessError: Error, CustomStringConvertible {
    case exited(String, Int32, String, String)
    case timedOut(String, String, String, String)

    var description: String {
        switch self {
        case .exited(let name, let status, let out, let err):
            "\(name) exited with status \(status)\n--- stdout\n\(out)\n--- stderr\n\(err)"
        case .timedOut(let name, let text, let out, let err):
            "\(name): timed out waiting for \"\(text)\"\n--- stdout\n\(out)\n--- stderr\n\(err)"
        }
    }
}

/// Whether rpcbind answers on this machine (CI starts it; tests that need it check).
func rpcbindIsRunning() -> Bool {
    FileManager.default.fileExists(atPath: "/run/rpcbind.sock")
}
