import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC

/// A failed report: the call failed, or the values broke a protocol bound before anything was sent.
public enum CollectorError: Error, Sendable, Equatable, CustomStringConvertible {
    case rpc(RPCError)
    case invalid(EventError)
    /// The collector does not serve a version this operation needs.
    case unsupported(String)

    public var description: String {
        switch self {
        case .rpc(let error): error.description
        case .invalid(let error): "invalid report: \(error)"
        case .unsupported(let text): text
        }
    }

    /// The same report may succeed later: the transport failed, not the report or the program.
    public var isRetryable: Bool {
        guard case .rpc(let error) = self else { return false }
        switch error.status {
        case .programUnavailable, .programVersionMismatch, .procedureUnavailable, .cantEncodeArguments,
             .authenticationError:
            return false
        default:
            return true
        }
    }
}

/// A typed client for an AuthRelay collector (or a legacy C collector of the same `.x`).
///
/// Not `Sendable`, like the `RPCClient`s inside it: one per thread.
public final class CollectorClient {
    public let endpoint: RPCEndpoint
    public let program: UInt32
    private let v1: RPCClient
    private let v2: RPCClient
    private let arena = WireArena()
    /// The version `negotiate()` found; nil before.
    public private(set) var version: ProtocolVersion?

    public init(
        endpoint: RPCEndpoint, program: UInt32 = AuthRelayProgram.program,
        timeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(2)
    ) {
        self.endpoint = endpoint
        self.program = program
        v1 = RPCClient(endpoint: endpoint, program: program, version: 1, timeout: timeout, connectTimeout: connectTimeout)
        v2 = RPCClient(endpoint: endpoint, program: program, version: 2, timeout: timeout, connectTimeout: connectTimeout)
    }

    /// The per-call timeout of both versions.
    public var timeout: Duration {
        get { v2.timeout }
        set {
            v1.timeout = newValue
            v2.timeout = newValue
        }
    }

    /// Finds the highest version the collector serves: version 2 when it answers,
    /// version 1 when it says it has only that (PROG_MISMATCH, or rpcbind has no
    /// version 2 registration).
    @discardableResult
    public func negotiate() throws(CollectorError) -> ProtocolVersion {
        do {
            try v2.ping()
            v1.disconnect()
            version = .v2
            return .v2
        } catch let error where error.status == .programVersionMismatch || error.status == .programNotRegistered {
            v2.disconnect()
            if let supported = error.supportedVersions, !supported.contains(1) {
                throw .unsupported("collector at \(endpoint) serves versions \(supported.lowerBound)...\(supported.upperBound); this client speaks 1...2")
            }
            try ping(version: .v1)
            return .v1
        } catch {
            throw .rpc(error)
        }
    }

    /// Closes both connections; the next call connects again.
    public func disconnect() {
        v1.disconnect()
        v2.disconnect()
    }

    /// Pings the negotiated version (version 2 before negotiation).
    public func ping() throws(CollectorError) {
        try ping(version: version ?? .v2)
    }

    /// Pings `version` and, when it answers, uses it from now on (no negotiation).
    public func ping(version: ProtocolVersion) throws(CollectorError) {
        try rpc { () throws(RPCError) in try (version == .v1 ? v1 : v2).ping() }
        self.version = version
    }

    /// Version 2: reports a batch. Checked against every bound before sending.
    public func report(_ batch: EventBatch, timeout: Duration? = nil) throws(CollectorError) -> BatchAck {
        try report(batch, eventFieldsChecked: false, timeout: timeout)
    }

    /// `eventFieldsChecked`: the caller already brought every event within bounds
    /// (the sender does, once per event), so only the header and numbering are checked here.
    package func report(_ batch: EventBatch, eventFieldsChecked: Bool, timeout: Duration?) throws(CollectorError) -> BatchAck {
        try valid { () throws(EventError) in try batch.validate(eventFields: !eventFieldsChecked) }
        return try rpc { () throws(RPCError) in
            try arena.withWire(batch) { (wire) throws(RPCError) -> BatchAck in
                try v2.call(AuthRelayProgram.reportBatchV2, &wire.pointee, encode: AuthRelayProgram.eventBatch,
                            decode: AuthRelayProgram.batchAck, as: ar_batch_ack.self, timeout: timeout) {
                    BatchAck(wire: $0.pointee)
                }
            }
        }
    }

    /// Version 1: reports one event. Checked against every bound before sending.
    public func report(_ event: Event, timeout: Duration? = nil) throws(CollectorError) -> Ack {
        try report(event, fieldsChecked: false, timeout: timeout)
    }

    /// `fieldsChecked`: the caller already brought the event within bounds.
    package func report(_ event: Event, fieldsChecked: Bool, timeout: Duration?) throws(CollectorError) -> Ack {
        if !fieldsChecked { try valid { () throws(EventError) in try event.validate() } }
        return try rpc { () throws(RPCError) in
            try arena.withWire(event) { (wire) throws(RPCError) -> Ack in
                try v1.call(AuthRelayProgram.reportEventV1, &wire.pointee, encode: AuthRelayProgram.event,
                            decode: AuthRelayProgram.ack, as: ar_ack.self, timeout: timeout) {
                    Ack(wire: $0.pointee)
                }
            }
        }
    }

    /// Version 1 one-way: buffers the event without waiting for a reply (libtirpc
    /// batching); `flushOneWay()` flushes. Stream transports only.
    public func reportOneWay(_ event: Event) throws(CollectorError) {
        try valid { () throws(EventError) in try event.validate() }
        try rpc { () throws(RPCError) in
            try arena.withWire(event) { (wire) throws(RPCError) in
                try v1.callOneWay(AuthRelayProgram.reportEventV1, &wire.pointee, encode: AuthRelayProgram.event)
            }
        }
    }

    /// Flushes one-way calls buffered by `reportOneWay` with a version 1 NULL call.
    public func flushOneWay() throws(CollectorError) {
        try rpc { () throws(RPCError) in try v1.ping() }
    }

    /// Version 2: the collector's counters.
    public func stats(timeout: Duration? = nil) throws(CollectorError) -> CollectorStats {
        var nothing: Int32 = 0
        return try rpc { () throws(RPCError) in
            try v2.call(AuthRelayProgram.getStatsV2, &nothing, encode: .void, decode: AuthRelayProgram.stats,
                        as: ar_stats.self, timeout: timeout) { CollectorStats(wire: $0.pointee) }
        }
    }

    private func rpc<T>(_ body: () throws(RPCError) -> T) throws(CollectorError) -> T {
        do {
            return try body()
        } catch {
            throw .rpc(error)
        }
    }

    private func valid(_ check: () throws(EventError) -> Void) throws(CollectorError) {
        do {
            try check()
        } catch {
            throw .invalid(error)
        }
    }
}
