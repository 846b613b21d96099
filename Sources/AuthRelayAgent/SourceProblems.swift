import Synchronization
import SystemSupport

/// What went wrong on the answering thread, counted there and reported
/// elsewhere: that thread never logs (a log write can block, and a blocked
/// answering thread stalls every process touching a watched file).
public final class SourceProblems: Sendable {
    /// One kind of failure: how often, the last errno, and whether it was logged.
    public final class Counter: Sendable {
        public let name: String
        private let count = Atomic<UInt64>(0)
        private let lastErrno = Atomic<Int32>(0)
        private let reported = Atomic<Bool>(false)

        init(_ name: String) { self.name = name }

        /// From the answering thread: two relaxed stores, nothing else.
        func note(errno value: Int32 = 0) {
            count.add(1, ordering: .relaxed)
            lastErrno.store(value, ordering: .relaxed)
        }

        public var total: UInt64 { count.load(ordering: .relaxed) }
        public var errno: Int32 { lastErrno.load(ordering: .relaxed) }

        /// True exactly once, the first time it is asked after a failure: the caller logs then.
        func takeFirstReport() -> Bool {
            total > 0 && !reported.exchange(true, ordering: .relaxed)
        }

        /// "could not read events: 3 (last: Too many open files)".
        public var description: String {
            let reason = errno != 0 ? " (last: \(errnoReason(errno)))" : ""
            return "\(name): \(total)\(reason)"
        }
    }

    /// read(2) on the fanotify descriptor failed (other than EAGAIN/EINTR).
    public let readFailed = Counter("events that could not be read")
    /// Writing the verdict failed: the requester waits until the agent exits.
    public let answerFailed = Counter("verdicts that could not be written")
    /// The kernel's queue overflowed (FAN_Q_OVERFLOW): it answered those itself.
    public let queueOverflow = Counter("kernel queue overflows")
    /// An event came without a file descriptor, so it could not be answered.
    public let missingDescriptor = Counter("events without a file descriptor")
    /// poll(2) failed, or the event format was not one this agent reads: the source stopped.
    public let sourceStopped = Counter("source stopped on an error")

    public init() {}

    public var all: [Counter] { [readFailed, answerFailed, queueOverflow, missingDescriptor, sourceStopped] }

    /// The counters with a failure not yet reported; each is returned once.
    public func takeNewReports() -> [Counter] {
        all.filter { $0.takeFirstReport() }
    }
}
