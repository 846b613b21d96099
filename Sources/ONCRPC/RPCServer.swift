import Glibc
import Logging
import SystemSupport

/// An ONC RPC server that owns its event loop and its sockets.
///
/// - It binds its listeners itself (bind address, unix socket mode, stale
///   socket file removal), accepts connections itself (with `maxConnections`
///   open, a new one closes the least recently active: see `EvictionOrder`),
///   and closes connections idle for `idleTimeout`.
/// - One thread polls a wake-up signal, the listeners and the connections. Every
///   socket is non-blocking; a stream's records are assembled across reads and
///   fragments up to `maxRecordSize` (see `StreamConnection` for why libtirpc's
///   stream transport is not used), so no client can block the loop: not one
///   that sends half a record and stops, nor one that does not read its replies
///   (it is not read again until its replies are written).
/// - Calls are decoded with the program's own rpcgen XDR routines (through
///   xdrmem; a procedure may add an `RPCIncrementalDecoder` to decode while a
///   large record arrives), and the message header by hand (`RPCServerMessage`): PROG_UNAVAIL,
///   PROG_MISMATCH with the served range, PROC_UNAVAIL and GARBAGE_ARGS are
///   answered as libtirpc's server answers them.
/// - rpcbind is told of every (program, version, transport) through `RPCBind`,
///   with bounded timeouts; stale registrations are replaced at start and all
///   are removed at stop.
///
/// Not thread-safe: `run()` and the handlers run on the caller's thread; only
/// `StopHandle` may be used from elsewhere.
///
/// Process-wide settings are the program's: the server sends with MSG_NOSIGNAL,
/// but the `RPCClient` it uses for rpcbind needs SIGPIPE ignored (see there).
public final class RPCServer {
    public struct Configuration: Sendable {
        public var listeners: [Listener]
        /// Stream connections held at once; a new one past this closes the least recently active.
        public var maxConnections = 512
        /// A connection that sent nothing for this long is closed.
        public var idleTimeout: Duration = .seconds(300)
        /// The largest record (one call, all fragments) a connection may send; a larger one closes it.
        public var maxRecordSize = 1 << 20
        /// Register every (program, version, transport) with the local rpcbind.
        public var registerWithRPCBind = true
        /// How often `run`'s `onTick` runs (and idle connections are looked for).
        public var tickInterval: Duration = .seconds(1)
        /// At stop, how long requests already received are still answered and replies written
        /// (deferred replies included).
        public var drainTimeout: Duration = .milliseconds(500)
        /// A connection with this many deferred replies outstanding is not read
        /// again until one is written: what a client sends meanwhile waits in
        /// its socket (backpressure), so a connection holds at most about one
        /// call in the hands of whoever completes it, as it holds one record
        /// being assembled.
        public var maxDeferredRepliesPerConnection = 1

        public init(listeners: [Listener]) {
            self.listeners = listeners
        }
    }

    /// Counters of the server itself (the handlers count what they do).
    public struct Statistics: Sendable, Equatable {
        public var acceptedConnections: UInt64 = 0
        /// Accepted and closed at once. Always 0 since a full table evicts instead
        /// (`evictedConnections`); kept so the counters keep their names.
        public var refusedConnections: UInt64 = 0
        /// Closed because `maxConnections` were open and a new one came: the least
        /// recently active, those that never sent a byte first (libtirpc 1.3.2's
        /// rule for CVE-2021-46828, which refusing new connections had: a flood of
        /// idle ones locked every new client out until --idle-timeout).
        public var evictedConnections: UInt64 = 0
        /// Closed after `idleTimeout` without a byte.
        public var idleConnectionsClosed: UInt64 = 0
        /// Closed for a record over `maxRecordSize` or bytes that are no RPC call.
        public var badStreams: UInt64 = 0
        public var calls: UInt64 = 0
        /// Calls whose arguments did not decode (GARBAGE_ARGS).
        public var undecodableArguments: UInt64 = 0
        /// Calls of a program, version or procedure not served, or with another RPC version or auth flavor.
        public var unservedCalls: UInt64 = 0
        /// Calls a deferrable procedure answered later (`RPCReply.deferred`).
        public var deferredReplies: UInt64 = 0
        /// Deferred replies dropped: their connection had closed, or the server had stopped.
        public var droppedDeferredReplies: UInt64 = 0

