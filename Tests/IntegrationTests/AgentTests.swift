import AuthRelayHarness
import Foundation
import Glibc
import SystemSupport
import TestSupport
import Testing

/// `authrelay agent` on real fanotify permission events, in temporary directories only.
/// The opens and execs are done by this test process (or its children), never by the agent.
@Suite("Agent on fanotify", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: fanotifyUnavailableReason == nil, Comment(rawValue: fanotifyUnavailableReason ?? "")))
struct AgentFanotifyTests {
    init() { TestProcess.prepare() }

    @Test("an allowed open succeeds, a denied open fails with EPERM")
    func allowedAndDeniedOpens() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let allowed = watched.create("allowed.txt")
        let denied = watched.create("denied.txt")
        let agent = try TestAgent(watching: watched.path, deny: [denied], collector: nil, in: directory)
        defer { agent.process.stop() }

        #expect(openErrno(allowed) == 0)
        #expect(openErrno(denied) == EPERM)
        #expect(FileSystem.readText(allowed) == "data\n")

        let (status, summary) = try agent.stop()
        #expect(status == .exited(0), "agent output:\n\(summary)\n\(agent.process.stderr)")
        #expect(number(after: "denied", in: summary) ?? 0 >= 1, "\(summary)")
    }

    @Test("a denied exec fails with EPERM or EACCES; an allowed one runs")
    func deniedExec() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        let allowedTool = try watched.copyExecutable("/bin/true", as: "allowed-true")
        let deniedTool = try watched.copyExecutable("/bin/true", as: "denied-true")
        let agent = try TestAgent(watching: watched.path, deny: [deniedTool],
                                  collector: nil, in: directory)
        defer { agent.process.stop() }

        switch startProgram(deniedTool) {
        case .success(let child):
            Issue.record("exec of a denied program succeeded (pid \(child.pid), \(String(describing: child.wait(timeout: .seconds(5)))))")
        case .failure(let error):
            #expect(error.errno == EPERM || error.errno == EACCES, "exec failed with \(error)")
        }
        switch startProgram(allowedTool) {
        case .success(let child):
            #expect(child.wait(timeout: .seconds(10)) == .exited(0))
        case .failure(let error):
            Issue.record("exec of an allowed program failed with \(error)")
        }
        let (status, _) = try agent.stop()
        #expect(status == .exited(0))
    }

    @Test("events reach the collector with the opener's pid, the target path, the verdict and the kind")
    func eventsReachTheCollector() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
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
        if case .success(let shell) = startProgram("/bin/sh", ["-c", "exec \(tool)"]) {
            execPid = shell.pid
            let ended = shell.wait(timeout: .seconds(10))
            #expect(ended != nil && ended != .exited(0), "\(String(describing: ended))")  // sh reports the denied exec
        }
        let me = Processes.currentID
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
            #expect(open.ppid == Processes.parentID)
            #expect(open.uid == Processes.effectiveUserID)
            #expect(open.executablePath == Processes.currentExecutable())
        }
        let (status, summary) = try agent.stop()
        #expect(status == .exited(0))
        #expect(number(after: "undelivered", in: summary) == 0, "\(summary)")
        print("events reached \(collector.isAuthrelayd ? "authrelayd" : "legacy-collector"):\n\(summary)")
    }

    @Test("with the collector stopped by SIGSTOP, 1,000 opens all complete without waiting for it")
    func opensCompleteWhileCollectorIsStopped() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
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

        #expect(collector.process.pause())
        // What it wrote before the stop took hold (a batch handed to its writer thread just before it included).
        let atStop = collector.events.count
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
        SystemClock.sleep(.milliseconds(2500))
        openFiles(500..<1000)
        let stillStopped = collector.events.count
        collector.process.signal(SIGCONT)
        print("1000 opens with the collector stopped: total \(total), mean \(total / 1000), slowest \(slowest)")

        #expect(failures == 0)
        // The sender's call timeout is 2 s: an open that waited for the collector would take that long at least.
        #expect(slowest < .seconds(1), "slowest open took \(slowest)")
        #expect(total < .seconds(60))
        #expect(atStop >= 1 && stillStopped == atStop, "the collector was stopped, yet wrote \(stillStopped - atStop) events")

        let (status, summary) = try agent.stop()
        #expect(status == .exited(0), "\(summary)\n\(agent.process.stderr)")
        #expect(number(after: "decisions", in: summary) ?? 0 >= 1001, "\(summary)")
        #expect(number(after: "undelivered", in: summary) == 0, "\(summary)")
        let delivered = collector.waitForEvents(timeout: .seconds(10)) { $0.count >= 1001 }
        #expect(delivered.count >= 1001)
        print(summary)
    }

    @Test("--mount covers every directory of the mount (a tmpfs mounted in the temporary directory)",
          .enabled(if: tmpfsMountUnavailableReason == nil, Comment(rawValue: tmpfsMountUnavailableReason ?? "")))
    func mountMark() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
        defer { directory.remove() }
        let mountPoint = try WatchedDirectory(in: directory, named: "mount").path
        // The probe mounted one: failing now is a failure, not a skip.
        try mountTmpfs(at: mountPoint, size: "4m")
        defer { unmount(mountPoint) }
        let nested = mountPoint + "/a/b"
        try FileSystem.makeDirectories(nested)
        try FileSystem.writeFile(nested + "/allowed.txt", Array("data\n".utf8))
        try FileSystem.writeFile(nested + "/denied.txt", Array("data\n".utf8))
        let agent = try TestAgent(watching: mountPoint, deny: [nested + "/denied.txt"], collector: nil,
                                  extra: ["--mount"], in: directory)
        defer { agent.process.stop() }

        #expect(openErrno(nested + "/allowed.txt") == 0)
        #expect(openErrno(nested + "/denied.txt") == EPERM)
        let (status, summary) = try agent.stop()
        #expect(status == .exited(0))
        #expect(number(after: "decisions", in: summary) == 2, "\(summary)")
    }

    @Test("the agent killed with SIGKILL leaves no open waiting")
    func sigkillLeavesNothingHanging() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
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
        guard case .success(let reader) = startProgram("/bin/cat", [file]) else {
            Issue.record("could not start /bin/cat")
            return
        }
        // The kill proves something only once cat's open is really waiting in the
        // kernel for the stopped agent: wait for that (bounded), however slow cat's start.
        let (blocked, seen) = waitUntilBlockedInFanotify(reader.pid, timeout: .seconds(5))
        let early = reader.exitStatus
        #expect(blocked, "cat never blocked in its open waiting for the stopped agent (last seen: \(seen))")
        #expect(early == nil, "the open did not wait for the stopped agent (cat ended: \(String(describing: early)))")

        // SIGKILL closes the group's descriptor: the kernel allows what was pending.
        // (Also when the checks above failed: a still-waiting cat is released and reaped.)
        agent.process.signal(SIGKILL)
        #expect(try agent.process.waitForExit(timeout: .seconds(10)) != .exited(0))
        let clock = ContinuousClock()
        let killed = clock.now
        if early == nil {
            #expect(reader.wait(timeout: .seconds(10)) == .exited(0), "the pending open did not complete")
            print("pending open completed \(clock.now - killed) after SIGKILL")
        }
        // An open started right after completes as well.
        #expect(openErrno(file) == 0)
    }

    @Test("without root the agent says to run as root", .enabled(if: FileSystem.isExecutable("/usr/bin/setpriv")))
    func clearErrorWithoutRoot() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
        defer { directory.remove() }
        let watched = try WatchedDirectory(in: directory)
        try FileSystem.setMode(directory.path, 0o755)
        try FileSystem.setMode(watched.path, 0o755)
        let agent = try ChildProcess("/usr/bin/setpriv", [
            "--reuid=65534", "--regid=65534", "--clear-groups", BuiltPrograms.path("authrelay"),
            "agent", "--watch", watched.path, "--collector", "unix:///nonexistent.sock",
        ], outputIn: directory)
        let status = try agent.waitForExit(timeout: .seconds(20))
        #expect(status != .exited(0))
        #expect(agent.stderr.contains("run authrelay agent as root"), "stderr: \(agent.stderr)")
    }
}

