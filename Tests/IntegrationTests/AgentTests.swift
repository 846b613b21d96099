import AuthRelayAgent
import Foundation
import Testing

/// `authrelay agent` on real fanotify permission events, in temporary directories only.
/// The opens and execs are done by this test process (or its children), never by the agent.
@Suite("Agent on fanotify", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: fanotifyUnavailableReason == nil, Comment(rawValue: fanotifyUnavailableReason ?? "")))
struct AgentFanotifyTests {
    @Test("an allowed open succeeds, a denied open fails with EPERM")
    func allowedAndDeniedOpens() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let allowed = watched.create("allowed.txt")
        let denied = watched.create("denied.txt")
        let agent = try TestAgent(watching: watched.path, deny: [denied], collector: nil, in: directory)
        defer { agent.process.stop() }

        #expect(openErrno(allowed) == 0)
        #expect(openErrno(denied) == EPERM)
        #expect(try String(contentsOfFile: allowed, encoding: .utf8) == "data\n")

        let (status, summary) = try agent.stop()
        #expect(status == 0, "agent output:\n\(summary)\n\(agent.process.stderr)")
        #expect(number(after: "denied", in: summary) ?? 0 >= 1, "\(summary)")
    }

    @Test("a denied exec fails with EPERM or EACCES; an allowed one runs")
    func deniedExec() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let allowedTool = try watched.copyExecutable("/bin/true", as: "allowed-true")
        let deniedTool = try watched.copyExecutable("/bin/true", as: "denied-true")
        let agent = try TestAgent(watching: watched.path, deny: [deniedTool],
                                  collector: nil, in: directory)
        defer { agent.process.stop() }

        switch spawnProgram(deniedTool) {
        case .success(let pid):
            Issue.record("exec of a denied program succeeded (pid \(pid), status \(String(describing: waitForChild(pid, timeout: .seconds(5)))))")
        case .failure(let error):
            #expect(error.code == .EPERM || error.code == .EACCES, "exec failed with \(error)")
        }
        switch spawnProgram(allowedTool) {
        case .success(let pid):
            #expect(waitForChild(pid, timeout: .seconds(10)) == 0)
        case .failure(let error):
            Issue.record("exec of an allowed program failed with \(error)")
        }
        let (status, _) = try agent.stop()
        #expect(status == 0)
    }

    @Test("events reach the collector with the opener's pid, the target path, the verdict and the kind")
    func eventsReachTheCollector() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let allowed = watched.create("allowed.txt")
        let denied = watched.create("denied.txt")
        let tool = try watched.copyExecutable("/bin/true", as: "denied-true")
        let collector = try TestCollector(in: directory)
        defer { collector.stop() }
        let agent = try TestAgent(watching: watched.path, deny: [denied, tool], collector: collector.address, in: directory)
        defer { agent.process.stop() }

        #expect(openErrno(allowed) == 0)
        #expect(openErrno(denied) == EPERM)
        var execPid: pid_t = 0
        if case .success(let pid) = spawnProgram("/bin/sh", ["-c", "exec \(tool)"]) {
            execPid = pid
            #expect(waitForChild(pid, timeout: .seconds(10)) != 0)  // sh reports the denied exec
        }
        let me = getpid()
        let expected = [
            CollectedEvent(kind: "open", verdict: "allow", pid: me, targetPath: allowed),
            CollectedEvent(kind: "open", verdict: "deny", pid: me, targetPath: denied),
            CollectedEvent(kind: "exec", verdict: "deny", pid: execPid, targetPath: tool),
        ]
        func found(_ wanted: CollectedEvent, in events: [CollectedEvent]) -> CollectedEvent? {
            events.first { $0.isSameDecision(as: wanted) }
        }
        let events = collector.waitForEvents { events in expected.allSatisfy { found($0, in: events) != nil } }
        for event in expected {
            #expect(found(event, in: events) != nil, "missing \(event) from \(collector.isAuthrelayd ? "authrelayd" : "legacy-collector"); got \(events)")
        }
        // The details read from /proc: this process's parent, effective uid and executable.
        if let open = found(expected[0], in: events) {
            #expect(open.ppid == getppid())
            #expect(open.uid == geteuid())
            #expect(open.executablePath == URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path)
        }
        let (status, summary) = try agent.stop()
        #expect(status == 0)
        #expect(number(after: "undelivered", in: summary) == 0, "\(summary)")
        print("events reached \(collector.isAuthrelayd ? "authrelayd" : "legacy-collector"):\n\(summary)")
    }

    @Test("with the collector stopped by SIGSTOP, 1,000 opens all complete without waiting for it")
    func opensCompleteWhileCollectorIsStopped() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let files = (0..<100).map { watched.create("file-\($0).txt") }
        let collector = try TestCollector(in: directory)
        defer { collector.stop() }
        let agent = try TestAgent(watching: watched.path, collector: collector.address,
                                  extra: ["--drain-seconds", "20"], in: directory)
        defer { agent.process.stop() }

        // One event delivered first: the sender is connected when the collector stops.
        #expect(openErrno(files[0]) == 0)
        let first = collector.waitForEvents { $0.contains { $0.targetPath == files[0] } }
        try #require(first.contains { $0.targetPath == files[0] }, "the collector never got the first event")

        collector.process.signal(SIGSTOP)
        var failures = 0
        var slowest: Duration = .zero
        var total: Duration = .zero
        let clock = ContinuousClock()
        func openFiles(_ range: Range<Int>) {
            let started = clock.now
            for index in range {
                let before = clock.now
                if openErrno(files[index % files.count]) != 0 { failures += 1 }
                slowest = max(slowest, clock.now - before)
            }
            total += clock.now - started
        }
        // Half while the sender's first call hangs, half after it timed out (2 s) and backs off.
        openFiles(0..<500)
        usleep(2_500_000)
        openFiles(500..<1000)
        let stillStopped = collector.events.count
        collector.process.signal(SIGCONT)
        print("1000 opens with the collector stopped: total \(total), mean \(total / 1000), slowest \(slowest)")

        #expect(failures == 0)
        // The sender's call timeout is 2 s: an open that waited for the collector would take that long at least.
        #expect(slowest < .seconds(1), "slowest open took \(slowest)")
        #expect(total < .seconds(60))
        #expect(stillStopped <= 1, "the collector was stopped, yet wrote \(stillStopped) events")

        let (status, summary) = try agent.stop()
        #expect(status == 0, "\(summary)\n\(agent.process.stderr)")
        #expect(number(after: "decisions", in: summary) ?? 0 >= 1001, "\(summary)")
        #expect(number(after: "undelivered", in: summary) == 0, "\(summary)")
        let delivered = collector.waitForEvents(timeout: .seconds(10)) { $0.count >= 1001 }
        #expect(delivered.count >= 1001)
        print(summary)
    }

    @Test("--mount covers every directory of the mount (a tmpfs mounted in the temporary directory)",
          .enabled(if: tmpfsMountUnavailableReason == nil, Comment(rawValue: tmpfsMountUnavailableReason ?? "")))
    func mountMark() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let mountPoint = URL(fileURLWithPath: directory.file("mount")).resolvingSymlinksInPath().path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // The probe mounted one: failing now is a failure, not a skip.
        let mounted = mount("tmpfs", mountPoint, "tmpfs", 0, "size=4m") == 0 ? 0 : errno
        try #require(mounted == 0, "cannot mount a tmpfs at \(mountPoint): \(String(cString: strerror(mounted)))")
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        let nested = mountPoint + "/a/b"
        try FileManager.default.createDirectory(atPath: nested, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: nested + "/allowed.txt", contents: Data("data\n".utf8))
        _ = FileManager.default.createFile(atPath: nested + "/denied.txt", contents: Data("data\n".utf8))
        let agent = try TestAgent(watching: mountPoint, deny: [nested + "/denied.txt"], collector: nil,
                                  extra: ["--mount"], in: directory)
        defer { agent.process.stop() }

        #expect(openErrno(nested + "/allowed.txt") == 0)
        #expect(openErrno(nested + "/denied.txt") == EPERM)
        let (status, summary) = try agent.stop()
        #expect(status == 0)
        #expect(number(after: "decisions", in: summary) == 2, "\(summary)")
    }

    @Test("the agent killed with SIGKILL leaves no open waiting")
    func sigkillLeavesNothingHanging() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let file = watched.create("file.txt")
        let agent = try TestAgent(watching: watched.path, collector: nil, in: directory)
        defer { agent.process.stop() }
        #expect(openErrno(file) == 0)

        // A stopped agent cannot answer: a child's open waits in the kernel.
        // Every thread must have stopped first, or the answering thread may still answer.
        agent.process.signal(SIGSTOP)
        try #require(waitUntilStopped(agent.pid, timeout: .seconds(5)), "the agent did not stop")
        guard case .success(let reader) = spawnProgram("/bin/cat", [file]) else {
            Issue.record("could not start /bin/cat")
            return
        }
        // The kill proves something only once cat's open is really waiting in the
        // kernel for the stopped agent: wait for that (bounded), however slow cat's start.
        let (blocked, seen) = waitUntilBlockedInFanotify(reader, timeout: .seconds(5))
        var status: Int32 = 0
        let early = waitpid(reader, &status, WNOHANG)
        #expect(blocked, "cat never blocked in its open waiting for the stopped agent (last seen: \(seen))")
        #expect(early == 0, "the open did not wait for the stopped agent (waitpid \(early), status \(status))")

        // SIGKILL closes the group's descriptor: the kernel allows what was pending.
        // (Also when the checks above failed: a still-waiting cat is released and reaped.)
        kill(agent.pid, SIGKILL)
        #expect(try agent.process.waitForExit(timeout: .seconds(10)) != 0)
        let clock = ContinuousClock()
        let killed = clock.now
        if early == 0 {
            #expect(waitForChild(reader, timeout: .seconds(10)) == 0, "the pending open did not complete")
            print("pending open completed \(clock.now - killed) after SIGKILL")
        }
        // An open started right after completes as well.
        #expect(openErrno(file) == 0)
    }

    @Test("without root the agent says to run as root", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func clearErrorWithoutRoot() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        chmod(directory.path, 0o755)
        chmod(watched.path, 0o755)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        agent.arguments = [
            "--reuid=65534", "--regid=65534", "--clear-groups", Products.path("authrelay"),
            "agent", "--watch", watched.path, "--collector", "unix:///nonexistent.sock",
        ]
        let errors = Pipe()
        agent.standardError = errors
        agent.standardOutput = FileHandle.nullDevice
        try agent.run()
        let deadline = ContinuousClock.now + .seconds(20)
        while agent.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if agent.isRunning { kill(agent.processIdentifier, SIGKILL) }
        agent.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(agent.terminationStatus != 0)
        #expect(stderr.contains("run authrelay agent as root"), "stderr: \(stderr)")
    }
}

