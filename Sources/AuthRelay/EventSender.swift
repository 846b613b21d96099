import AuthRelayProtocol
import Logging
import ONCRPC
import Synchronization
import SystemSupport

/// Ships events to a collector without ever making the caller wait.
///
/// `submit(_:)` is what an auth thread calls: O(1), no lock, no allocation
/// beyond the event's own, no system call unless the consuming thread sleeps,
/// no throw. Everything slow happens on dedicated threads that drain a bounded
/// queue:
/// - without a spool, one sender thread batches, calls, retries (`SenderLoop`);
/// - with a spool (`Configuration.spool`), a spooler thread numbers events and
///   writes them to disk (`Spooler`), and a delivery thread sends them from
///   memory or from the disk and deletes what is acknowledged (`DeliveryLoop`):
///   events survive a collector outage and the agent's own death, and every
///   one lost has its exact place (loss ranges, version 3).
///
/// Delivery is at-least-once: events are numbered per (agent id, boot id), and
/// a batch is resent with the same numbers until the collector acknowledges
/// it (a timed-out call may have been executed; the collector removes
/// duplicates). Every event is accounted for: submitted = acknowledged +
/// dropped + evicted + rejected + spoolLost + undelivered at shutdown.
public final class EventSender: Sendable {
    public enum OverflowPolicy: String, Sendable, CaseIterable {
        /// A full queue refuses the new event (keeps the oldest evidence).
        case dropNewest
        /// A full queue evicts its oldest event to take the new one.
        case dropOldest
    }

    public struct Configuration: Sendable {
        /// The collectors, in order of preference (at least one). The sender
        /// talks to one at a time and moves to the next when it fails
        /// (timeout, refused, not registered, sink error), resending what it
        /// had not acknowledged there with the same numbers.
        public var endpoints: [RPCEndpoint]
        /// The first (preferred) collector; setting it replaces the first of `endpoints`.
        public var endpoint: RPCEndpoint {
            get { endpoints[0] }
            set { endpoints[0] = newValue }
        }
        /// With several collectors: go back to the first once it answers again
        /// (probed in the background every `preferredProbeInterval`), rather
        /// than stay with the one that took over.
        public var preferFirst = false
        public var preferredProbeInterval: Duration = .seconds(1)
        public var program: UInt32 = AuthRelayProgram.program
        /// Identifies the agent; the collector de-duplicates per (agent id, boot id).
        public var agentID: String
        /// Identifies this sender's run: sequence numbers restart at 1 with each.
        public var bootID: String = EventSender.randomBootID()
        /// Queue capacity in events (rounded up to a power of two).
        public var capacity: Int = 16_384
        /// Bound on the bytes the queued events take on the wire (paths can be 4 KiB each).
        public var maxQueuedBytes: Int = 64 << 20
        public var overflow: OverflowPolicy = .dropNewest
        /// Events per REPORT_BATCH call (at most 512, the protocol bound).
        public var maxBatchEvents: Int = Event.maxBatchEvents
        /// Encoded bytes per batch. Over UDP a call is capped at 8,800 bytes, what
        /// libtirpc's default server buffer takes (a plain rpcgen collector).
        public var maxBatchBytes: Int = 1 << 20
        /// How long a partial batch waits for more events.
        public var linger: Duration = .milliseconds(2)
        /// Timeout of one RPC call.
        public var callTimeout: Duration = .seconds(2)
        public var connectTimeout: Duration = .seconds(1)
        /// Reconnect backoff: doubles from `initialBackoff` up to `maxBackoff`, with ±20% jitter.
        /// While attempts fail, each first pings with 250 ms: with a 1 s cap, delivery
        /// resumes about a second after the collector answers again.
        public var initialBackoff: Duration = .milliseconds(50)
        public var maxBackoff: Duration = .seconds(1)
        /// The highest protocol version to negotiate: 3 (loss ranges, boot
        /// ends, the spool's status; with a spool), 2 (batches), or 1 (one call
        /// per event, as to a legacy collector). The memory sender (no spool)
        /// speaks 2 at most.
        public var highestVersion: ProtocolVersion = .v3
        /// The sending thread's name, as `top -H` and /proc show it.
        public var threadName = "authrelay-send"
        /// A spool on disk behind the sender; nil: memory only.
        public var spool: SpoolOptions?

        public init(endpoint: RPCEndpoint, agentID: String) {
            self.init(endpoints: [endpoint], agentID: agentID)
        }

        /// `endpoints`: the collectors in order of preference; at least one.
        public init(endpoints: [RPCEndpoint], agentID: String) {
            precondition(!endpoints.isEmpty, "a sender needs at least one collector")
            self.endpoints = endpoints
            self.agentID = agentID
        }

        /// Checks the ids every batch header carries against the protocol's bounds
        /// (a sender with a bad id would have every batch refused).
        public func validate() throws(EventError) {
            try Event.checkString(agentID, field: "agent_id", limit: Event.maxIDBytes)
            try Event.checkString(bootID, field: "boot_id", limit: Event.maxIDBytes)
        }
    }