/// The synthetic source: the same pipeline and sender, no root needed.
@Suite("Agent with the synthetic source", .timeLimit(.minutes(2)))
struct AgentSyntheticTests {
    init() { TestProcess.prepare() }

    @Test("a synthetic run decides at the given rate and deny ratio and delivers every event")
    func syntheticRun() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-agent")
        defer { directory.remove() }
        let collector = try TestCollector(in: directory)
        defer { collector.stop() }
        let agent = try ChildProcess(BuiltPrograms.path("authrelay"), [
            "agent", "--source", "synthetic", "--rate", "2000", "--duration", "1", "--deny-ratio", "0.25",
            "--collector", collector.address,
        ], outputIn: directory)
        let status = try agent.waitForExit(timeout: .seconds(30))
        let summary = agent.stdout
        #expect(status == .exited(0), "\(summary)\n\(agent.stderr)")
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
    guard Processes.effectiveUserID == 0 else { return "not root: mounting a tmpfs needs CAP_SYS_ADMIN" }
    guard let directory = try? TemporaryDirectory(prefix: "authrelay-mount-probe") else { return "cannot create a temporary directory" }
    defer { directory.remove() }
    do {
        try mountTmpfs(at: directory.path, size: "64k")
    } catch {
        return "cannot mount a tmpfs here: \(error)"
    }
    unmount(directory.path)
    return nil
}()

