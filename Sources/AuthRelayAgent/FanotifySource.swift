import AuthRelay
import CAuthRelayLinux
import Glibc

/// Permission events from the kernel: FAN_OPEN_PERM and FAN_OPEN_EXEC_PERM on
/// the watched paths, each answered through the pipeline.
///
/// The answering loop (`run`) does, per event: read /proc for the requester,
/// let the pipeline decide and answer (write the verdict, close the event's
/// descriptor), and leave the event to the sender's queue. Its own process is
/// allowed at once: the agent must never wait on itself.
public final class FanotifySource: AuthSource {
    public struct Configuration: Sendable {
        /// Directories (their direct children) or files to watch.
        public var paths: [String]
        /// Watch the whole mount holding each path instead (FAN_MARK_MOUNT).
        public var mount = false

        public init(paths: [String], mount: Bool = false) {
            self.paths = paths
            self.mount = mount
        }
    }

    public let name = "fanotify"
    public let configuration: Configuration
    public let problems = SourceProblems()
    private let group: FanotifyGroup

    /// One read takes at most this many bytes: with 24-byte events, about 170
    /// events and as many open descriptors, well under the usual 1024 limit
    /// (the kernel denies an event it cannot create a descriptor for).
    static let readBufferBytes = 4096

    /// Creates the group and marks every path; throws a FanotifyError that says
    /// what to do (run as root, which flag the kernel lacks, which path is missing).
    public init(configuration: Configuration) throws(FanotifyError) {
        self.configuration = configuration
        group = try FanotifyGroup()
        do {
            for path in configuration.paths {
                try group.watch(path, mount: configuration.mount)
            }
        } catch {
            group.close()
            throw error
        }
    }

    /// Whether this process may use permission events here: nil when yes, else why not.
    public static func probe() -> FanotifyError? {
        do {
            let group = try FanotifyGroup()
            group.close()
            return nil
        } catch {
            return error
        }
    }

    public func run(pipeline: AuthPipeline, stats: DecisionStats, stop: StopSignal) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBufferBytes, alignment: 8)
        defer { buffer.deallocate() }
        let ownPid = getpid()
        var pollers = [
            pollfd(fd: group.descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            pollers[0].revents = 0
            pollers[1].revents = 0
            if poll(&pollers, 2, -1) < 0 {
                if errno == EINTR { continue }
                // Stop rather than spin; closing the group then allows what is pending.
                problems.sourceStopped.note(errno: errno)
                break
            }
            if pollers[1].revents != 0 { break }
            if pollers[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                problems.sourceStopped.note(errno: EBADF)
                break
            }
            if !readAndAnswer(into: buffer, pipeline: pipeline, stats: stats, ownPid: ownPid) { break }
        }
        stop.signal()  // stopping on an error stops the agent too
    }

    /// One read(2) (up to `readBufferBytes`) and an answer to every event in it;
    /// then back to poll, which also sees a stop. False when the loop must end
    /// (an event format it cannot read).
    private func readAndAnswer(into buffer: UnsafeMutableRawBufferPointer, pipeline: AuthPipeline,
                               stats: DecisionStats, ownPid: Int32) -> Bool {
        var count = read(group.descriptor, buffer.baseAddress, buffer.count)
        while count < 0 && errno == EINTR {
            count = read(group.descriptor, buffer.baseAddress, buffer.count)
        }
        let readErrno = errno
        let arrival = Timestamps.monotonic()  // the budget runs from here
        if count < 0 {
            // EAGAIN: another wake-up found nothing. Else count it (the kernel
            // denies an event it could not give a descriptor for).
            if readErrno != EAGAIN && readErrno != EWOULDBLOCK { problems.readFailed.note(errno: readErrno) }
            return true  // the next read may succeed
        }
        var offset = 0
        var event = CAuthRelayLinux_fanotify_event()
        while true {
            let decoded = CAuthRelayLinux_fanotify_next_event(buffer.baseAddress, count, &offset, &event)
            if decoded == 0 { return true }
            if decoded < 0 {
                // Unreadable metadata: nothing can be answered; stop so the group is closed.
                problems.sourceStopped.note(errno: EPROTO)
                return false
            }
            handle(event, arrival: arrival, pipeline: pipeline, stats: stats, ownPid: ownPid)
        }
    }

    private func handle(_ event: CAuthRelayLinux_fanotify_event, arrival: UInt64, pipeline: AuthPipeline,
                        stats: DecisionStats, ownPid: Int32) {
        if event.mask & CAuthRelayLinux_FAN_Q_OVERFLOW != 0 {
            problems.queueOverflow.note()
            return
        }
        guard event.fd >= 0 else {
            problems.missingDescriptor.note()
            return
        }
        if event.pid == ownPid {
            // fanotify reports the thread group id: this covers every thread of the agent.
            answer(event.fd, .allow)
            stats.recordOwnProcess()
            return
        }
        let identity = ProcFS.identity(of: event.pid)
        let request = AuthRequest(
            kind: event.mask & CAuthRelayLinux_FAN_OPEN_EXEC_PERM != 0 ? .exec : .open,
            pid: event.pid, ppid: identity.ppid, uid: identity.uid, gid: identity.gid,
            executablePath: ProcFS.executable(of: event.pid),
            targetPath: ProcFS.path(ofDescriptor: event.fd),
            arrivalNanoseconds: arrival)
        var answered = false
        let outcome = pipeline.handle(request) { verdict in
            answer(event.fd, verdict)
            answered = true
        }
        if !answered { answer(event.fd, .allow) }  // the pipeline always answers; never leave a requester waiting
        stats.record(outcome)
    }

    /// Writes the verdict, then closes the event's descriptor, on every path.
    private func answer(_ eventDescriptor: Int32, _ verdict: Event.Verdict) {
        let failure = group.answer(eventDescriptor, allow: verdict == .allow)
        if failure != 0 { problems.answerFailed.note(errno: failure) }
        _ = Glibc.close(eventDescriptor)
    }

    public func close() {
        group.close()
    }
}