        public init() {}
    }

    /// Stops a running server from any thread: it signals the server's wake-up
    /// eventfd. The handle holds the `WakeSignal` itself, not its number, so the
    /// descriptor lives as long as any handle does: a `requestStop()` after the
    /// server is gone can never write into a descriptor closed and reused.
    ///
    /// Not for signal handlers, and it need not be async-signal-safe: signals
    /// reach a program through SystemSupport's `SignalRoute` (a `ServiceGroup`
    /// stops its services), and this is called from an ordinary thread.
    public struct StopHandle: Sendable {
        let signals: ServerSignals

        public func requestStop() {
            signals.requestStop()
        }
    }

    public let configuration: Configuration
    /// The listeners as bound (port 0 replaced by the port the kernel chose).
    public private(set) var listeners: [Listener] = []
    /// The server's counters, with the dispatcher's (calls, undecodable, unserved).
    public var statistics: Statistics {
        var current = connectionCounters
        current.calls = dispatcher.counters.calls
        current.undecodableArguments = dispatcher.counters.undecodableArguments
        current.unservedCalls = dispatcher.counters.unservedCalls
        current.droppedDeferredReplies = completions.dropped
        return current
    }
    public var openConnections: Int { connections.count }
    public var stopHandle: StopHandle { StopHandle(signals: signals) }

    private let logger: Logger
    private let dispatcher: RPCDispatcher
    private var connectionCounters = Statistics()
    private var streamListeners: [ListeningSocket] = []
    private var datagramSockets: [ListeningSocket] = []
    private var listenerPausedUntil: [UInt64] = []
    private var connections: [Int32: StreamConnection] = [:]
    /// Which connection a full table closes for a new one.
    private var evictionOrder = EvictionOrder()
    private var registeredWithRPCBind: [(program: UInt32, version: UInt32, transport: RPCTransport)] = []
    private let maxConnections: Int
    /// The wake-up eventfd `run()` polls: set by `StopHandle.requestStop()`
    /// and by deferred replies posted to `completions`.
    private let signals = ServerSignals()
    private var wake: WakeSignal { signals.wake }
    private let completions: RPCCompletionQueue
    /// Serial numbers of accepted connections (a deferred reply names its connection by it).
    private var nextConnectionID: UInt64 = 0
    /// Deferred datagram replies not yet sent (the drain at stop waits for them).
    private var owedDatagramReplies = 0
    private var stopping = false
    private var lastEvictionLog: UInt64 = 0
    private let datagram = ByteBuffer()
    private let datagramReply = ByteBuffer()
    /// What one stream read fills: the framers keep only what a record still needs.
    private let readBuffer = ByteBuffer()
    private static let readChunk = 64 * 1024

    /// Binds every listener and (unless told not to) registers the programs with
    /// rpcbind, replacing stale entries. Nothing is served before `run()`.
    public init(configuration: Configuration, programs: [RPCProgram], logger: Logger) throws(RPCServerError) {
        self.configuration = configuration
        self.logger = logger
        completions = RPCCompletionQueue(wake: signals.wake)
        dispatcher = RPCDispatcher(programs: programs, completions: completions)
        maxConnections = Self.clampedMaxConnections(configuration.maxConnections, logger: logger)
        do {
            for listener in configuration.listeners {
                let socket = try ListeningSocket.open(listener)
                if listener.transport == .udp { datagramSockets.append(socket) } else { streamListeners.append(socket) }
                listeners.append(socket.listener)
                logger.info("listening \(socket.listener)")
            }
            listenerPausedUntil = Array(repeating: 0, count: streamListeners.count)
            if configuration.registerWithRPCBind {
                try registerWithRPCBind(programs)
            }
        } catch {
            unregisterFromRPCBind()
            closeListeners()
            throw error
        }
    }

