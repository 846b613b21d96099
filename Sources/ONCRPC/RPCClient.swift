import CONCRPC
import CTIRPC
import Glibc

/// A typed ONC RPC client for one program and version at one endpoint.
///
/// One handle per thread: libtirpc serializes calls on a CLIENT for the whole
/// round trip, so a shared client would make one thread wait for another's
/// reply. `RPCClient` is therefore not `Sendable`; give each thread its own.
///
/// It handles libtirpc's traps itself:
/// - SIGPIPE is ignored process-wide (libtirpc writes with plain write()).
/// - A send is bounded by about the call timeout (SO_SNDTIMEO of a quarter of it
///   on each write), so a stopped server with full buffers cannot block a call
///   for seconds. The connection is then dropped: the record was cut short.
/// - After a lost connection, or a UDP timeout (clnt_dg never recovers from
///   stale replies), the handle is dropped and the next call connects again,
///   asking rpcbind again when the endpoint goes through rpcbind.
/// Nothing is retried inside a call: a timed-out call may still have been
/// executed by the server, so retrying is the caller's decision.
public final class RPCClient {
    public let endpoint: RPCEndpoint
    public let program: UInt32
    public let version: UInt32
    /// Default for calls that do not name their own timeout.
    public var timeout: Duration
    /// Bound on connecting (and on asking rpcbind).
    public var connectTimeout: Duration

    private var handle: UnsafeMutablePointer<CLIENT>?
    private var descriptor: Int32 = -1
    private var sendTimeout: Duration?
    /// Where the handle is connected, as "tcp 127.0.0.1:4000" or "unix /run/x.sock".
    public private(set) var connectedAddress: String?

    public init(
        endpoint: RPCEndpoint, program: UInt32, version: UInt32,
        timeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(2)
    ) {
        RPCClient.ignoreSIGPIPE
        self.endpoint = endpoint
        self.program = program
        self.version = version
        self.timeout = timeout
        self.connectTimeout = connectTimeout
    }

    deinit { disconnect() }

    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    public var isConnected: Bool { handle != nil }

    /// Connects now (calls connect on demand anyway). Safe to call when connected.
    public func connect() throws(RPCError) {
        if handle != nil { return }
        let target = try resolveTarget()
        try open(target)
    }

    /// Closes the connection; the next call connects again.
    public func disconnect() {
        if let handle {
            CONCRPC_clnt_destroy(handle)  // closes the descriptor (CLSET_FD_CLOSE)
        }
        handle = nil
        descriptor = -1
        sendTimeout = nil
        connectedAddress = nil
    }

    /// Calls procedure 0, which every ONC RPC program answers with nothing.
    public func ping(timeout: Duration? = nil) throws(RPCError) {
        var nothing: Int32 = 0
        try call(0, &nothing, encode: .void, decode: .void, as: Int32.self, timeout: timeout) { _ in () }
    }

