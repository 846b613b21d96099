import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// Issue 11, item 4: client-supplied strings reach authrelayd's log only as
/// escaped metadata. A newline in an agent id cannot start a line of its own.
@Suite("authrelayd hardening: log lines", .serialized, .timeLimit(.minutes(2)))
struct HardeningLogTests {
    init() { TestProcess.prepare() }

    @Test("a newline (and controls, invalid UTF-8) in agent_id, boot_id and reported_by cannot forge a log line (authrelayd's stderr)")
    func forgedLines() throws {
        let directory = try TemporaryDirectory(prefix: "hardening-log")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let forged = "2026-12-01T00:00 critical authrelayd: FORGED"  // ids are at most 64 bytes
        let agent = Array("evil\n\(forged)\r\u{1B}[2K".utf8) + [0xFF]
        let boot = Array("b\n\(forged)".utf8)
        do {
            let calls: [(UInt32, UInt32, [UInt8])] = [
                // First seen past 1 in a new history: the state_lost warning names it.
                (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: agent, boot: boot, first: 5, events: 1) }),
                // A gap and drops: "events lost".
                (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: agent, boot: boot, first: 20, dropped: 3, events: 1) }),
                // Version 3 losses: "events lost"; a boot end: "agent run ended".
                (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: agent, boot: boot, first: 21, losses: [(21, 30, 2)], events: 0) }),
                (3, 3, RawRPC.XDR.build { $0.bootEnd(agent: agent, boot: boot, ending: 1, last: 30, reportedBy: Array("r\n\(forged)".utf8)) }),
            ]
            for (version, procedure, arguments) in calls {
                let socket = try RawRPC.Connection(daemon.tcp)
                #expect(successResult(socket.call(RawRPC.call(version: version, procedure: procedure, arguments: arguments),
                                                  datagram: false))?.first == 0)
            }
        }
        #expect(daemon.stop() == .exited(0))
        let log = daemon.process.stderr
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(log.contains("FORGED"), "the ids did reach the log: \(log)")
        for line in lines where line.contains("FORGED") {
            // Every mention is inside an escaped value on a real line, never a line of its own.
            #expect(!line.hasPrefix("2026-12-01T00:00 critical"), "forged line: \(line)")
            #expect(line.contains(#"\n2026-12-01T00:00 critical"#), "not escaped: \(line)")
            #expect(!line.contains("\u{1B}") && !line.contains("\r"))
        }
        #expect(log.contains(#"\u{001B}[2K\xFF""#), "controls and invalid UTF-8 escaped: \(log)")
        for message in ["events lost", "agent run ended", "started with neither its state nor its output"] {
            #expect(lines.contains { $0.contains(message) && $0.contains("FORGED") }, "no \(message) line naming the id")
        }
    }
}
