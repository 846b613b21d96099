import Glibc

/// Starting, signalling and reaping child processes, and what /proc says of
/// a process. The harness's `ChildProcess` is built on these.
package enum Processes {
    /// Where a child's standard descriptor goes.
    package enum Redirect: Sendable {
        case null
        /// A file, created or truncated.
        case file(String)
        /// A file, appended to.
        case appending(String)
    }

    /// posix_spawn of `executable` (a path) with `arguments`. The child starts
    /// with SIGPIPE at its default and no signal blocked: a parent that ignores
    /// SIGPIPE or blocks signals on a worker thread must not pass that on.
    package static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: Redirect = .null, stdout: Redirect = .null, stderr: Redirect = .null
    ) throws(SystemError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (descriptor, redirect) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch redirect {
            case .null: posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let path): posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            case .appending(let path): posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            }
        }
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
        var envp: [UnsafeMutablePointer<CChar>?]?
        if let environment {
            var merged = currentEnvironment()
            for (key, value) in environment { merged[key] = value }
            envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { envp?.forEach { free($0) } }
        var child: pid_t = 0
        try errorNumberCall("posix_spawn", path: executable) {
            if var envp { return posix_spawn(&child, executable, &actions, &attributes, argv, &envp) }
            return posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        }
        return child
    }

    /// How a child ended.
    package enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        /// The shell's number: the exit code, or 128 + the signal.
        package var code: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): 128 + signal
            }
        }

        package var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signalled(let signal): "signal \(signal)"
            }
        }
    }

    /// waitpid(2): how `pid` ended, or nil while it runs (`blocking` false).
    /// A pid that is not (or no longer) our child reads as exited(-1).
    package static func reap(_ pid: pid_t, blocking: Bool) -> Termination? {
        var raw: Int32 = 0
        while true {
            let result = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
            if result == pid { break }
            if result == 0 { return nil }
            if Glibc.errno == EINTR { continue }
            return .exited(-1)
        }
        let signal = raw & 0x7f
        if signal == 0 { return .exited((raw >> 8) & 0xff) }
        return .signalled(signal)
    }

    /// kill(2); false when there is no such process.
    @discardableResult
    package static func signal(_ pid: pid_t, _ signal: Int32) -> Bool {
        kill(pid, signal) == 0
    }

    package static var currentID: pid_t { getpid() }

    /// The state letter of /proc/PID/stat ("R", "S", "T" stopped, "Z"); nil when unreadable.
    package static func state(_ pid: pid_t) -> Character? {
        guard let stat = FileSystem.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].first(where: { $0 != " " })
    }

    /// A value of /proc/PID/status in KiB ("VmRSS", "VmHWM"); nil when unreadable.
    package static func statusKiB(_ pid: pid_t, _ key: String) -> Int? {
        guard let text = FileSystem.readText("/proc/\(pid)/status") else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// Descriptors `pid` has open.
    package static func openDescriptorCount(_ pid: pid_t) -> Int {
        (try? FileSystem.listDirectory("/proc/\(pid)/fd").count) ?? 0
    }

    /// The path of the running executable (/proc/self/exe).
    package static func currentExecutable() -> String? {
        FileSystem.readLink("/proc/self/exe")
    }

    /// The environment of this process.
    package static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }

    /// An environment variable, nil when unset.
    package static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The host name, nil when it cannot be read.
    package static func hostName() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to standard error in one write(2), unbuffered.
    package static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// The user this process runs as (effective).
    package static var effectiveUserID: UInt32 { geteuid() }
}

/// The open file limit: each connection takes a descriptor.
package enum OpenFileLimit {
    /// The soft and hard limits (RLIMIT_NOFILE).
    package static func current() -> (soft: Int, hard: Int)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (Int(clamping: limit.rlim_cur), Int(clamping: limit.rlim_max))
    }

    /// Raises the soft limit to the hard one (systemd's LimitNOFILE=).
    package static func raiseToMaximum() throws(SystemError) {
        var limit = rlimit()
        _ = try systemCall("getrlimit") { getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        guard limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = try systemCall("setrlimit") { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
    }
}