    // MARK: Running

    /// Serves until `stopHandle.requestStop()`; then unregisters from rpcbind,
    /// closes the listeners, answers what was already received (up to
    /// `drainTimeout`) and closes every connection. `onTick` runs every
    /// `tickInterval` on this thread.
    public func run(onTick: () -> Void = {}) {
        // Rebuilt for each wait, with kept capacity: no allocation once warm.
        var pollSet = PollSet()
        var order: [StreamConnection] = []
        let tick = UInt64(max(configuration.tickInterval.nanoseconds, 0))
        var nextTick = SystemClock.monotonicNanoseconds() + tick
        while !stopping {
            let now = SystemClock.monotonicNanoseconds()
            pollSet.removeAll()
            order.removeAll(keepingCapacity: true)
            pollSet.add(wake.descriptor, .readable)
            for (index, listener) in streamListeners.enumerated() {
                // A paused listener (no descriptors left) keeps its index but is not polled.
                if listenerPausedUntil[index] > now { pollSet.addPlaceholder() } else { pollSet.add(listener.fd, .readable) }
            }
            for socket in datagramSockets {
                pollSet.add(socket.fd, .readable)
            }
            let firstConnection = pollSet.count
            for connection in connections.values {
                order.append(connection)
                pollSet.add(connection.fd, interest(connection))
            }
            let ready: Int
            do {
                ready = try pollSet.wait(timeout: .nanoseconds(Int64(clamping: nextTick > now ? nextTick - now : 0)))
            } catch {
                logger.critical("poll failed: \(error)")
                break
            }
            let after = SystemClock.monotonicNanoseconds()
            if ready > 0 {
                if !pollSet.ready(0).isEmpty {
                    wake.clear()  // before taking the completions: see RPCCompletionQueue
                    if signals.stopRequested { stopping = true }
                    deliverDeferredReplies(now: after)
                }
                for (index, socket) in datagramSockets.enumerated() where !pollSet.ready(1 + streamListeners.count + index).isEmpty {
                    serveDatagrams(socket, index: index)
                }
                for (index, connection) in order.enumerated() where !pollSet.ready(firstConnection + index).isEmpty {
                    serve(connection, now: after)
                }
                for (index, listener) in streamListeners.enumerated() where !pollSet.ready(1 + index).isEmpty {
                    accept(on: listener, index: index, now: after)
                }
            }
            if after >= nextTick {
                closeIdleConnections(now: after)
                onTick()
                nextTick = after + tick
            }
        }
        shutDown()
    }

    // MARK: Streams

    /// What the loop waits for on a connection: its replies to go out, else
    /// calls to read, unless it has as many deferred replies outstanding as
    /// it may (then only its peer going away, to free it early).
    private func interest(_ connection: StreamConnection) -> PollEvents {
        if connection.hasPendingOutput { return .writable }
        return connection.deferredReplies < configuration.maxDeferredRepliesPerConnection ? .readable : .readHangUp
    }

    /// Writes the deferred replies completed since the last wake-up to their
    /// connections (or datagram peers); a reply whose connection has closed
    /// meanwhile (a descriptor reused since has another serial) is dropped.
    private func deliverDeferredReplies(now: UInt64) {
        var dropped = 0
        for reply in completions.takeAll() {
            switch reply.target {
            case .stream(let id, let fd):
                guard let connection = connections[fd], connection.id == id else {
                    dropped += 1
                    continue
                }
                reply.bytes.withUnsafeBytes { connection.output.append($0.baseAddress!, count: $0.count) }
                connection.deferredReplies -= 1
                connection.lastActivity = now  // answered just now: as recent as its call would have been
                if !connection.flush() { close(connection, reason: "send failed") }
            case .datagram(let index, let peer):
                owedDatagramReplies -= 1
                guard index < datagramSockets.count else {
                    dropped += 1
                    continue
                }
                reply.bytes.withUnsafeBytes { datagramSockets[index].send($0, to: peer) }
            case .none:
                dropped += 1
            }
        }
        if dropped > 0 { completions.noteDropped(dropped) }
    }

