import CONCRPC
import CTIRPC
import SystemSupport

/// libtirpc's `enum clnt_stat`, as Swift.
public enum RPCStatus: Int32, Sendable, CaseIterable {
    case success = 0
    case cantEncodeArguments = 1
    case cantDecodeResult = 2
    case cantSend = 3
    case cantReceive = 4
    case timedOut = 5
    case versionMismatch = 6
    case authenticationError = 7
    case programUnavailable = 8
    case programVersionMismatch = 9
    case procedureUnavailable = 10
    case cantDecodeArguments = 11
    case systemError = 12
    case unknownHost = 13
    case rpcbindFailure = 14
    case programNotRegistered = 15
    case failed = 16
    case unknownProtocol = 17
    case interrupted = 18
    case unknownAddress = 19
    case tliError = 20
    case noBroadcast = 21
    case n2aTranslationFailure = 22
    case udError = 23
    case inProgress = 24
    case staleRACHandle = 25
    case cantConnect = 26
    case transportFailed = 27
    case cantCreateStream = 28

    init(_ status: clnt_stat) {
        self = RPCStatus(rawValue: Int32(bitPattern: status.rawValue)) ?? .failed
    }

    /// The C name, as libtirpc's headers spell it, for logs that are grepped.
    public var cName: String {
        switch self {
        case .success: "RPC_SUCCESS"
        case .cantEncodeArguments: "RPC_CANTENCODEARGS"
        case .cantDecodeResult: "RPC_CANTDECODERES"
        case .cantSend: "RPC_CANTSEND"
        case .cantReceive: "RPC_CANTRECV"
        case .timedOut: "RPC_TIMEDOUT"
        case .versionMismatch: "RPC_VERSMISMATCH"
        case .authenticationError: "RPC_AUTHERROR"
        case .programUnavailable: "RPC_PROGUNAVAIL"
        case .programVersionMismatch: "RPC_PROGVERSMISMATCH"
        case .procedureUnavailable: "RPC_PROCUNAVAIL"
        case .cantDecodeArguments: "RPC_CANTDECODEARGS"
        case .systemError: "RPC_SYSTEMERROR"
        case .unknownHost: "RPC_UNKNOWNHOST"
        case .rpcbindFailure: "RPC_RPCBFAILURE"
        case .programNotRegistered: "RPC_PROGNOTREGISTERED"
        case .failed: "RPC_FAILED"
        case .unknownProtocol: "RPC_UNKNOWNPROTO"
        case .interrupted: "RPC_INTR"
        case .unknownAddress: "RPC_UNKNOWNADDR"
        case .tliError: "RPC_TLIERROR"
        case .noBroadcast: "RPC_NOBROADCAST"
        case .n2aTranslationFailure: "RPC_N2AXLATEFAILURE"
        case .udError: "RPC_UDERROR"
        case .inProgress: "RPC_INPROGRESS"
        case .staleRACHandle: "RPC_STALERACHANDLE"
        case .cantConnect: "RPC_CANTCONNECT"
        case .transportFailed: "RPC_XPRTFAILED"
        case .cantCreateStream: "RPC_CANTCREATESTREAM"
        }
    }

    /// libtirpc's own text for the status (a static string, not its shared error buffer).
    /// libtirpc has no text for the statuses it took from Solaris and never returns
    /// (RPC_CANTCONNECT among them, which this layer uses): those get Solaris's words.
    public var text: String {
        switch self {
        case .interrupted: "RPC: Interrupted"
        case .unknownAddress: "RPC: Remote address unknown"
        case .tliError: "RPC: Miscellaneous tli error"
        case .noBroadcast: "RPC: Broadcasting not supported"
        case .n2aTranslationFailure: "RPC: Name to address translation failed"
        case .udError: "RPC: Unitdata error"
        case .inProgress: "RPC: RPC in progress"
        case .staleRACHandle: "RPC: Stale RAC handle"
        case .cantConnect: "RPC: Couldn't make connection"
        case .transportFailed: "RPC: Received disconnect from remote"
        case .cantCreateStream: "RPC: Can't push RPC module"
        default: String(cString: clnt_sperrno(clnt_stat(UInt32(bitPattern: rawValue))))
        }
    }

    /// After this status the transport cannot be trusted: the stream may be out of
    /// step or closed. The client drops its handle and connects again on the next call.
    var losesConnection: Bool {
        switch self {
        case .cantSend, .cantReceive, .transportFailed, .cantConnect, .cantCreateStream: true
        default: false
        }
    }
}

/// A failed ONC RPC operation: what failed, libtirpc's status, and the OS error behind it.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libtirpc's status; `.systemError` for failures of the OS calls this layer makes itself.
    public var status: RPCStatus
    /// The errno behind the failure, 0 when there is none.
    public var errno: Int32
    /// The C function (or layer operation) that failed, e.g. "clnt_call" or "connect".
    public var function: String
    /// Where: transport, address, program, version and procedure.
    public var context: String
    /// The versions the server supports, on `.programVersionMismatch`.
    public var supportedVersions: ClosedRange<UInt32>?

    public init(
        status: RPCStatus, errno: Int32 = 0, function: String, context: String = "",
        supportedVersions: ClosedRange<UInt32>? = nil
    ) {
        self.status = status
        self.errno = errno
        self.function = function
        self.context = context
        self.supportedVersions = supportedVersions
    }

    /// True when the connection is gone (peer closed, reset, send failed): the
    /// client will connect again on its next call.
    public var isConnectionLost: Bool { status.losesConnection }

    public var description: String {
        var text = "\(function) failed: \(status.cName) (\(status.text))"
        if let versions = supportedVersions {
            text += ", server supports versions \(versions.lowerBound)...\(versions.upperBound)"
        }
        if errno != 0 {
            text += ", errno \(errno) (\(SystemError(function: function, errno: errno).reason))"
        }
        if !context.isEmpty {
            text += " [\(context)]"
        }
        return text
    }

    /// A system call this layer made itself failed (socket, connect, setsockopt,
    /// building an address): its function and errno, under `status`. The context
    /// defaults to what the call was on (`path`, `detail`).
    static func system(_ error: SystemError, status: RPCStatus = .systemError, context: String? = nil) -> RPCError {
        RPCError(status: status, errno: error.errno, function: error.function,
                 context: context ?? [error.path, error.detail].compactMap { $0 }.joined(separator: ": "))
    }
}
