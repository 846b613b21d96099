import AuthRelay
import AuthRelayProtocol
import ONCRPC
import SystemSupport

/// The event every scenario sends: the same fields legacy-reporter fills in
/// (exe /usr/bin/cat, target /tmp/legacy/file-N, a 32-byte digest), so the Swift
/// and C clients put the same bytes on the wire.
enum BenchmarkEvent {
    static let executablePath = "/usr/bin/cat"
    static let digestBytes = 32
    private static let identity = ProcessIdentity.current

    /// Event number `index` (0-based) with sequence `sequence`.
    static func make(index: UInt64, sequence: UInt64) -> Event {
        Event(
            sequence: sequence, timestampNanoseconds: Timestamps.realtime(),
            kind: index % 2 == 0 ? .open : .exec, verdict: index % 7 == 6 ? .deny : .allow,
            decisionNanoseconds: 1000 + index, pid: identity.pid, ppid: identity.ppid,
            uid: identity.uid, gid: identity.gid, executablePath: executablePath,
            targetPath: "/tmp/legacy/file-\(index)",
            digest: (0..<UInt64(digestBytes)).map { UInt8(truncatingIfNeeded: index &+ $0) })
    }

    /// XDR bytes of a typical event (index 1000): the raw floor's payload size.
    static var encodedSize: Int { make(index: 1000, sequence: 1).encodedSize }
}

extension BenchmarkEvent {
    /// The XDR bytes of events 0..<count (sequence index + 1), as ONC RPC puts
    /// each on the wire: what the shared-memory ring carries, so every IPC moves
    /// the same bytes. Encoded before any clock starts.
    static func encoded(count: Int) -> [[UInt8]] {
        let arena = WireArena(eventCapacity: 1)
        return (0..<UInt64(count)).map { index in
            arena.withWire(make(index: index, sequence: index + 1)) { AuthRelayProgram.event.encode(&$0.pointee) } ?? []
        }
    }
}
