import AuthRelay
import AuthRelayProtocol
import Glibc  // errno constants
import SystemSupport

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

    public func run(pipeline: any AuthRequestHandler, stats: DecisionStats, stop: StopSignal) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBufferBytes, alignment: 8)
        defer { buffer.deallocate() }
        let ownPid = Processes.currentID
        var pollSet = PollSet()
        pollSet.add(group.descriptor, .readable)
        pollSet.add(stop.descriptor, .readable)
        while true {
            do {
                _ = try pollSet.wait(timeout: nil)
            } catch {
                // Stop rather than spin; closing the group then allows what is pending.
                problems.sourceStopped.note(errno: error.errno)
                break
            }
            if !pollSet.ready(1).isEmpty { break }
            if !pollSet.ready(0).intersection(.failed).isEmpty {
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
    private func readAndAnswer(into buffer: UnsafeMutableRawBufferPointer, pipeline: any AuthRequestHandler,
                               stats: DecisionStats, ownPid: Int32) -> Bool {
        let count: Int
        do {
            // .wouldBlock: another wake-up found nothing.
            guard case .done(let read) = try group.read(into: buffer) else { return true }
            count = read
        } catch {
            // Counted (the kernel denies an event it could not give a descriptor for); the next read may succeed.
            problems.readFailed.note(errno: error.errno)
            return true
        }
        let arrival = Timestamps.monotonic()  // the budget runs from here
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
        var offset = 0
        while true {
            do {
                guard let event = try FanotifyGroup.nextEvent(in: bytes, offset: &offset) else { return true }
                handle(event, arrival: arrival, pipeline: pipeline, stats: stats, ownPid: ownPid)
            } catch {
                // Unreadable metadata: nothing can be answered; stop so the group is closed.
                problems.sourceStopped.note(errno: error.errno)
                return false
            }
        }
    }

    private func handle(_ event: FanotifyGroup.Event, arrival: UInt64, pipeline: any AuthRequestHandler,
                        stats: DecisionStats, ownPid: Int32) {
        if event.isOverflow {
            problems.queueOverflow.note()
            FanotifyGroup.discard(event)
            return
        }
        guard event.fileDescriptor >= 0 else {
            problems.missingDescriptor.note()
            return
        }
        if event.pid == ownPid {
            // fanotify reports the thread group id: this covers every thread of the agent.
            answer(event, .allow)
            stats.recordOwnProcess()
            return
        }
        let identity = ProcFS.identity(of: event.pid)
        let request = AuthRequest(
            kind: event.isExec ? .exec : .open,
            pid: event.pid, ppid: identity.ppid, uid: identity.uid, gid: identity.gid,
            executablePath: ProcFS.executable(of: event.pid),
            targetPath: ProcFS.path(ofDescriptor: event.fileDescriptor),
            arrivalNanoseconds: arrival)
        var answered = false
        let outcome = pipeline.handle(request) { verdict in
            answer(event, verdict)
            answered = true
        }
        if !answered { answer(event, .allow) }  // a handler must answer; never leave a requester waiting
        stats.record(outcome)
    }

    /// Writes the verdict, then closes the event's descriptor, on every path.
    private func answer(_ event: FanotifyGroup.Event, _ verdict: Event.Verdict) {
        do {
            try group.answer(event, allow: verdict == .allow)
        } catch {
            problems.answerFailed.note(errno: error.errno)
        }
    }

    public func close() {
        group.close()
    }
}
