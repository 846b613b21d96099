import CONCRPC
import CTIRPC
import Glibc
import SystemSupport

/// A typed ONC RPC client for one program and version at one endpoint.
///
/// One handle per thread: libtirpc serializes calls on a CLIENT for the whole
/// round trip, so a shared client would make one thread wait for another's
/// reply. `RPCClient` is therefore not `Sendable`; give each thread its own.
///
/// The process must ignore SIGPIPE: libtirpc writes with plain write(), so a
/// server that goes away mid-call would otherwise kill it. That is a
/// process-wide setting, which a library does not make: executables call
/// `ProcessSettings.ignoreBrokenPipe()` at start.
///
/// It handles libtirpc's other traps itself:
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
    /// The handle's socket, owned by the handle (CLSET_FD_CLOSE): borrowed to set options.
    private var descriptor: Int32 = -1
    private var sendTimeout: Duration?
    /// The last call timeout and its timeval: `Duration.components` divides a
    /// 128-bit value (about 190 instructions), which every call paid again for
    /// the same timeout. Zero is its own timeval, so no "none yet" state is needed.
    private var cachedTimeout: Duration = .zero
    private var cachedTimeval = timeval(tv_sec: 0, tv_usec: 0)
    /// Where a call's reply is decoded, reused from call to call (a client makes
    /// one call at a time). `withUnsafeTemporaryAllocation` with a typed-throws
    /// body, generic over the reply type, instantiated Swift.Result's metadata and
    /// moved an enum on every call: about 400 instructions, a tenth of a call.
    private var resultStorage: UnsafeMutableRawPointer
    private var resultCapacity: Int
    private static let resultAlignment = 16
    /// Where the handle is connected, as "tcp 127.0.0.1:4000" or "unix /run/x.sock".
    public private(set) var connectedAddress: String?

    public init(
        endpoint: RPCEndpoint, program: UInt32, version: UInt32,
        timeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(2)
    ) {
        self.endpoint = endpoint
        self.program = program
        self.version = version
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        // Every reply of the AuthRelay program and rpcbind fits; a larger one regrows it.
        resultCapacity = 256
        resultStorage = .allocate(byteCount: resultCapacity, alignment: Self.resultAlignment)
    }

    deinit {
        disconnect()
        resultStorage.deallocate()
    }

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
    /// allocated, on every path. `body` must not call this client again: the
    /// reply lives in the client's one result buffer until `body` returns.
    public func call<Argument, Result, Value>(
        _ procedure: UInt32, _ argument: inout Argument, encode: XDRRoutine,
        decode: XDRRoutine, as resultType: Result.Type, timeout: Duration? = nil,
        _ body: (UnsafePointer<Result>) -> Value
    ) throws(RPCError) -> Value {
        let timeout = timeout ?? self.timeout
        let handle = try prepare(timeout: timeout)
        let wait = callTimeval(for: timeout)
        let result = resultBuffer(for: Result.self)
        // xdr_free, not clnt_freeres: a failed call may already have destroyed the
        // handle (check() disconnects on a lost connection or a UDP timeout).
        defer { CONCRPC_xdr_free(decode.routine, result) }
        let status = withUnsafeMutablePointer(to: &argument) { argumentPointer in
            CONCRPC_clnt_call(handle, rpcproc_t(procedure), encode.routine, argumentPointer, decode.routine, result, wait)
        }
        try check(status, procedure: procedure)
        return body(result)
    }

    /// The result buffer, zeroed (the decoder allocates into NULL pointers) and bound to `Result`.
    private func resultBuffer<Result>(for type: Result.Type) -> UnsafeMutablePointer<Result> {
        precondition(MemoryLayout<Result>.alignment <= Self.resultAlignment, "reply type \(Result.self) needs a larger alignment")
        let size = MemoryLayout<Result>.size
        if size > resultCapacity {
            resultStorage.deallocate()
            resultCapacity = size
            resultStorage = .allocate(byteCount: size, alignment: Self.resultAlignment)
        }
        resultStorage.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        return resultStorage.bindMemory(to: Result.self, capacity: 1)
    }

    /// `timeout` as libtirpc's timeval, converted again only when it changes.
    private func callTimeval(for timeout: Duration) -> timeval {
        if timeout != cachedTimeout {
            cachedTimeval = timeout.rpcTimeval
            cachedTimeout = timeout
        }
        return cachedTimeval
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
            do {
                try FileDescriptor.borrowing(descriptor) { (socket) throws(SystemError) in try socket.setSendTimeout(timeout / 4) }
            } catch {
                throw .system(error)
            }
            sendTimeout = timeout
        }
        if endpoint.transport == .udp, sendTimeout != timeout {
            // clnt_dg retransmits every "retry timeout"; make it the call timeout
            // so one call is one datagram (delivery is at-least-once either way).
            var wait = timeout.rpcTimeval
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
        // After a timeout the handle is not trusted again: over UDP it never
        // recovers (clnt_dg), and over a stream the late reply is still on its
        // way; under load a stream whose batch timed out while the collector
        // was stopped was seen answering none of the next calls (SenderFaultTests).
        // A new connection costs one connect; the timed-out call may still have
        // been executed (at-least-once: the collector removes the duplicate).
        if rpcStatus.losesConnection || rpcStatus == .timedOut {
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
        do {
            switch target {
            case .tcp(let host, let port): addresses = try SocketAddress.resolve(host: host, port: port, datagram: false)
            case .udp(let host, let port): addresses = try SocketAddress.resolve(host: host, port: port, datagram: true)
            case .unix(let path): addresses = [try SocketAddress.unix(path: path)]
            case .rpcbind: preconditionFailure("resolved before")
            }
        } catch {
            // getaddrinfo found nothing, or a unix path does not fit sockaddr_un (ENAMETOOLONG).
            throw .system(error, status: target.transport == .local ? .unknownAddress : .unknownHost)
        }
        // A stream tries each address in turn within one connect timeout ("localhost" may
        // resolve to ::1 first while the server listens on 127.0.0.1 only). A datagram
        // socket has no handshake to fail, so it takes the first address.
        let datagram = target.transport == .udp
        let deadline = SystemClock.deadline(after: connectTimeout)
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

    private func open(_ target: RPCEndpoint, at address: SocketAddress, datagram: Bool, deadline: UInt64) throws(RPCError) {
        let socket: FileDescriptor
        do {
            socket = try FileDescriptor.socket(family: address.family, datagram ? .datagram : .stream)
        } catch {
            throw .system(error, context: target.description)
        }
        if !datagram {
            do {
                // Non-blocking connect, poll, SO_ERROR. Only EINPROGRESS (a TCP handshake under
                // way) waits: anything else, including an AF_LOCAL EAGAIN (the server's backlog is
                // full), fails now, since poll could not tell it apart from success and libtirpc
                // would then connect again, blocking.
                try socket.connect(to: address, timeout: SystemClock.remaining(until: deadline))
            } catch {
                throw .system(error, status: .cantConnect, context: "\(target) \(programDescription)")
            }
            if target.transport == .tcp {
                do { try socket.setNoDelay() } catch { throw .system(error) }
            }
        }
        // libtirpc copies the address out of the netbuf (clnt_vc_create and clnt_dg_create
        // both keep their own copy), so the buffer only has to live through the create call.
        var storage = address.storage
        let fd = socket.rawValue
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
        // From here the handle owns the socket: clnt_destroy closes it.
        var closeOnDestroy: Int32 = 1
        _ = CONCRPC_clnt_control(client, UInt32(CLSET_FD_CLOSE), &closeOnDestroy)
        handle = client
        descriptor = socket.releaseOwnership()
        sendTimeout = nil
        connectedAddress = target.description
    }
}

extension Duration {
    /// The duration as the struct timeval libtirpc's calls take. Swift imports that
    /// C type once per module that includes it (CTIRPC's is not CSystemSupport's),
    /// so SystemSupport's `timeval(Duration)` does not apply here.
    var rpcTimeval: timeval {
        let (seconds, attoseconds) = components
        return timeval(tv_sec: Int(max(seconds, 0)), tv_usec: Int(max(attoseconds, 0) / 1_000_000_000_000))
    }
}
