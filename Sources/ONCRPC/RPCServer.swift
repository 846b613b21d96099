import CONCRPC
import CTIRPC
import Glibc
import Logging
import SystemSupport

/// An ONC RPC server that owns its event loop and its sockets.
///
/// - It binds its listeners itself (bind address, unix socket mode, stale
///   socket file removal), accepts connections itself (over `maxConnections`
///   it accepts and closes at once), and closes connections idle for `idleTimeout`.
/// - One thread polls a wake-up pipe, the listeners and the connections. Every
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
/// `StopHandle` may be used from elsewhere (also from a signal handler).
public final class RPCServer {
    public struct Configuration: Sendable {
        public var listeners: [Listener]
        /// Stream connections held at once; more are accepted and closed at once.
        public var maxConnections = 512
        /// A connection that sent nothing for this long is closed.
        public var idleTimeout: Duration = .seconds(300)
        /// The largest record (one call, all fragments) a connection may send; a larger one closes it.
        public var maxRecordSize = 1 << 20
        /// Register every (program, version, transport) with the local rpcbind.
        public var registerWithRPCBind = true
        /// How often `run`'s `onTick` runs (and idle connections are looked for).
        public var tickInterval: Duration = .seconds(1)
        /// At stop, how long requests already received are still answered and replies written.
        public var drainTimeout: Duration = .milliseconds(500)

        public init(listeners: [Listener]) {
            self.listeners = listeners
        }
    }

    /// Counters of the server itself (the handlers count what they do).
    public struct Statistics: Sendable, Equatable {
        public var acceptedConnections: UInt64 = 0
        /// Accepted and closed at once because `maxConnections` were open.
        public var refusedConnections: UInt64 = 0
        /// Closed after `idleTimeout` without a byte.
        public var idleConnectionsClosed: UInt64 = 0
        /// Closed for a record over `maxRecordSize` or bytes that are no RPC call.
        public var badStreams: UInt64 = 0
        public var calls: UInt64 = 0
        /// Calls whose arguments did not decode (GARBAGE_ARGS).
        public var undecodableArguments: UInt64 = 0
        /// Calls of a program, version or procedure not served, or with another RPC version or auth flavor.
        public var unservedCalls: UInt64 = 0

        public init() {}
    }

    /// Stops a running server from any thread or from a signal handler: it only
    /// write()s one byte to the server's wake-up pipe (async-signal-safe).
    public struct StopHandle: Sendable {
        let fd: Int32

        public func requestStop() {
            var byte: UInt8 = 1
            _ = write(fd, &byte, 1)
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
        return current
    }
    public var openConnections: Int { connections.count }
    public var stopHandle: StopHandle { StopHandle(fd: wakeUpPipe.write) }

    private let logger: Logger
    private let dispatcher: RPCDispatcher
    private var connectionCounters = Statistics()
    private var streamListeners: [ListeningSocket] = []
    private var datagramSockets: [ListeningSocket] = []
    private var listenerPausedUntil: [UInt64] = []
    private var connections: [Int32: StreamConnection] = [:]
    private var registeredWithRPCBind: [(program: UInt32, version: UInt32, transport: RPCTransport)] = []
    private let maxConnections: Int
    private let wakeUpPipe: (read: Int32, write: Int32)
    private var stopping = false
    private var lastRefusalLog: UInt64 = 0
    private let datagram = ByteBuffer()
    private let datagramReply = ByteBuffer()
    private static let readChunk = 64 * 1024

    /// Binds every listener and (unless told not to) registers the programs with
    /// rpcbind, replacing stale entries. Nothing is served before `run()`.
    public init(configuration: Configuration, programs: [RPCProgram], logger: Logger) throws(RPCServerError) {
        self.configuration = configuration
        self.logger = logger
        dispatcher = RPCDispatcher(programs: programs)
        maxConnections = Self.clampedMaxConnections(configuration.maxConnections, logger: logger)
        _ = Self.ignoreSIGPIPE
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw .socket(function: "pipe", errno: errno, listener: configuration.listeners.first ?? .unix(path: "-"))
        }
        for fd in ends {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeUpPipe = (ends[0], ends[1])
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
            Glibc.close(wakeUpPipe.read)
            Glibc.close(wakeUpPipe.write)
            throw error
        }
    }