    private func serve(_ connection: StreamConnection, now: UInt64) {
        if connection.hasPendingOutput {
            if !connection.flush() { close(connection, reason: "send failed") }
            return  // read again once every reply is out
        }
        let request = RPCRequest(transport: connection.transport, program: 0, version: 0, procedure: 0, peer: connection.peer)
        let target = RPCReplyTarget.stream(connection: connection.id, fd: connection.fd)
        let outcome = connection.read(into: readBuffer, chunkSize: Self.readChunk, maxRecordSize: configuration.maxRecordSize) { record in
            let isCall = dispatcher.handle(record, request: request, framed: true, into: connection.output,
                                           decodedAhead: connection.incremental, target: target)
            if dispatcher.lastCallDeferred {
                connection.deferredReplies += 1
                connectionCounters.deferredReplies += 1
            }
            return isCall
        } partial: { received in
            dispatcher.decodeAhead(received, &connection.incremental)
        }
        connection.lastActivity = now
        switch outcome {
        case .open:
            if connection.hasPendingOutput, !connection.flush() { close(connection, reason: "send failed") }
        case .closed:
            _ = connection.flush()
            close(connection, reason: nil)
        case .recordTooLarge(let size):
            connectionCounters.badStreams += 1
            close(connection, reason: "record of \(size) bytes or more, over the limit of \(configuration.maxRecordSize)")
        case .notACall:
            connectionCounters.badStreams += 1
            _ = connection.flush()
            close(connection, reason: "bytes that are not an RPC call")
        }
    }

    private func accept(on listener: ListeningSocket, index: Int, now: UInt64) {
        // A few at a time, so a burst of connections cannot starve the loop.
        for _ in 0..<64 {
            let socket: FileDescriptor
            do {
                guard let accepted = try listener.accept(nonBlocking: true) else { return }
                socket = accepted
            } catch {
                if error.errno == EMFILE || error.errno == ENFILE {
                    // Out of descriptors: the listener would stay readable and the loop spin.
                    listenerPausedUntil[index] = now + 1_000_000_000
                    logger.error("out of file descriptors: not accepting for a second", metadata: ["listener": "\(listener.listener)"])
                }
                return
            }
            if connections.count >= maxConnections {
                evictLeastRecentlyActive(for: listener, now: now)
            }
            let transport = listener.listener.transport
            if transport == .tcp {
                try? socket.setNoDelay()  // replies are written whole: do not let Nagle hold them
            }
            nextConnectionID += 1
            let connection = StreamConnection(socket, transport: transport, id: nextConnectionID, now: now)
            connections[connection.fd] = connection
            evictionOrder.accepted(connection, at: now, open: connections.count)
            connectionCounters.acceptedConnections += 1
            logger.trace("connection accepted", metadata: ["transport": "\(transport)", "peer": "\(connection.peer.map(\.description) ?? "-")"])
        }
    }

    /// The table is full and a new connection came: the least recently active
    /// one is closed (one that never sent a byte before any that did), so an
    /// idle flood cannot lock a new client out, and a client that keeps sending
    /// is never the one closed while an idle one is open.
    private func evictLeastRecentlyActive(for listener: ListeningSocket, now: UInt64) {
        guard let victim = evictionOrder.leastRecentlyActive(in: connections, now: now) else { return }
        let idle = now &- victim.lastActivity
        close(victim, reason: nil)
        connectionCounters.evictedConnections += 1
        if now &- lastEvictionLog > 10_000_000_000 {
            lastEvictionLog = now
            logger.warning("connection table full: closing the least recently active connection for each new one", metadata: [
                "max connections": "\(maxConnections)", "listener": "\(listener.listener)",
                "closed so far": "\(connectionCounters.evictedConnections)", "idle ms": "\(idle / 1_000_000)",
            ])
        }
    }

