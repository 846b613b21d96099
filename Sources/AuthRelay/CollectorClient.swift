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
    private let v3: RPCClient
    private let arena = WireArena()
    /// Events are encoded straight to XDR here (`EventXDR`) and copied into the
    /// record as they are, not laid out as rpcgen structs and encoded field by
    /// field through libtirpc. Reused from call to call; grows to the largest batch.
    /// A raw buffer, not ONCRPC's ByteBuffer: called across the module boundary
    /// its accessors cost about 450 instructions a call (callgrind, one call per event).
    private var encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
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
        v3 = RPCClient(endpoint: endpoint, program: program, version: 3, timeout: timeout, connectTimeout: connectTimeout)
    }

    deinit { encoded.deallocate() }

    /// The per-call timeout of every version.
    public var timeout: Duration {
        get { v2.timeout }
        set {
            for client in [v1, v2, v3] { client.timeout = newValue }
        }
    }

    private func client(_ version: ProtocolVersion) -> RPCClient {
        switch version {
        case .v1: v1
        case .v2: v2
        case .v3: v3
        }
    }

    /// Finds the highest version the collector serves, up to `highest`: each
    /// version from the top answers, or says which it has (PROG_MISMATCH), or
    /// rpcbind has no registration of it, and the next one down is tried.
    @discardableResult
    public func negotiate(upTo highest: ProtocolVersion = .v2) throws(CollectorError) -> ProtocolVersion {
        var candidate = highest
        while true {
            do {
                try client(candidate).ping()
                for other in [ProtocolVersion.v1, .v2, .v3] where other != candidate { client(other).disconnect() }
                version = candidate
                return candidate
            } catch let error where error.status == .programVersionMismatch || error.status == .programNotRegistered {
                client(candidate).disconnect()
                var next = ProtocolVersion(rawValue: candidate.rawValue - 1)
                if let supported = error.supportedVersions {
                    // Straight to the highest it serves below this one, when it said.
                    let served = min(supported.upperBound, candidate.rawValue - 1)
                    next = supported.lowerBound <= served ? ProtocolVersion(rawValue: served) : nil
                }
                guard let next else {
                    let served = error.supportedVersions.map { "versions \($0.lowerBound)...\($0.upperBound)" } ?? "no version it was asked for"
                    throw .unsupported("collector at \(endpoint) serves \(served); this client speaks 1...\(highest.rawValue)")
                }
                candidate = next
            } catch {
                throw .rpc(error)
            }
        }
    }

    /// Closes every connection; the next call connects again.
    public func disconnect() {
        for client in [v1, v2, v3] { client.disconnect() }
    }

    /// Pings the negotiated version (version 2 before negotiation).
    public func ping() throws(CollectorError) {
        try ping(version: version ?? .v2)
    }

    /// Pings `version` and, when it answers, uses it from now on (no negotiation).
    public func ping(version: ProtocolVersion) throws(CollectorError) {
        try rpc { () throws(RPCError) in try client(version).ping() }
        self.version = version
    }

    /// NULL of `version` with its own timeout: is the collector answering now?
    package func ping(version: ProtocolVersion, timeout: Duration) throws(CollectorError) {
        try rpc { () throws(RPCError) in try client(version).ping(timeout: timeout) }
    }

    /// Version 2 or 3: reports a batch of pre-encoded events (the caller
    /// numbered and bounded them). Version 2 carries no loss range: the caller
    /// sends it none (a version 2 collector sees the range as a sequence gap).
    package func report(encoded batch: EncodedBatch, version: ProtocolVersion, timeout: Duration?) throws(CollectorError) -> BatchAck {
        precondition(version != .v1 && (version == .v3 || batch.losses.isEmpty), "version \(version) cannot carry this batch")
        try valid { () throws(EventError) in
            try Event.checkString(batch.agentID, field: "agent_id", limit: Event.maxIDBytes)
            try Event.checkString(batch.bootID, field: "boot_id", limit: Event.maxIDBytes)
            if batch.eventCount > Event.maxBatchEvents { throw .tooManyEvents(count: batch.eventCount, limit: Event.maxBatchEvents) }
        }
        let procedure = version == .v3 ? AuthRelayProgram.reportBatchV3 : AuthRelayProgram.reportBatchV2
        return try rpc { () throws(RPCError) in
            try PassThroughWire.withBatch(batch, version: version) { (argument, routine) throws(RPCError) -> BatchAck in
                try client(version).call(procedure, &argument, encode: routine, decode: AuthRelayProgram.batchAck,
                                         as: ar_batch_ack.self, timeout: timeout) { BatchAck(wire: $0.pointee) }
            }
        }
    }

    /// Version 1: reports one pre-encoded event.
    package func report(encodedEvent bytes: UnsafeRawBufferPointer, timeout: Duration?) throws(CollectorError) -> Ack {
        try rpc { () throws(RPCError) in
            try PassThroughWire.withEvent(bytes) { (argument, routine) throws(RPCError) -> Ack in
                try v1.call(AuthRelayProgram.reportEventV1, &argument, encode: routine, decode: AuthRelayProgram.ack,
                            as: ar_ack.self, timeout: timeout) { Ack(wire: $0.pointee) }
            }
        }
    }

    /// Version 3: tells the collector how a boot of this agent ended.
    public func reportBootEnd(_ report: BootEnd, timeout: Duration? = nil) throws(CollectorError) -> ReportStatus {
        try valid { () throws(EventError) in try report.validate() }
        return try rpc { () throws(RPCError) in
            try arena.withWire(report) { (wire) throws(RPCError) -> ReportStatus in
                try v3.call(AuthRelayProgram.reportBootEndV3, &wire.pointee, encode: AuthRelayProgram.bootEnd,
                            decode: AuthRelayProgram.status, as: ar_status.self, timeout: timeout) {
                    ReportStatus(rawValue: $0.pointee.rawValue)
                }
            }
        }
    }

    /// Version 2: reports a batch. Checked against every bound before sending.
    public func report(_ batch: EventBatch, timeout: Duration? = nil) throws(CollectorError) -> BatchAck {
        try report(batch, eventFieldsChecked: false, timeout: timeout)
    }

    /// `eventFieldsChecked`: the caller already brought every event within bounds
    /// (the sender does, once per event), so only the header and numbering are checked here.
    package func report(_ batch: EventBatch, eventFieldsChecked: Bool, timeout: Duration?) throws(CollectorError) -> BatchAck {
        try valid { () throws(EventError) in try batch.validate(eventFields: !eventFieldsChecked) }
        var header = EncodedBatch(agentID: batch.header.agentID, bootID: batch.header.bootID, firstSequence: batch.header.firstSequence)
        header.dropped = batch.header.dropped
        header.eventCount = batch.events.count
        let events = encode(batch.events)
        return try rpc { () throws(RPCError) in
            try PassThroughWire.withBatch(header, events: events, version: .v2) { (argument, routine) throws(RPCError) -> BatchAck in
                try v2.call(AuthRelayProgram.reportBatchV2, &argument, encode: routine, decode: AuthRelayProgram.batchAck,
                            as: ar_batch_ack.self, timeout: timeout) { BatchAck(wire: $0.pointee) }
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
        return try report(encodedEvent: encode(event), timeout: timeout)
    }

    /// Version 1 one-way: buffers the event without waiting for a reply (libtirpc
    /// batching); `flushOneWay()` flushes. Stream transports only.
    public func reportOneWay(_ event: Event) throws(CollectorError) {
        try valid { () throws(EventError) in try event.validate() }
        let bytes = encode(event)
        try rpc { () throws(RPCError) in
            try PassThroughWire.withEvent(bytes) { (argument, routine) throws(RPCError) in
                try v1.callOneWay(AuthRelayProgram.reportEventV1, &argument, encode: routine)
            }
        }
    }

    /// `event` (within bounds) as XDR in `encoded`; valid until the next call.
    private func encode(_ event: Event) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: encoded[..<EventXDR.encode(event, to: encoded.baseAddress!)])
    }

    /// `events` (within bounds) as XDR, one after another, in `encoded`; valid until the next call.
    private func encode(_ events: [Event]) -> UnsafeRawBufferPointer {
        var used = 0
        for index in events.indices {
            if encoded.count - used < EventXDR.maxEventBytes {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: encoded.count * 2, alignment: 8)
                larger.copyMemory(from: UnsafeRawBufferPointer(rebasing: encoded[..<used]))
                encoded.deallocate()
                encoded = larger
            }
            used += EventXDR.encode(events[index], to: encoded.baseAddress! + used)
        }
        return UnsafeRawBufferPointer(rebasing: encoded[..<used])
    }

    /// Flushes one-way calls buffered by `reportOneWay` with a version 1 NULL call.
    public func flushOneWay() throws(CollectorError) {
        try rpc { () throws(RPCError) in try v1.ping() }
    }

    /// The collector's counters: version 3's GET_STATS when the collector
    /// serves it (with what only version 3 carries, `version3`: loss, boot and
    /// connection counters and each agent run's view), else version 2's
    /// (`version3` nil). What `authrelay stats` prints.
    public func stats(timeout: Duration? = nil) throws(CollectorError) -> CollectorStats {
        var nothing: Int32 = 0
        do {
            return try v3.call(AuthRelayProgram.getStatsV3, &nothing, encode: .void, decode: AuthRelayProgram.statsV3,
                               as: ar3_stats.self, timeout: timeout) { CollectorStats(wire: $0.pointee) }
        } catch where Self.mayServeVersion2(error) {
            v3.disconnect()
        } catch {
            throw .rpc(error)
        }
        return try rpc { () throws(RPCError) in
            try v2.call(AuthRelayProgram.getStatsV2, &nothing, encode: .void, decode: AuthRelayProgram.stats,
                        as: ar_stats.self, timeout: timeout) { CollectorStats(wire: $0.pointee) }
        }
    }

    /// Version 3 was refused in a way that leaves version 2 possible: the
    /// collector said it serves it (PROG_MISMATCH), or rpcbind has no version 3.
    private static func mayServeVersion2(_ error: RPCError) -> Bool {
        switch error.status {
        case .programVersionMismatch: error.supportedVersions?.contains(2) ?? true
        case .programNotRegistered: true
        default: false
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

/// The name the collector's tests read counters with: `CollectorClient.stats()`
/// is the one stats client (version 3, else version 2).
package typealias CollectorStatsClient = CollectorClient
