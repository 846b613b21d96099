import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC

/// Reads a collector's counters: version 3 GET_STATS (the counters version 2
/// cannot carry, and each agent run's view) when the collector serves it,
/// else version 2's. What `authrelay stats` uses.
///
/// Not `Sendable`, like the `RPCClient`s inside it: one per thread.
package final class CollectorStatsClient {
    package let endpoint: RPCEndpoint
    private let v3: RPCClient
    private let v2: RPCClient
    /// The version that answered the last `stats()` (3 or 2); nil before.
    package private(set) var version: UInt32?

    package init(endpoint: RPCEndpoint, program: UInt32 = AuthRelayProgram.program,
                 timeout: Duration = .seconds(2), connectTimeout: Duration = .seconds(2)) {
        self.endpoint = endpoint
        v3 = RPCClient(endpoint: endpoint, program: program, version: 3, timeout: timeout, connectTimeout: connectTimeout)
        v2 = RPCClient(endpoint: endpoint, program: program, version: 2, timeout: timeout, connectTimeout: connectTimeout)
    }

    /// Version 3's GET_STATS, or version 2's when the collector answers
    /// PROG_MISMATCH or rpcbind has no version 3 registration (`version3` is then nil).
    package func stats() throws(CollectorError) -> CollectorStats {
        var nothing: Int32 = 0
        do {
            let stats = try v3.call(AuthRelayProgram.getStatsV3, &nothing, encode: .void, decode: AuthRelayProgram.statsV3,
                                    as: ar3_stats.self) { CollectorStats(wire: $0.pointee) }
            version = 3
            return stats
        } catch where error.status == .programVersionMismatch || error.status == .programNotRegistered {
            v3.disconnect()
        } catch {
            throw .rpc(error)
        }
        do {
            let stats = try v2.call(AuthRelayProgram.getStatsV2, &nothing, encode: .void, decode: AuthRelayProgram.stats,
                                    as: ar_stats.self) { CollectorStats(wire: $0.pointee) }
            version = 2
            return stats
        } catch {
            throw .rpc(error)
        }
    }
}
