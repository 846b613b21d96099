import AuthRelay
import Glibc

/// A child program started by path with posix_spawn, its stdout and stderr in
/// files (or discarded), stopped by its own pid (never by name), every wait bounded in time.
package final class ChildProcess {
    let name: String
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; stdin is /dev/null, stdout and stderr go to files in `directory`.
    convenience init(executable: String, arguments: [String], outputIn directory: TemporaryDirectory, tag: String) throws(LatencyError) {
        guard Files.isExecutable(executable) else {
            throw LatencyError("\(executable) is not there or not executable (build it: swift build --product \(Self.baseName(executable)))")
        }
        try self.init(executable: executable, arguments: arguments,
                      stdoutPath: directory.file("\(tag).out"), stderrPath: directory.file("\(tag).err"))
    }

    /// Starts `executable` with `arguments`, everything it reads or writes on /dev/null.
    package convenience init(discardingOutputOf executable: String, arguments: [String]) throws(LatencyError) {
        try self.init(executable: executable, arguments: arguments, stdoutPath: "/dev/null", stderrPath: "/dev/null")
    }

    private init(executable: String, arguments: [String], stdoutPath: String, stderrPath: String) throws(LatencyError) {
        name = Self.baseName(executable)
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        // RPCClient ignores SIGPIPE in this process; a child must start with the defaults.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw LatencyError("cannot start \(executable): \(errnoText(status))")
        }
        pid = child
    }

    deinit { stop() }

    static func baseName(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    var stdout: String { Files.read(stdoutPath) ?? "" }
    var stderr: String { Files.read(stderrPath) ?? "" }

    /// True until the child has exited (and been reaped).
    var isRunning: Bool {
        reap(blocking: false)
        return exitStatus == nil
    }

    /// The exit code (128 + signal when killed), once exited.
    var status: Int32? {
        reap(blocking: false)
        return exitStatus
    }

    package func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the child to exit; its status, or nil when still running.
    @discardableResult
    package func wait(timeout: Duration) -> Int32? {
        let deadline = Timestamps.monotonic() + UInt64(max(timeout.nanoseconds, 0))
        while isRunning {
            if Timestamps.monotonic() >= deadline { return nil }
            Time.sleep(nanoseconds: 2_000_000)
        }
        return exitStatus
    }

    /// SIGCONT (a stopped child cannot act on SIGTERM), SIGTERM, then SIGKILL after `grace`.
    @discardableResult
    package func stop(grace: Duration = .seconds(3)) -> Int32? {
        guard isRunning else { return exitStatus }
        kill(pid, SIGCONT)
        kill(pid, SIGTERM)
        if let status = wait(timeout: grace) { return status }
        kill(pid, SIGKILL)
        reap(blocking: true)
        return exitStatus
    }

    private func reap(blocking: Bool) {
        guard exitStatus == nil else { return }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
        guard result == pid else {
            if result < 0 && errno == ECHILD { exitStatus = -1 }
            return
        }
        let signal = raw & 0x7f
        if signal == 0 {
            exitStatus = (raw >> 8) & 0xff
        } else if signal != 0x7f {  // 0x7f: stopped, not exited
            exitStatus = 128 + signal
        }
    }
}
