import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import Logging
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// `authrelay send`, and the sender with a spool, against collectors built by
/// plain rpcgen (`RpcgenCollector`): libtirpc's default 8,800-byte UDP
/// buffer, GARBAGE_ARGS splits, and what only version 3 carries (loss
/// reasons, boot ends, the agent's status), which authrelayd does not speak yet.
@Suite("Spool: plain rpcgen collectors", .serialized, .timeLimit(.minutes(4)),
       .enabled(if: RpcgenCollector.available, "needs rpcbind, rpcgen and cc"))
struct SpoolRpcgenTests {
    init() { TestProcess.prepare() }

    /// Runs `authrelay send` to the end; its status and output.
    static func send(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ChildProcess.run(BuiltPrograms.path("authrelay"), ["send"] + arguments, timeout: .seconds(60))
    }

    /// The sequences an agent's events arrived with (its one boot), in output order.
    static func sequences(_ collector: RpcgenCollector, agent: String) -> [UInt64] {
        collector.lines.filter { $0.first == "event" && $0.count >= 4 && $0[1] == agent }.compactMap { UInt64($0[3]) }
    }

    @Test("authrelay send delivers every event over udp, tcp and local, with and without a spool")
    func sendOverEveryTransport() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-rpcgen")
        defer { directory.remove() }
        let plain = try RpcgenCollector(.generatedMain, in: directory)
        defer { plain.stop() }
        let local = try RpcgenCollector(.local(path: directory.file("rpcgen.sock")), in: directory)
        defer { local.stop() }
        for (collector, transport) in [(plain, "udp"), (plain, "tcp"), (local, "local")] {
            for spooled in [false, true] {
                // 80 events were too many for one 8,800-byte datagram before (issue 12); 2,000 need many.
                for count in [80, 2000] {
                    let agent = "rpcgen-\(transport)-\(spooled ? "spool" : "memory")-\(count)"
                    var arguments = ["--collector", "rpcbind://localhost/\(transport)", "--program", String(collector.program),
                                     "--count", String(count), "--agent-id", agent, "--drain-seconds", "20"]
                    if spooled { arguments += ["--spool-dir", directory.file("spool-\(agent)")] }
                    let (status, output) = try Self.send(arguments)
                    #expect(status == 0, "\(agent): \(output)")
                    #expect(output.contains("acknowledged \(count),"), "\(agent): \(output)")
                    let sequences = Self.sequences(collector, agent: agent)
                    #expect(sequences.count == count && Set(sequences) == Set(1...UInt64(count)), "\(agent): \(sequences.count) events")
                }
            }
        }
    }

    @Test("a collector that cannot decode a batch (GARBAGE_ARGS from a small UDP buffer) gets it split, not resent as is")
    func garbageArgumentsSplit() throws {
        let directory = try TemporaryDirectory(prefix: "authrelay-rpcgen")
        defer { directory.remove() }
        let small = try RpcgenCollector(.udp(buffer: 2400), in: directory)
        defer { small.stop() }
        for spooled in [false, true] {
            let agent = "rpcgen-split-\(spooled ? "spool" : "memory")"
            var arguments = ["--collector", "rpcbind://localhost/udp", "--program", String(small.program), "--count", "600",
                             "--agent-id", agent, "--drain-seconds", "20", "--log-level", "notice"]
            if spooled { arguments += ["--spool-dir", directory.file("spool-\(agent)")] }
            let (status, output) = try Self.send(arguments)
            #expect(status == 0, "\(agent): \(output)")
            #expect(output.contains("collector could not decode a batch: splitting"), "\(agent): \(output)")
            let sequences = Self.sequences(small, agent: agent)
            #expect(sequences.count == 600 && Set(sequences) == Set(1...600), "\(agent): \(sequences.count) events\n\(output)")
        }
    }
}
