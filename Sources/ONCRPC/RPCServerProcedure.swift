import SystemSupport

/// The kernel's record of who is at the other end of an AF_LOCAL connection
/// (SO_PEERCRED): taken at connect(), so it cannot be forged by the caller.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    init(_ identity: PeerIdentity) {
        self.init(pid: identity.pid, uid: identity.uid, gid: identity.gid)
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// One call as a handler sees it.
public struct RPCRequest: Sendable {
    public var transport: RPCTransport
    public var program: UInt32
    public var version: UInt32
    public var procedure: UInt32
    /// The caller's kernel credentials on AF_LOCAL; nil on TCP and UDP, where
    /// nothing trustworthy is known (an AUTH_SYS credential is only a claim).
    public var peer: PeerCredentials?

    public init(transport: RPCTransport, program: UInt32, version: UInt32, procedure: UInt32, peer: PeerCredentials? = nil) {
        self.transport = transport
        self.program = program
        self.version = version
        self.procedure = procedure
        self.peer = peer
    }
}

/// What the server sends back after a handler ran.
public enum RPCReply: Sendable {
    /// The result the handler filled in.
    case result
    /// SYSTEM_ERR: the server could not do the call for a reason of its own.
    case systemError
    /// GARBAGE_ARGS: the arguments decoded but make no sense to the handler.
    case garbageArguments
    /// AUTH_ERROR / AUTH_TOOWEAK: the caller is not allowed to make this call.
    case tooWeakAuthentication
    /// Nothing yet: the handler took the reply with `RPCDeferral.later()` and
    /// its `RPCCompletion` sends it (a deferrable procedure only; anywhere
    /// else, or without `later()`, it is answered SYSTEM_ERR).
    case deferred
}

/// One procedure of a program version: its XDR routines and its handler.
///
/// The handler gets the decoded argument and a zeroed result to fill. The
/// argument's memory belongs to the server and is freed (xdr_free) after the
/// reply is encoded; anything the result points to stays the handler's (the
/// server does not xdr_free results): it only has to live until the handler's
/// caller has encoded the reply, i.e. until the next call.
public struct RPCProcedure {
    public let number: UInt32
    let argument: XDRRoutine
    let result: XDRRoutine
    let argumentSize: Int
    let resultSize: Int
    let handler: (RPCRequest, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> RPCReply
    /// Set for a procedure that may answer later (`init(deferrable:...)`); `handler` is then unused.
    let deferrableHandler: ((RPCRequest, UnsafeMutableRawPointer, UnsafeMutableRawPointer, RPCDeferral) -> RPCReply)?
    /// Makes a decoder for an argument that arrives over several reads (one per connection).
    let makeIncrementalDecoder: (() -> RPCIncrementalDecoder)?

    /// A procedure over rpcgen C types: `Argument` and `Result` are the structs
    /// that `argument` and `result` decode and encode. `incremental`, when given,
    /// makes decoders that decode an `Argument` while its record is still arriving.
    public init<Argument, Result>(
        _ number: UInt32, argument: XDRRoutine, _ argumentType: Argument.Type,
        result: XDRRoutine, _ resultType: Result.Type,
        incremental: (() -> RPCIncrementalDecoder)? = nil,
        handler: @escaping (RPCRequest, UnsafePointer<Argument>, UnsafeMutablePointer<Result>) -> RPCReply
    ) {
        self.number = number
        self.argument = argument
        self.result = result
        makeIncrementalDecoder = incremental
        argumentSize = MemoryLayout<Argument>.size
        resultSize = MemoryLayout<Result>.size
        self.handler = { request, argumentPointer, resultPointer in
            handler(request, UnsafePointer(argumentPointer.assumingMemoryBound(to: Argument.self)),
                    resultPointer.assumingMemoryBound(to: Result.self))
        }
        deferrableHandler = nil
    }

    /// A procedure that may answer later, from another thread: its handler
    /// either fills the result and returns as any handler does, or calls
    /// `deferral.later()`, keeps the `RPCCompletion` (with what it needs of the
    /// argument: the argument is freed when the handler returns) and returns
    /// `.deferred`. The reply is written when the completion is completed.
    /// The server then does not read that connection again until its deferred
    /// replies are out (`Configuration.maxDeferredRepliesPerConnection`).
    public init<Argument, Result>(
        deferrable number: UInt32, argument: XDRRoutine, _ argumentType: Argument.Type,
        result: XDRRoutine, _ resultType: Result.Type,
        incremental: (() -> RPCIncrementalDecoder)? = nil,
        handler: @escaping (RPCRequest, UnsafePointer<Argument>, UnsafeMutablePointer<Result>, RPCDeferral) -> RPCReply
    ) {
        self.number = number
        self.argument = argument
        self.result = result
        makeIncrementalDecoder = incremental
        argumentSize = MemoryLayout<Argument>.size
        resultSize = MemoryLayout<Result>.size
        self.handler = { _, _, _ in .systemError }
        deferrableHandler = { request, argumentPointer, resultPointer, deferral in
            handler(request, UnsafePointer(argumentPointer.assumingMemoryBound(to: Argument.self)),
                    resultPointer.assumingMemoryBound(to: Result.self), deferral)
        }
    }

    /// A deferrable procedure with no argument (see `init(deferrable:argument:...)`).
    public init<Result>(
        deferrable number: UInt32, result: XDRRoutine, _ resultType: Result.Type,
        handler: @escaping (RPCRequest, UnsafeMutablePointer<Result>, RPCDeferral) -> RPCReply
    ) {
        self.init(deferrable: number, argument: .void, Int32.self, result: result, resultType) { request, _, result, deferral in
            handler(request, result, deferral)
        }
    }

    /// A procedure with no argument that fills a `Result`.
    public init<Result>(
        _ number: UInt32, result: XDRRoutine, _ resultType: Result.Type,
        handler: @escaping (RPCRequest, UnsafeMutablePointer<Result>) -> RPCReply
    ) {
        self.init(number, argument: .void, Int32.self, result: result, resultType) { request, _, resultPointer in
            handler(request, resultPointer)
        }
    }

    /// Procedure 0 by convention: no argument, no result, answers at once.
    public static func null(_ number: UInt32 = 0) -> RPCProcedure {
        RPCProcedure(number, argument: .void, Int32.self, result: .void, Int32.self) { _, _, _ in .result }
    }
}

/// One version of one program, as the server dispatches it.
public struct RPCProgram {
    public let program: UInt32
    public let version: UInt32
    public let procedures: [RPCProcedure]

    public init(program: UInt32, version: UInt32, procedures: [RPCProcedure]) {
        self.program = program
        self.version = version
        self.procedures = procedures
    }
}