    private func close(_ connection: StreamConnection, reason: String?) {
        connections[connection.fd] = nil
        connection.close()
        if let reason {
            logger.debug("connection closed: \(reason)", metadata: ["transport": "\(connection.transport)"])
        }
    }

    private func closeIdleConnections(now: UInt64) {
        let limit = UInt64(max(configuration.idleTimeout.nanoseconds, 0))
        // One waiting for its deferred reply is not idle: the server owes it an answer.
        let idle = connections.values.filter { now &- $0.lastActivity > limit && $0.deferredReplies == 0 }
        for connection in idle {
            close(connection, reason: nil)
        }
        if !idle.isEmpty {
            connectionCounters.idleConnectionsClosed += UInt64(idle.count)
            logger.debug("closed idle connections", metadata: ["closed": "\(idle.count)", "open": "\(connections.count)"])
        }
    }

    // MARK: Datagrams

    /// One datagram is one call; a few per wake-up, so UDP cannot starve the streams.
    private func serveDatagrams(_ socket: ListeningSocket, index: Int) {
        datagram.reserve(65_536)
        for _ in 0..<32 {
            guard let (received, peer) = socket.receive(into: UnsafeMutableRawBufferPointer(start: datagram.base, count: datagram.capacity))
            else { return }
            datagramReply.count = 0
            let request = RPCRequest(transport: .udp, program: 0, version: 0, procedure: 0, peer: nil)
            let record = UnsafeRawBufferPointer(start: datagram.base, count: received)
            guard dispatcher.handle(record, request: request, framed: false, into: datagramReply, decodedAhead: .notUsed,
                                    target: .datagram(socket: index, peer: peer)) else { continue }
            if dispatcher.lastCallDeferred {
                connectionCounters.deferredReplies += 1
                owedDatagramReplies += 1
            }
            guard datagramReply.count > 0 else { continue }
            socket.send(datagramReply.bytes, to: peer)
        }
    }

    // MARK: rpcbind

    private func registerWithRPCBind(_ programs: [RPCProgram]) throws(RPCServerError) {
        for listener in listeners {
            for program in programs {
                if let other = liveOtherServer(program.program, program.version, listener) {
                    throw .alreadyServed(program: program.program, version: program.version, transport: listener.transport, by: other)
                }
                let accepted: Bool
                do {
                    // A registration left by a killed predecessor would make SET fail: replace it.
                    try RPCBind.unregister(program: program.program, version: program.version, transport: listener.transport)
                    accepted = try RPCBind.register(program: program.program, version: program.version,
                                                    transport: listener.transport, universalAddress: listener.universalAddress)
                } catch {
                    throw .rpcbindUnavailable(error)
                }
                guard accepted else {
                    throw .rpcbindRefused(program: program.program, version: program.version, transport: listener.transport)
                }
                registeredWithRPCBind.append((program.program, program.version, listener.transport))
            }
            logger.debug("registered with rpcbind", metadata: ["listener": "\(listener)", "address": "\(listener.universalAddress)"])
        }
    }

    /// The server rpcbind names for this registration, when it is not this one and
    /// answers a ping: taking its registration over would hide it from its clients.
    private func liveOtherServer(_ program: UInt32, _ version: UInt32, _ listener: Listener) -> RPCEndpoint? {
        guard let registered = try? RPCBind.lookup(host: "localhost", program: program, version: version,
                                                   transport: listener.transport, timeout: .seconds(1)),
              !Self.isAddress(registered, of: listener)
        else { return nil }
        let client = RPCClient(endpoint: registered, program: program, version: version,
                               timeout: .milliseconds(500), connectTimeout: .milliseconds(500))
        return (try? client.ping()) != nil ? registered : nil
    }