    // The wake-up pipe stays open for the life of the object: a late `requestStop()`
    // must never write into a descriptor number that was closed and reused.
    deinit {
        Glibc.close(wakeUpPipe.read)
        Glibc.close(wakeUpPipe.write)
    }

    // MARK: Running

    /// Serves until `stopHandle.requestStop()`; then unregisters from rpcbind,
    /// closes the listeners, answers what was already received (up to
    /// `drainTimeout`) and closes every connection. `onTick` runs every
    /// `tickInterval` on this thread.
    public func run(onTick: () -> Void = {}) {
        var pollSet: [pollfd] = []
        var order: [StreamConnection] = []
        let tick = configuration.tickInterval.nanoseconds
        var nextTick = monotonicNanoseconds() + tick
        while !stopping {
            let now = monotonicNanoseconds()
            pollSet.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            pollSet.append(pollfd(fd: wakeUpPipe.read, events: Int16(POLLIN), revents: 0))
            for (index, listener) in streamListeners.enumerated() {
                // A paused listener (no descriptors left) goes in as fd -1, which poll ignores.
                let paused = listenerPausedUntil[index] > now
                pollSet.append(pollfd(fd: paused ? -1 : listener.fd, events: Int16(POLLIN), revents: 0))
            }
            for socket in datagramSockets {
                pollSet.append(pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0))
            }
            let firstConnection = pollSet.count
            for connection in connections.values {
                order.append(connection)
                pollSet.append(pollfd(fd: connection.fd, events: Int16(connection.hasPendingOutput ? POLLOUT : POLLIN), revents: 0))
            }
            let timeout = nextTick > now ? Int32(clamping: (nextTick - now + 999_999) / 1_000_000) : 0
            let ready = poll(&pollSet, nfds_t(pollSet.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.critical("poll failed: \(String(cString: strerror(errno)))")
                break
            }
            let after = monotonicNanoseconds()
            if ready > 0 {
                if pollSet[0].revents != 0 { drainWakeUpPipe() }
                for (index, socket) in datagramSockets.enumerated() where pollSet[1 + streamListeners.count + index].revents != 0 {
                    serveDatagrams(socket)
                }
                for (index, connection) in order.enumerated() where pollSet[firstConnection + index].revents != 0 {
                    serve(connection, now: after)
                }
                for (index, listener) in streamListeners.enumerated() where pollSet[1 + index].revents != 0 {
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

    private func serve(_ connection: StreamConnection, now: UInt64) {
        if connection.hasPendingOutput {
            if !connection.flush() { close(connection, reason: "send failed") }
            return  // read again once every reply is out
        }
        let request = RPCRequest(transport: connection.transport, program: 0, version: 0, procedure: 0, peer: connection.peer)
        let outcome = connection.read(maxRecordSize: configuration.maxRecordSize, chunkSize: Self.readChunk) { record in
            dispatcher.handle(record, request: request, framed: true, into: connection.output, decodedAhead: connection.incremental)
        } partial: { received in
            dispatcher.decodeAhead(received, of: connection)
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
            let fd = Glibc.accept(listener.fd, nil, nil)
            if fd < 0 {
                if errno == EMFILE || errno == ENFILE {
                    // Out of descriptors: the listener would stay readable and the loop spin.
                    listenerPausedUntil[index] = now + 1_000_000_000
                    logger.error("out of file descriptors: not accepting for a second", metadata: ["listener": "\(listener.listener)"])
                }
                return
            }
            if connections.count >= maxConnections {
                Glibc.close(fd)
                refused(listener, now: now)
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let transport = listener.listener.transport
            if transport == .tcp {
                var on: Int32 = 1  // replies are written whole: do not let Nagle hold them
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            }
            let peer = transport == .local ? PeerCredentials.of(fd) : nil
            connections[fd] = StreamConnection(fd: fd, transport: transport, peer: peer, now: now)
            connectionCounters.acceptedConnections += 1
            logger.trace("connection accepted", metadata: ["transport": "\(transport)", "peer": "\(peer.map(\.description) ?? "-")"])
        }
    }

    private func refused(_ listener: ListeningSocket, now: UInt64) {
        connectionCounters.refusedConnections += 1
        if now &- lastRefusalLog > 10_000_000_000 {
            lastRefusalLog = now
            logger.warning("refusing connections: \(maxConnections) are open (max connections)",
                           metadata: ["listener": "\(listener.listener)", "refused so far": "\(connectionCounters.refusedConnections)"])
        }
    }

    private func close(_ connection: StreamConnection, reason: String?) {
        connection.endRecord()
        connections[connection.fd] = nil
        Glibc.close(connection.fd)
        if let reason {
            logger.debug("connection closed: \(reason)", metadata: ["transport": "\(connection.transport)"])
        }
    }

    private func closeIdleConnections(now: UInt64) {
        let limit = configuration.idleTimeout.nanoseconds
        let idle = connections.values.filter { now &- $0.lastActivity > limit }
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
    private func serveDatagrams(_ socket: ListeningSocket) {
        datagram.reserve(65_536)
        for _ in 0..<32 {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let received = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(socket.fd, datagram.base, datagram.capacity, 0, $0, &length)
                }
            }
            guard received >= 0 else { return }
            datagramReply.count = 0
            let request = RPCRequest(transport: .udp, program: 0, version: 0, procedure: 0, peer: nil)
            let record = UnsafeRawBufferPointer(start: datagram.base, count: received)
            guard dispatcher.handle(record, request: request, framed: false, into: datagramReply, decodedAhead: .notUsed),
                  datagramReply.count > 0 else { continue }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socket.fd, datagramReply.base, datagramReply.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
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
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return max(1, wanted) }
        let available = max(1, Int(clamping: limit.rlim_cur) - 64)
        if wanted > available {
            logger.warning("max connections lowered to \(available): the open file limit is \(limit.rlim_cur) (raise it with ulimit -n or LimitNOFILE=)")
            return available
        }
        return max(1, wanted)
    }

    // MARK: Stopping

    private func shutDown() {
        logger.debug("stopping", metadata: ["open connections": "\(connections.count)"])
        unregisterFromRPCBind()
        closeListeners()
        answerWhatWasReceived()
        for connection in Array(connections.values) {
            close(connection, reason: nil)
        }
        drainWakeUpPipe()
        stopping = false
    }

    private func closeListeners() {
        for socket in streamListeners + datagramSockets {
            Glibc.close(socket.fd)
            if case .unix(let path, _) = socket.listener { unlink(path) }
        }
        streamListeners.removeAll()
        datagramSockets.removeAll()
    }

    /// Answers calls already received and writes pending replies, until nothing
    /// is left to do or `drainTimeout` has passed.
    private func answerWhatWasReceived() {
        let deadline = monotonicNanoseconds() + configuration.drainTimeout.nanoseconds
        var pollSet: [pollfd] = []
        while !connections.isEmpty, monotonicNanoseconds() < deadline {
            let order = Array(connections.values)
            pollSet = order.map { pollfd(fd: $0.fd, events: Int16($0.hasPendingOutput ? POLLOUT : POLLIN), revents: 0) }
            guard poll(&pollSet, nfds_t(pollSet.count), 10) > 0 else { break }
            for (index, connection) in order.enumerated() where pollSet[index].revents != 0 {
                serve(connection, now: monotonicNanoseconds())
            }
        }
    }

    // MARK: Wake-up

    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    private func drainWakeUpPipe() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(wakeUpPipe.read, &bytes, bytes.count) > 0 {
            stopping = true
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the server's clock for timers and idle times.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(seconds, 0)) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
    }
}
