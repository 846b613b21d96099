import CAuthRelayRPC
import ONCRPC

/// A large call argument: an rpcgen `ar_event_batch` of 512 events whose two paths
/// are 4 KiB each (about 4.2 MB of XDR), all pointing into one shared C buffer.
/// (`xdr_wrapstring` cannot carry it: libtirpc bounds it to RPC_MAXDATASIZE, 9000 bytes.)
final class LargeArgument {
    static let routine = XDRRoutine(CAuthRelayRPC_xdr_ar_event_batch)

    private let path: UnsafeMutablePointer<CChar>
    private let events: UnsafeMutableBufferPointer<ar_event>
    var batch = ar_event_batch()

    init(events count: Int = 512, pathBytes: Int = 4096) {
        path = .allocate(capacity: pathBytes + 1)
        path.initialize(repeating: 0x61, count: pathBytes)
        path[0] = 0x2f
        path[pathBytes] = 0
        events = .allocate(capacity: count)
        for index in 0..<count {
            var event = ar_event()
            event.seq = u_quad_t(index + 1)
            event.kind = AR_KIND_OPEN
            event.exe_path = path
            event.target_path = path
            events[index] = event
        }
        batch.header.agent_id = path + pathBytes  // ""
        batch.header.boot_id = path + pathBytes
        batch.header.first_seq = 1
        batch.events.events_len = u_int(count)
        batch.events.events_val = events.baseAddress
    }

    deinit {
        path.deallocate()
        events.deallocate()
    }

    /// Bytes on the wire.
    var encodedSize: Int {
        Int(withUnsafeMutablePointer(to: &batch) { pointer in
            Self.routine.encode(&pointer.pointee)?.count ?? 0
        })
    }

    /// Calls `procedure` with the batch and a void result.
    func send(_ client: RPCClient, procedure: UInt32 = 1, timeout: Duration? = nil) throws(RPCError) {
        try client.call(procedure, &batch, encode: Self.routine, decode: .void, as: Int32.self, timeout: timeout) { _ in () }
    }

    /// Sends the batch as a one-way (buffered) call.
    func sendOneWay(_ client: RPCClient, procedure: UInt32 = 1) throws(RPCError) {
        try client.callOneWay(procedure, &batch, encode: Self.routine)
    }
}