    /// Whether rpcbind's address for a registration is this listener's (same port or path).
    private static func isAddress(_ endpoint: RPCEndpoint, of listener: Listener) -> Bool {
        guard let own = RPCBind.endpoint(universalAddress: listener.universalAddress, transport: listener.transport,
                                         host: "localhost")
        else { return false }
        switch (endpoint, own) {
        case (.tcp(_, let a), .tcp(_, let b)), (.udp(_, let a), .udp(_, let b)): return a == b
        case (.unix(let a), .unix(let b)): return a == b
        default: return false
        }
    }

    private func unregisterFromRPCBind() {
        for entry in registeredWithRPCBind {
            do {
                try RPCBind.unregister(program: entry.program, version: entry.version, transport: entry.transport)
            } catch {
                logger.warning("rpcbind unregister failed: \(error)")
            }
        }
        registeredWithRPCBind.removeAll()
    }

    /// No more connections than descriptors: the open file limit less room for the program's own files.
    private static func clampedMaxConnections(_ wanted: Int, logger: Logger) -> Int {
        guard let limit = OpenFileLimit.current() else { return max(1, wanted) }
        let available = max(1, limit.soft - 64)
        if wanted > available {
            logger.warning("max connections lowered to \(available): the open file limit is \(limit.soft) (raise it with ulimit -n or LimitNOFILE=)")
            return available
        }
        return max(1, wanted)
    }

    // MARK: Stopping

    private func shutDown() {
        logger.debug("stopping", metadata: ["open connections": "\(connections.count)"])
        unregisterFromRPCBind()
        closeListeners(keepingDatagrams: true)
        answerWhatWasReceived()
        for connection in Array(connections.values) {
            close(connection, reason: nil)
        }
        // Replies completed from now on have nowhere to go: dropped (and counted).
        completions.close()
        for socket in datagramSockets {
            socket.close()
        }
        datagramSockets.removeAll()
        wake.clear()  // a stop asked for while stopping is done with
        signals.clearStop()
        stopping = false
    }

    /// Closes the stream listeners (no connection comes in while stopping)
    /// and the datagram sockets unless `keepingDatagrams` (the drain still
    /// sends deferred datagram replies through them).
    private func closeListeners(keepingDatagrams: Bool = false) {
        for socket in streamListeners {
            socket.close()
        }
        streamListeners.removeAll()
        listenerPausedUntil.removeAll()
        guard !keepingDatagrams else { return }
        for socket in datagramSockets {
            socket.close()
        }
        datagramSockets.removeAll()
    }

    /// Answers calls already received and writes pending replies, deferred
    /// ones included, until nothing is left to do or `drainTimeout` has
    /// passed. Datagrams are no longer read, but deferred replies to them are still sent.
    private func answerWhatWasReceived() {
        let deadline = SystemClock.deadline(after: configuration.drainTimeout)
        var pollSet = PollSet()
        while SystemClock.monotonicNanoseconds() < deadline {
            let order = Array(connections.values)
            guard !order.isEmpty || owedDatagramReplies > 0 else { break }
            pollSet.removeAll()
            pollSet.add(wake.descriptor, .readable)
            for connection in order { pollSet.add(connection.fd, interest(connection)) }
            let waitingForReplies = order.contains { $0.deferredReplies > 0 } || owedDatagramReplies > 0
            guard let ready = try? pollSet.wait(timeout: .milliseconds(10)) else { break }
            if ready == 0 {
                if waitingForReplies { continue }  // still owed: wait for them, up to the deadline
                break
            }
            if !pollSet.ready(0).isEmpty {
                wake.clear()
                deliverDeferredReplies(now: SystemClock.monotonicNanoseconds())
            }
            for (index, connection) in order.enumerated() where !pollSet.ready(index + 1).isEmpty {
                guard connections[connection.fd] === connection else { continue }  // closed by a delivery
                serve(connection, now: SystemClock.monotonicNanoseconds())
            }
        }
    }
}