    /// Calls `procedure` with `argument` (an rpcgen C struct), decodes the reply
    /// into a zeroed `Result`, hands it to `body`, then frees what the decoder
    /// allocated, on every path.
    public func call<Argument, Result, Value>(
        _ procedure: UInt32, _ argument: inout Argument, encode: XDRRoutine,
        decode: XDRRoutine, as resultType: Result.Type, timeout: Duration? = nil,
        _ body: (UnsafePointer<Result>) -> Value
    ) throws(RPCError) -> Value {
        let handle = try prepare(timeout: timeout ?? self.timeout)
        return try withUnsafeTemporaryAllocation(of: Result.self, capacity: 1) { (buffer) throws(RPCError) -> Value in
            let result = buffer.baseAddress!
            UnsafeMutableRawPointer(result).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Result>.size)
            // xdr_free, not clnt_freeres: a failed call may already have destroyed the
            // handle (check() disconnects on a lost connection or a UDP timeout).
            defer { CONCRPC_xdr_free(decode.routine, result) }
            let status = withUnsafeMutablePointer(to: &argument) { argumentPointer in
                CONCRPC_clnt_call(handle, rpcproc_t(procedure), encode.routine, argumentPointer,
                                  decode.routine, result, timeval(timeout ?? self.timeout))
            }
            try check(status, procedure: procedure)
            return body(result)
        }
    }

    /// Sends a call without waiting for a reply: libtirpc's classic batching
    /// (NULL result routine, zero timeout). The call is buffered and goes out with
    /// the next normal call (use `ping()` to flush) or when 64 KiB are buffered.
    /// Stream transports only.
    public func callOneWay<Argument>(_ procedure: UInt32, _ argument: inout Argument, encode: XDRRoutine) throws(RPCError) {
        guard endpoint.transport != .udp else {
            throw RPCError(status: .unknownProtocol, function: "callOneWay", context: "one-way batching needs a stream transport, not udp")
        }
        let handle = try prepare(timeout: timeout)
        let status = withUnsafeMutablePointer(to: &argument) { argumentPointer in
            CONCRPC_clnt_call(handle, rpcproc_t(procedure), encode.routine, argumentPointer, nil, nil, timeval(tv_sec: 0, tv_usec: 0))
        }
        // clnt_vc answers a buffered one-way call RPC_SUCCESS; RPC_TIMEDOUT, the zero-timeout
        // status of a call it did send, is not a failure here either.
        if status != RPC_SUCCESS && status != RPC_TIMEDOUT {
            try check(status, procedure: procedure)
        }
    }

    private func prepare(timeout: Duration) throws(RPCError) -> UnsafeMutablePointer<CLIENT> {
        try connect()
        if endpoint.transport != .udp, sendTimeout != timeout {
            // SO_SNDTIMEO bounds each write(), not the send: clnt_vc writes 64 KiB pieces
            // and, once the peer stops reading, a failing call waits in about four of them
            // (the write that fills the buffer returns short, the kernel grows the buffer
            // once or twice, the next write fails with EAGAIN, and xdrrec_endofrecord tries
            // once more). A quarter of the call timeout per write keeps the whole send
            // within about the call timeout (measured in the Traps tests).
            try SocketOptions.setSendTimeout(descriptor, timeout / 4)
            sendTimeout = timeout
        }
        if endpoint.transport == .udp, sendTimeout != timeout {
            // clnt_dg retransmits every "retry timeout"; make it the call timeout
            // so one call is one datagram (delivery is at-least-once either way).
            var wait = timeval(timeout)
            _ = CONCRPC_clnt_control(handle!, UInt32(CLSET_RETRY_TIMEOUT), &wait)
            sendTimeout = timeout
        }
        return handle!
    }

    private func check(_ status: clnt_stat, procedure: UInt32) throws(RPCError) {
        guard status != RPC_SUCCESS else { return }
        var details = rpc_err()
        CONCRPC_clnt_geterr(handle!, &details)
        let rpcStatus = RPCStatus(status)
        var error = RPCError(
            status: rpcStatus, errno: rpcStatus.losesConnection || rpcStatus == .systemError ? details.ru.RE_errno : 0,
            function: "clnt_call", context: "\(connectedAddress ?? endpoint.description) \(programDescription) procedure \(procedure)")
        if rpcStatus == .programVersionMismatch {
            let low = UInt32(truncatingIfNeeded: details.ru.RE_vers.low)
            let high = UInt32(truncatingIfNeeded: details.ru.RE_vers.high)
            error.supportedVersions = min(low, high)...max(low, high)
        }
        if rpcStatus.losesConnection || (rpcStatus == .timedOut && endpoint.transport == .udp) {
            disconnect()
        }
        throw error
    }

    var programDescription: String {
        "program \(program) (0x\(String(program, radix: 16))) version \(version)"
    }

    // MARK: Connecting

    private func resolveTarget() throws(RPCError) -> RPCEndpoint {
        guard case .rpcbind(let host, let transport) = endpoint else { return endpoint }
        return try RPCBind.lookup(host: host, program: program, version: version, transport: transport, timeout: connectTimeout)
    }

    private func open(_ target: RPCEndpoint) throws(RPCError) {
        let addresses: [SocketAddress]
        switch target {
        case .tcp(let host, let port): addresses = try SocketAddress.resolve(host: host, port: port, datagram: false)
        case .udp(let host, let port): addresses = try SocketAddress.resolve(host: host, port: port, datagram: true)
        case .unix(let path): addresses = [try SocketAddress.local(path: path)]
        case .rpcbind: preconditionFailure("resolved before")
        }
        // A stream tries each address in turn within one connect timeout ("localhost" may
        // resolve to ::1 first while the server listens on 127.0.0.1 only). A datagram
        // socket has no handshake to fail, so it takes the first address.
        let datagram = target.transport == .udp
        let deadline = ContinuousClock.now + connectTimeout
        var failure: RPCError?
        for address in datagram ? Array(addresses.prefix(1)) : addresses {
            do {
                try open(target, at: address, datagram: datagram, deadline: deadline)
                return
            } catch {
                failure = error
            }
        }
        throw failure ?? RPCError(status: .unknownHost, function: "getaddrinfo", context: "\(target): no address")
    }

    private func open(_ target: RPCEndpoint, at address: SocketAddress, datagram: Bool, deadline: ContinuousClock.Instant) throws(RPCError) {
        let fd = socket(address.family, Int32((datagram ? SOCK_DGRAM : SOCK_STREAM).rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", context: target.description) }
        var owned = true
        defer { if owned { close(fd) } }

        if !datagram {
            try connectWithTimeout(fd, address, target, deadline: deadline)
            if target.transport == .tcp {
                try SocketOptions.set(fd, Int32(IPPROTO_TCP), TCP_NODELAY, Int32(1), "TCP_NODELAY")
            }
        }
        // libtirpc copies the address out of the netbuf (clnt_vc_create and clnt_dg_create
        // both keep their own copy), so the buffer only has to live through the create call.
        var storage = address.storage
        let client: UnsafeMutablePointer<CLIENT>? = withUnsafeMutableBytes(of: &storage) { raw in
            var buffer = netbuf(maxlen: UInt32(address.length), len: UInt32(address.length), buf: raw.baseAddress)
            if datagram {
                // 64 KiB buffers: the default 8800 bytes would not hold a batch.
                return clnt_dg_create(fd, &buffer, rpcprog_t(program), rpcvers_t(version), 65_000, 65_000)
            } else {
                return clnt_vc_create(fd, &buffer, rpcprog_t(program), rpcvers_t(version), 0, 0)
            }
        }
        guard let client else {
            var code: Int32 = 0
            let status = CONCRPC_createerr(&code)
            throw RPCError(status: RPCStatus(status), errno: code, function: datagram ? "clnt_dg_create" : "clnt_vc_create",
                           context: "\(target) \(programDescription)")
        }
        var closeOnDestroy: Int32 = 1
        _ = CONCRPC_clnt_control(client, UInt32(CLSET_FD_CLOSE), &closeOnDestroy)
        owned = false
        handle = client
        descriptor = fd
        sendTimeout = nil
        connectedAddress = target.description
    }

    /// connect() bounded by `deadline`: non-blocking connect, then poll for writability.
    private func connectWithTimeout(
        _ fd: Int32, _ address: SocketAddress, _ target: RPCEndpoint, deadline: ContinuousClock.Instant
    ) throws(RPCError) {
        func failure(_ code: Int32) -> RPCError {
            RPCError(status: .cantConnect, errno: code, function: "connect", context: "\(target) \(programDescription)")
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if address.withSockaddr({ Glibc.connect(fd, $0, $1) }) != 0 {
            // EINPROGRESS: a TCP handshake under way. Anything else, including an AF_LOCAL
            // EAGAIN (the server's backlog is full), fails now: poll could not tell it apart
            // from success, and libtirpc would then connect again, blocking.
            guard errno == EINPROGRESS else { throw failure(errno) }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat {
                let remaining = max(deadline - ContinuousClock.now, .zero)
                ready = poll(&poller, 1, Int32(clamping: remaining.milliseconds))
            } while ready < 0 && errno == EINTR
            guard ready == 1 else { throw failure(ready == 0 ? ETIMEDOUT : errno) }
            var code: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size) == 0 else { throw failure(errno) }
            guard code == 0 else { throw failure(code) }
        }
        _ = fcntl(fd, F_SETFL, flags)
    }
}