/// The synthetic source: the same pipeline and sender, no root needed.
@Suite("Agent with the synthetic source", .timeLimit(.minutes(2)))
struct AgentSyntheticTests {
    @Test("a synthetic run decides at the given rate and deny ratio and delivers every event")
    func syntheticRun() throws {
        let directory = try TemporaryDirectory("authrelay-agent")
        defer { directory.remove() }
        let collector = try TestCollector(in: directory)
        defer { collector.stop() }
        let agent = try ChildProcess("authrelay", [
            "agent", "--source", "synthetic", "--rate", "2000", "--duration", "1", "--deny-ratio", "0.25",
            "--collector", collector.address,
        ], in: directory)
        let status = try agent.waitForExit(timeout: .seconds(30))
        let summary = agent.stdout
        #expect(status == 0, "\(summary)\n\(agent.stderr)")
        let decisions = number(after: "decisions", in: summary) ?? 0
        let denied = number(after: "denied", in: summary) ?? 0
        // Never more than the rate allows (2,000 in 1 s, +1 for the first due at once). The
        // source catches up on what fell due while it was descheduled, except at the very end:
        // a loaded machine may stall it across the deadline, so the lower bound is only a
        // quarter of the nominal count. The exact checks are the ones below: every decision
        // is acknowledged and reaches the collector, and the denies match.
        #expect(decisions >= 500 && decisions <= 2001, "\(summary)")
        #expect(denied == decisions / 4, "\(summary)")
        #expect(number(after: "acknowledged", in: summary) == decisions, "\(summary)")
        let events = collector.waitForEvents { $0.count >= Int(decisions) }
        #expect(events.count == Int(decisions))
        #expect(events.filter { $0.verdict == "deny" }.count == Int(denied))
        print(summary)
    }
}