/// The order a full connection table closes connections in, kept cheaply: the
/// hot path only updates `lastActivity` (a store per read, as before); the
/// work is done at accept and, when the table is full, per eviction.
///
/// 1. Connections that have sent nothing since an earlier loop pass accepted
///    them go first, oldest accept first: they sit in a FIFO in accept order,
///    and one that has sent a byte since (its `lastActivity` moved off its
///    accept time) or was closed is skipped when reached. Amortized O(1).
///    Connections accepted in this pass are not taken here: they have not been
///    read yet, so a new client is never closed for being new.
/// 2. Then the least recent `lastActivity`: one scan takes the least recent
///    sixteenth, sorted; each eviction takes the first of them whose
///    `lastActivity` has not moved since (one that moved is now among the most
///    recent; one accepted after the scan is in the FIFO). So each pick is
///    exactly the least recently active, for a scan per 1/16 of the table.
///    A connection owed a deferred reply is never taken (it is mid-call), and
///    writing that reply counts as activity.
/// 3. Only when nothing else is open: the oldest connection of this pass.
///
/// Weak references: a closed connection's buffers are freed at once, not when
/// its entry is reached.
private struct EvictionOrder {
    private struct Entry {
        weak var connection: StreamConnection?
        /// Its `lastActivity` when the entry was made (for the FIFO: its accept time).
        let activity: UInt64
    }

    private var silent: [Entry] = []
    private var silentHead = 0
    private var active: [Entry] = []
    private var activeHead = 0

    mutating func accepted(_ connection: StreamConnection, at now: UInt64, open: Int) {
        silent.append(Entry(connection: connection, activity: now))
        // Entries of connections that have sent or closed are dropped now and then: the FIFO stays O(open).
        if silent.count > 2 * open + 64 {
            silent = silent[silentHead...].filter { entry in entry.connection.map { $0.lastActivity == entry.activity } ?? false }
            silentHead = 0
        }
    }

    /// The connection to close; `now` is this loop pass's time, which its accepts share.
    mutating func leastRecentlyActive(in table: [Int32: StreamConnection], now: UInt64) -> StreamConnection? {
        if let connection = takeSilent(table, acceptedBefore: now) { return connection }
        if let connection = Self.take(from: &active, head: &activeHead, table) { return connection }
        // One the server still owes a reply is mid-call, not idle (the writer is slow, not the client).
        let all = table.values.filter { $0.deferredReplies == 0 }.map { Entry(connection: $0, activity: $0.lastActivity) }
            .sorted { $0.activity < $1.activity }
        active = Array(all.prefix(max(1, all.count / 16)))
        activeHead = 0
        return Self.take(from: &active, head: &activeHead, table) ?? takeSilent(table, acceptedBefore: .max)
    }

    /// The oldest connection still silent since its accept, accepted before `limit`.
    private mutating func takeSilent(_ table: [Int32: StreamConnection], acceptedBefore limit: UInt64) -> StreamConnection? {
        while silentHead < silent.count {
            let entry = silent[silentHead]
            guard entry.activity < limit else { return nil }  // accepted in this pass, and so is the rest
            silentHead += 1
            if let connection = entry.connection, table[connection.fd] === connection, connection.lastActivity == entry.activity {
                return connection
            }
        }
        silent.removeAll(keepingCapacity: true)
        silentHead = 0
        return nil
    }

    /// The first entry from `head` whose connection is open and as active as it was; nil when none is.
    private static func take(from entries: inout [Entry], head: inout Int, _ table: [Int32: StreamConnection]) -> StreamConnection? {
        while head < entries.count {
            let entry = entries[head]
            head += 1
            if let connection = entry.connection, table[connection.fd] === connection, connection.lastActivity == entry.activity {
                return connection
            }
        }
        entries.removeAll(keepingCapacity: true)
        head = 0
        return nil
    }
}
