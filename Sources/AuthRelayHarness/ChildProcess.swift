import Glibc
import Synchronization
import SystemSupport

/// A child program started by path, its stdout and stderr in files (so no
/// pipe can fill and stall it), stopped by its own pid (never by name), every
/// wait bounded in time. Stopped when released, so a caller that throws
/// before its own `stop()` leaves nothing running.
package final class ChildProcess: Sendable {
    package let name: String
    package let pid: Int32
    package let stdoutPath: String
    package let stderrPath: String
    private let termination = Locked<Processes.Termination?>(nil)

    /// Starts `executable` with `arguments`; stdin is /dev/null, stdout and
    /// stderr go to `tag`.out and `tag`.err in `directory`.
    package init(_ executable: String, _ arguments: [String], outputIn directory: TemporaryDirectory,
                 tag: String? = nil, environment: [String: String]? = nil) throws(HarnessError) {
        name = FileSystem.baseName(of: executable)
        let tag = tag ?? "\(name)-\(UInt32.random(in: 0...UInt32.max))"
        stdoutPath = directory.file("\(tag).out")
        stderrPath = directory.file("\(tag).err")
        pid = try Self.spawn(executable, arguments, environment: environment,
                             stdout: .file(stdoutPath), stderr: .file(stderrPath))
    }

    /// Starts `executable` with everything it reads or writes on /dev/null.
    package init(discardingOutputOf executable: String, _ arguments: [String]) throws(HarnessError) {
        name = FileSystem.baseName(of: executable)
        stdoutPath = "/dev/null"
        stderrPath = "/dev/null"
        pid = try Self.spawn(executable, arguments, environment: nil, stdout: .null, stderr: .null)
    }

    private static func spawn(_ executable: String, _ arguments: [String], environment: [String: String]?,
                              stdout: Processes.Redirect, stderr: Processes.Redirect) throws(HarnessError) -> Int32 {
        guard FileSystem.isExecutable(executable) else {
            throw HarnessError("\(executable) is not there or not executable (build it: swift build --product \(FileSystem.baseName(of: executable)))")
        }
        do {
            return try Processes.spawn(executable, arguments, environment: environment, stdout: stdout, stderr: stderr)
        } catch {
            throw HarnessError("cannot start \(executable)", system: error)
        }
    }

    deinit { stop() }

    package var stdout: String { FileSystem.readText(stdoutPath) ?? "" }
    package var stderr: String { FileSystem.readText(stderrPath) ?? "" }
    /// Both, stdout first, for messages.
    package var output: String { stdout + stderr }

    /// True until the child has exited (and been reaped).
    package var isRunning: Bool { reap(blocking: false) == nil }

    /// How it ended, once it has.
    package var exitStatus: Processes.Termination? { reap(blocking: false) }

    /// Sends `signal` while it runs.
    package func signal(_ signal: Int32) {
        if isRunning { Processes.signal(pid, signal) }
    }

    /// SIGSTOP, then waits until every thread of it shows stopped ("T" in
    /// /proc): the signal takes hold asynchronously, and a test that counts
    /// what a stopped process did must not count what it did just after the
    /// kill (seen under ThreadSanitizer's slowdown). False past `timeout`.
    @discardableResult
    package func pause(timeout: Duration = .seconds(2)) -> Bool {
        signal(SIGSTOP)
        let deadline = SystemClock.deadline(after: timeout)
        while SystemClock.monotonicNanoseconds() < deadline {
            let threads = (try? FileSystem.listDirectory("/proc/\(pid)/task")) ?? []
            if !threads.isEmpty, threads.allSatisfy({ Processes.state(pid_t($0) ?? 0) == "T" }) { return true }
            SystemClock.sleep(.milliseconds(1))
        }
        return false
    }

    /// Waits until stdout or stderr contains `text`; the output so far. Fails
    /// with both outputs when the child exits first or `timeout` passes. The
    /// files are read `every` so often (a harness that must act within a
    /// millisecond of a line, say a SIGSTOP, reads them more often).
    @discardableResult
    package func waitFor(_ text: String, timeout: Duration = .seconds(10),
                         every interval: Duration = .milliseconds(10)) throws(HarnessError) -> String {
        let deadline = SystemClock.deadline(after: timeout)
        while true {
            let output = self.output
            if output.contains(text) { return output }
            if let ended = exitStatus {
                throw HarnessError("\(name) ended (\(ended)) before printing \"\(text)\"\n\(describeOutput())")
            }
            if SystemClock.monotonicNanoseconds() >= deadline {
                throw HarnessError("\(name): no \"\(text)\" within \(timeout)\n\(describeOutput())")
            }
            SystemClock.sleep(interval)
        }
    }

    /// Waits up to `timeout` for the child to end by itself; how it ended, or
    /// nil when still running.
    @discardableResult
    package func wait(timeout: Duration) -> Processes.Termination? {
        let deadline = SystemClock.deadline(after: timeout)
        while true {
            if let ended = exitStatus { return ended }
            if SystemClock.monotonicNanoseconds() >= deadline { return nil }
            SystemClock.sleep(.milliseconds(2))
        }
    }

    /// Waits up to `timeout` for the child to end by itself; how it ended.
    /// Past `timeout` it is killed, and the error carries both outputs.
    @discardableResult
    package func waitForExit(timeout: Duration) throws(HarnessError) -> Processes.Termination {
        guard let ended = wait(timeout: timeout) else {
            kill()
            throw HarnessError("\(name) did not finish within \(timeout)\n\(describeOutput())")
        }
        return ended
    }

    /// SIGCONT (a stopped child cannot act on SIGTERM), SIGTERM, then SIGKILL
    /// after `grace`; how it ended. Safe to call again.
    @discardableResult
    package func stop(grace: Duration = .seconds(5)) -> Processes.Termination {
        if let ended = exitStatus { return ended }
        Processes.signal(pid, SIGCONT)
        Processes.signal(pid, SIGTERM)
        if let ended = wait(timeout: grace) { return ended }
        return kill()
    }

    /// SIGKILL and reap.
    @discardableResult
    package func kill() -> Processes.Termination {
        if let ended = exitStatus { return ended }
        Processes.signal(pid, SIGKILL)
        return reap(blocking: true) ?? .exited(-1)
    }

    /// Both outputs, labelled, for failure messages.
    package func describeOutput() -> String {
        "--- \(name) stdout\n\(stdout)\n--- \(name) stderr\n\(stderr)"
    }

    private func reap(blocking: Bool) -> Processes.Termination? {
        termination.withLock { ended in
            if ended == nil { ended = Processes.reap(pid, blocking: blocking) }
            return ended
        }
    }

    /// Runs `executable` to its end (bounded: killed after `timeout`); its
    /// status and output (stdout then stderr).
    package static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(30),
                            environment: [String: String]? = nil) throws(HarnessError) -> (status: Int32, output: String) {
        let directory = try TemporaryDirectory(prefix: "authrelay-run")
        defer { directory.remove() }  // also keeps it alive until the output is read
        let child = try ChildProcess(executable, arguments, outputIn: directory, tag: "run", environment: environment)
        let ended = try child.waitForExit(timeout: timeout)
        return (ended.code, child.output)
    }
}