/// Why a tmpfs cannot be mounted in a temporary directory here, or nil when it can
/// (tried once, on a directory of its own, and unmounted at once).
let tmpfsMountUnavailableReason: String? = {
    guard geteuid() == 0 else { return "not root: mounting a tmpfs needs CAP_SYS_ADMIN" }
    guard let directory = try? TemporaryDirectory("authrelay-mount-probe") else { return "cannot create a temporary directory" }
    defer { directory.remove() }
    guard mount("tmpfs", directory.path, "tmpfs", 0, "size=64k") == 0 else {
        return "cannot mount a tmpfs here: \(String(cString: strerror(errno)))"
    }
    umount2(directory.path, Int32(MNT_DETACH))
    return nil
}()

/// Waits (bounded) until `pid` sleeps in the kernel inside fanotify, that is, in an open or
/// exec waiting for a permission answer. The kernel function is read from /proc/PID/wchan
/// (fanotify_handle_event on current kernels) or, when that says nothing, /proc/PID/stack;
/// if the kernel names neither, the system call in progress must be openat.
/// Returns whether it got there and what was seen last, for the failure message.
func waitUntilBlockedInFanotify(_ pid: pid_t, timeout: Duration) -> (blocked: Bool, seen: String) {
    func read(_ name: String) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/\(name)", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    #if arch(x86_64)
    let openat = "257"
    #else
    let openat = "56"  // arm64, riscv64: the generic table
    #endif
    let deadline = ContinuousClock.now + timeout
    var seen = ""
    while true {
        let wchan = read("wchan")
        let stack = read("stack")
        let syscall = read("syscall").split(separator: " ").first.map(String.init) ?? ""
        seen = "wchan \"\(wchan)\", syscall \(syscall)"
        if wchan.contains("fanotify") || stack.contains("fanotify") { return (true, seen) }
        let kernelNamesNothing = (wchan.isEmpty || wchan == "0") && stack.isEmpty
        if kernelNamesNothing && syscall == openat { return (true, seen + " (no wchan or stack here)") }
        if ContinuousClock.now >= deadline { return (false, seen) }
        usleep(5_000)
    }
}