/// mount(2) of a tmpfs of `size` ("4m") at `path`.
func mountTmpfs(at path: String, size: String) throws(SystemError) {
    _ = try systemCall("mount tmpfs", path: path) { mount("tmpfs", path, "tmpfs", 0, "size=\(size)") }
}

/// umount2(2) with MNT_DETACH: gone now for new lookups, freed when no longer busy.
func unmount(_ path: String) {
    _ = umount2(path, Int32(MNT_DETACH))
}

/// Waits (bounded) until `pid` sleeps in the kernel inside fanotify, that is, in an open or
/// exec waiting for a permission answer. The kernel function is read from /proc/PID/wchan
/// (fanotify_handle_event on current kernels) or, when that says nothing, /proc/PID/stack;
/// if the kernel names neither, the system call in progress must be openat.
/// Returns whether it got there and what was seen last, for the failure message.
func waitUntilBlockedInFanotify(_ pid: pid_t, timeout: Duration) -> (blocked: Bool, seen: String) {
    func procEntry(_ name: String) -> String {
        (FileSystem.readText("/proc/\(pid)/\(name)") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
    #if arch(x86_64)
    let openat = "257"
    #else
    let openat = "56"  // arm64, riscv64: the generic table
    #endif
    let deadline = SystemClock.deadline(after: timeout)
    var seen = ""
    while true {
        let wchan = procEntry("wchan")
        let stack = procEntry("stack")
        let syscall = procEntry("syscall").split(separator: " ").first.map(String.init) ?? ""
        seen = "wchan \"\(wchan)\", syscall \(syscall)"
        if wchan.contains("fanotify") || stack.contains("fanotify") { return (true, seen) }
        let kernelNamesNothing = (wchan.isEmpty || wchan == "0") && stack.isEmpty
        if kernelNamesNothing && syscall == openat { return (true, seen + " (no wchan or stack here)") }
        if SystemClock.monotonicNanoseconds() >= deadline { return (false, seen) }
        SystemClock.sleep(.milliseconds(5))
    }
}