    /// Where the spool is and how big it may grow.
    public struct SpoolOptions: Sendable, Equatable {
        /// Made 0700 when missing; one boot directory per run inside.
        public var directory: String
        /// Bound on the spool's bytes, every run together: when full, its oldest segment is evicted.
        public var maxBytes: Int64 = SpoolSizing.defaultMaxBytes
        /// Bytes of one segment file (the unit of eviction and deletion).
        public var segmentBytes: Int64 = SpoolSizing.defaultSegmentBytes
        /// Bytes of events kept in memory while the spool cannot be written.
        public var memoryBytes = 16 << 20
        /// Bytes of spooled events also kept in memory for the delivery thread
        /// (sent from there, not read back from the disk).
        public var liveWindowBytes = 2 << 20
        /// How often an unusable spool is tried again.
        public var retryInterval: Duration = .seconds(3)
        /// When the spool asks the disk to make appends durable.
        public var sync: SpoolSync = .never

        public init(directory: String) {
            self.directory = directory
        }

        /// A spool of `maxBytes`, its segments sized to it (`SpoolSizing.segmentBytes`).
        public init(directory: String, maxBytes: Int64) {
            self.directory = directory
            self.maxBytes = maxBytes
            segmentBytes = SpoolSizing.segmentBytes(forMaxBytes: maxBytes)
        }
    }

    /// When the spool fdatasyncs. Either way an append is in the page cache
    /// once it returns, which survives the agent's death (kill -9 included);
    /// only a power loss or a kernel crash needs the disk.
    public enum SpoolSync: String, Sendable, CaseIterable {
        /// The kernel writes back (a power loss can cost what it had not, about 30 s).
        /// The default: a sync under the spool's lock stalls the delivery thread,
        /// which halved end-to-end throughput at full speed (Docs/Performance.md).
        case never
        /// Each segment as it is closed: a power loss costs at most the open segment.
        case segment
    }

    public enum SubmitResult: Sendable, Equatable {
        case queued
        /// The queue was full (or over its byte bound) and the event was dropped and counted.
        case dropped
    }

    public enum State: UInt8, Sendable, CustomStringConvertible {
        case connecting, connected, backingOff, closed

        public var description: String {
            switch self {
            case .connecting: "connecting"
            case .connected: "connected"
            case .backingOff: "backing off"
            case .closed: "closed"
            }
        }
    }

    public let configuration: Configuration
    private let core: SenderCore
    /// The sender thread (memory only), or the delivery thread.
    private let thread = Locked<NamedThread?>(nil)
    /// With a spool: the spooler thread.
    private let spoolerThread = Locked<NamedThread?>(nil)

    /// Starts the sender's threads. They connect lazily and keep trying while
    /// the collector is absent; `submit` is unaffected either way.
    public init(configuration: Configuration, logger: Logger) {
        var configuration = configuration
        configuration.maxBatchEvents = min(max(configuration.maxBatchEvents, 1), Event.maxBatchEvents)
        self.configuration = configuration
        core = SenderCore(configuration: configuration)
        let core = self.core
        guard let options = configuration.spool else {
            let loop = SenderLoop(core: core, logger: logger)
            thread.withLock { $0 = NamedThread(name: configuration.threadName) { loop.run() } }
            return
        }
        let pipeline = SpoolPipeline(options: options)
        core.onClose.withLock {
            $0 = {
                pipeline.deliveryWake.signal()
                pipeline.closeWake.signal()
            }
        }
        let spooler = Spooler(core: core, pipeline: pipeline, logger: logger)
        let delivery = DeliveryLoop(core: core, pipeline: pipeline, logger: logger)
        spoolerThread.withLock { $0 = NamedThread(name: "authrelay-spool") { spooler.run() } }
        thread.withLock { $0 = NamedThread(name: configuration.threadName) { delivery.run() } }
    }

    /// Never joins: the sending thread may sit in `clnt_call` for a whole call
    /// timeout, and the last reference may drop on an auth thread. It begins
    /// closing with a zero drain and lets the threads finish on their own; they
    /// hold only the core, which outlives this object as long as they run.
    /// Use `close(drainTimeout:)` to wait for the report.
    deinit {
        core.beginClosing(drainTimeout: .zero)
        spoolerThread.withLock { $0.take()?.detach() }
        thread.withLock { $0.take()?.detach() }
    }

    /// Queues `event` for delivery, or drops and counts it when the queue is full.
    /// Never blocks, never throws, never does I/O; safe from any number of threads.
    @discardableResult
    public func submit(_ event: Event) -> SubmitResult {
        core.submit(event)
    }

    /// A snapshot of the counters; never blocks the sender.
    public var stats: SenderStats { core.stats }

    /// Stops accepting events, delivers what it can within `drainTimeout`, and
    /// reports what it could not. Later calls return the same report.
    @discardableResult
    public func close(drainTimeout: Duration) -> ShutdownReport {
        core.beginClosing(drainTimeout: drainTimeout)
        // Joined under the lock, the spooler first: a second close waits for the first one's report.
        thread.withLock { sending in
            spoolerThread.withLock { $0.take()?.join() }
            sending.take()?.join()
        }
        return core.shutdownReport
    }

    /// 128 random bits as hex: a boot id that never repeats across runs.
    public static func randomBootID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

