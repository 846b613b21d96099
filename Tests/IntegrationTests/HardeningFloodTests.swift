import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import Synchronization
import SystemSupport
import TestSupport
import Testing

/// Issue 11, item 2: a full connection table closes the least recently active
/// connection (libtirpc 1.3.2's rule) instead of refusing the new one, so an
/// idle flood cannot lock clients out, and an agent that keeps sending is
/// never the one closed.
@Suite("authrelayd hardening: connection floods", .serialized, .timeLimit(.minutes(3)))
struct HardeningFloodTests {
    init() { TestProcess.prepare() }

    /// An agent on one connection that keeps sending batches (every 10 ms) and
    /// counts what was answered; the connection is never reopened, so a close
    /// by the server is a failure.
    final class SendingAgent: @unchecked Sendable {
        // @unchecked: the thread writes the counts, the test reads them after join().
        private let stopping = Atomic<Bool>(false)
        private(set) var answered = 0
        private(set) var failed = 0
        private var thread: NamedThread?

        /// The agent's socket, used by its thread only.
        private final class Held: @unchecked Sendable {
            let socket: RawRPC.Connection
            init(_ socket: RawRPC.Connection) { self.socket = socket }
        }

        init(_ endpoint: RPCEndpoint) throws {
            let held = Held(try RawRPC.Connection(endpoint, timeout: .seconds(5)))
            thread = NamedThread(name: "test-agent") { [self] in
                let socket = held.socket
                var sequence: UInt64 = 1
                while !stopping.load(ordering: .relaxed) {
                    let arguments = RawRPC.XDR.build { $0.eventBatch(agent: Array("steady".utf8), first: sequence, events: 4) }
                    let reply = socket.call(RawRPC.call(xid: UInt32(truncatingIfNeeded: sequence), version: 2, procedure: 1,
                                                        arguments: arguments), datagram: false)
                    if successResult(reply)?.first == 0 { answered += 1 } else { failed += 1; return }
                    sequence += 4
                    // Well under the time 256 new connections take: the steady agent is never the least recently active.
                    SystemClock.sleep(.milliseconds(1))
                }
            }
        }

        func stop() {
            stopping.store(true, ordering: .relaxed)
            thread.take()?.join()
        }
    }

    @Test("5,000 idle connections against --max-connections 512, tcp and unix: a new client's REPORT_BATCH answered within 1 s; a sending agent never dropped",
          arguments: ["tcp", "unix"])
    func idleFlood(transport: String) throws {
        if let limit = OpenFileLimit.current(), limit.soft < 6000 {
            try OpenFileLimit.raiseToMaximum()  // 5,000 sockets in this process
        }
        let directory = try TemporaryDirectory(prefix: "hardening-flood-\(transport)")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--max-connections", "512"])
        defer { daemon.stop() }
        let endpoint = transport == "tcp" ? daemon.tcp : daemon.unix
        let agent = try SendingAgent(endpoint)
        defer { agent.stop() }

        var idle: [RawRPC.Connection] = []
        let deadline = ContinuousClock.now + .seconds(60)
        for _ in 0..<5000 where ContinuousClock.now < deadline {
            guard let socket = try? RawRPC.Connection(endpoint, timeout: .seconds(2)) else { continue }
            idle.append(socket)
        }
        #expect(idle.count == 5000)

        // A new client, while the 5,000 are still held open.
        let start = ContinuousClock.now
        let client = CollectorClient(endpoint: endpoint, timeout: .seconds(1), connectTimeout: .seconds(1))
        let ack = try client.report(Sample.numberedBatch(agent: "newcomer", count: 10, firstSequence: 1))
        #expect(ack.status == .ok && ack.accepted == 10)
        #expect(ContinuousClock.now - start < .seconds(1))

        SystemClock.sleep(.milliseconds(100))  // a few more of the agent's batches after the flood
        agent.stop()
        #expect(agent.failed == 0, "the sending agent's connection was closed")
        #expect(agent.answered >= 10)

        let stats = try CollectorStatsClient(endpoint: endpoint, timeout: .seconds(1)).stats()
        #expect(stats.connections <= 512)
        #expect((stats.version3?.evictedConnections ?? 0) >= UInt64(5000 - 512))
        #expect(daemon.openDescriptors < 600)
        #expect(daemon.process.stderr.contains("connection table full"))
        // The agent's events arrived in order, none lost or doubled.
        let steady = CollectorOutput.sequences(of: try daemon.outputLines(), agent: "steady")
        #expect(steady == Array(1...UInt64(agent.answered * 4)))
        idle.removeAll()
        expectAnsweredQuickly(daemon, sequence: 1)
    }

    @Test("connections that each sent a call and went idle: the least recently active are closed first, a steady agent never")
    func activeFlood() throws {
        if let limit = OpenFileLimit.current(), limit.soft < 3000 {
            try OpenFileLimit.raiseToMaximum()
        }
        let directory = try TemporaryDirectory(prefix: "hardening-active-flood")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--max-connections", "256"])
        defer { daemon.stop() }
        let agent = try SendingAgent(daemon.tcp)
        defer { agent.stop() }
        var held: [RawRPC.Connection] = []
        for index in 0..<2000 {
            let socket = try RawRPC.Connection(index % 2 == 0 ? daemon.tcp : daemon.unix, timeout: .seconds(2))
            // One NULL call each: none of them is silent, all are idle after it.
            #expect(successResult(socket.call(RawRPC.call(xid: UInt32(index), version: 2, procedure: 0), datagram: false)) == [])
            held.append(socket)
        }
        // The oldest were closed, the newest are still open.
        #expect(held.prefix(100).allSatisfy { $0.closedByPeer() })
        #expect(successResult(held.last!.call(RawRPC.call(xid: 1, version: 2, procedure: 0), datagram: false)) == [])
        agent.stop()
        #expect(agent.failed == 0, "the sending agent's connection was closed")
        let stats = try CollectorStatsClient(endpoint: daemon.unix).stats()
        #expect((stats.version3?.evictedConnections ?? 0) >= UInt64(2000 - 256))
        held.removeAll()
        expectAnsweredQuickly(daemon, sequence: 1)
    }
}
