import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// Issue 11, item 1: wire values at their extremes, over real sockets (tcp,
/// two udp datagrams, unix), never stop authrelayd: every counter fed by them
/// saturates, every sum or range is checked. After each, valid calls are
/// answered within 1 s and the daemon is still the same process.
@Suite("authrelayd hardening: extreme wire values", .serialized, .timeLimit(.minutes(3)))
struct HardeningOverflowTests {
    init() { TestProcess.prepare() }

    /// One probe: the calls (version, procedure, arguments) an attacker sends, for a given transport's agent prefix.
    struct Probe: Sendable, CustomTestStringConvertible {
        var name: String
        var calls: @Sendable (String) -> [(version: UInt32, procedure: UInt32, arguments: [UInt8], expected: [UInt32]?)]
        /// What the counters must say after all three transports sent it.
        var check: @Sendable (CollectorStats) -> Bool
        var testDescription: String { name }
    }

    static let ok: [UInt32] = [0]
    static let rejected: [UInt32] = [1]

    static let probes: [Probe] = [
        Probe(name: "v2 dropped = 2^64-1, then dropped = 1 from another agent id (issue 11's first crash)", calls: { prefix in [
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-a".utf8), first: 1, dropped: .max, events: 0) }, ok),
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-b".utf8), first: 1, dropped: 1, events: 0) }, ok),
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-c".utf8), first: 1, dropped: .max, events: 2) }, ok),
        ] }, check: { $0.reportedDropped == .max }),
        Probe(name: "v2 first_seq = 2^64-1 twice, from two agent ids (issue 11's second crash)", calls: { prefix in [
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-a".utf8), first: .max, events: 0) }, ok),
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-b".utf8), first: .max, events: 0) }, ok),
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-c".utf8), first: .max, events: 1) }, ok),
            (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-c".utf8), first: .max, dropped: .max, events: 0) }, ok),
        ] }, check: { $0.reportedDropped == 0 && $0.gapEvents == 0 }),
        Probe(name: "v2 gaps of 2^64-3 sequences from two agent ids: gap_events saturates", calls: { prefix in
            ["a", "b"].flatMap { agent in [
                (UInt32(2), UInt32(1), RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-\(agent)".utf8), first: 1, events: 1) }, ok),
                (2, 1, RawRPC.XDR.build { $0.eventBatch(agent: Array("\(prefix)-\(agent)".utf8), first: .max, events: 0) }, ok),
            ] }
        }, check: { $0.gapEvents == .max }),
        Probe(name: "v2 and v3 ranges past 2^64-1 are REJECTED", calls: { prefix in [
            (2, 1, RawRPC.XDR.build { $0.eventBatchV2(agent: Array(prefix.utf8), first: .max, sequences: [.max, 0]) }, rejected),
            (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: Array(prefix.utf8), first: .max, events: 2) }, rejected),
            (3, 1, RawRPC.XDR.build {
                $0.eventBatchV3(agent: Array(prefix.utf8), first: .max - 1, losses: [(.max - 1, .max, 1)], events: 1, sequences: [0])
            }, rejected),
            (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: Array(prefix.utf8), first: 1, losses: [(1, .max, 1), (.max, .max, 2)], events: 0) },
             rejected),
            (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: Array(prefix.utf8), first: 0, events: 1) }, rejected),
        ] }, check: { $0.rejected >= 15 }),
        Probe(name: "v3 loss ranges 1...2^64-1 of every reason, from two agent ids: each lost_* counter saturates", calls: { prefix in
            (1...4).flatMap { reason in ["a", "b"].map { agent in
                (UInt32(3), UInt32(1), RawRPC.XDR.build {
                    $0.eventBatchV3(agent: Array("\(prefix)-\(agent)-\(reason)".utf8), first: 1, losses: [(1, .max, reason)], events: 0)
                }, ok)
            } }
        }, check: { stats in
            guard let extra = stats.version3 else { return false }
            return [extra.lostQueueFull, extra.lostSpoolEvicted, extra.lostSpoolCorrupt, extra.lostRefused].allSatisfy { $0 == .max }
        }),
        Probe(name: "v3 highest at 2^64-1, then everything is a duplicate; a loss range above it cannot exist", calls: { prefix in [
            (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: Array(prefix.utf8), first: .max, events: 1) }, [0, 1, 0, 0xFFFF_FFFF, 0xFFFF_FFFF]),
            (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: Array(prefix.utf8), first: .max, events: 1) }, [0, 0, 1, 0xFFFF_FFFF, 0xFFFF_FFFF]),
            (3, 1, RawRPC.XDR.build { $0.eventBatchV3(agent: Array(prefix.utf8), first: 1, losses: [(1, .max - 1, 2)], events: 0) },
             [0, 0, 0, 0xFFFF_FFFF, 0xFFFF_FFFF]),
        ] }, check: { $0.version3?.lostSpoolEvicted == 0 }),
        Probe(name: "v1 seq 2^64-1 with kind -1 and verdict -2; boot ends with every number at 2^64-1 and an unknown ending", calls: { prefix in [
            (1, 1, RawRPC.XDR.build { $0.eventWith(sequence: .max, kind: UInt32(bitPattern: -1), verdict: UInt32(bitPattern: -2)) },
             [0, 0xFFFF_FFFF, 0xFFFF_FFFF]),
            (3, 3, RawRPC.XDR.build { $0.bootEnd(agent: Array(prefix.utf8), ending: 1, last: .max, endedNanoseconds: .max) }, ok),
            (3, 3, RawRPC.XDR.build { $0.bootEnd(agent: Array(prefix.utf8), ending: 1, last: .max, endedNanoseconds: .max) }, ok),
            (3, 3, RawRPC.XDR.build { $0.bootEnd(agent: Array(prefix.utf8), boot: Array("other".utf8), ending: 0xFFFF_FFFF, last: 0) }, rejected),
        ] }, check: { $0.version3?.bootsUnclean == 3 && $0.legacyEvents == 3 }),
    ]

    @Test("each probe over tcp, two udp datagrams and unix, then valid calls answered within 1 s", arguments: probes)
    func probe(_ probe: Probe) throws {
        let directory = try TemporaryDirectory(prefix: "hardening-overflow")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        for endpoint in [daemon.tcp, daemon.udp, daemon.unix] {
            let prefix = "\(endpoint.transport)"
            for (index, call) in probe.calls(prefix).enumerated() {
                // Over udp each call is its own datagram (and its own socket): what "two udp datagrams" means.
                let socket = try RawRPC.Connection(endpoint, timeout: .seconds(3))
                let reply = socket.call(RawRPC.call(xid: UInt32(index + 1), version: call.version, procedure: call.procedure,
                                                    arguments: call.arguments), datagram: endpoint.transport == .udp)
                let result = try #require(successResult(reply), "\(probe.name): call \(index) over \(endpoint) was not answered: \(String(describing: reply))")
                if let expected = call.expected {
                    #expect(Array(result.prefix(expected.count)) == expected, "\(probe.name): call \(index) over \(endpoint)")
                }
            }
            expectAnsweredQuickly(daemon, sequence: 1)
        }
        #expect(daemon.process.isRunning)
        let stats = try CollectorStatsClient(endpoint: daemon.tcp).stats()
        #expect(probe.check(stats), "\(probe.name): \(stats)")
        #expect(try daemon.outputLines().allSatisfy { $0["type"] is String })
        #expect(daemon.stop() == .exited(0))
    }

    @Test("negative enum values are written signed in versions 1, 2 and 3")
    func negativeEnums() throws {
        let directory = try TemporaryDirectory(prefix: "hardening-enums")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let minusOne = UInt32(bitPattern: -1), minusTwo = UInt32(bitPattern: -2)
        let calls: [(UInt32, [UInt8])] = [
            (1, RawRPC.XDR.build { $0.eventWith(sequence: 1, kind: minusOne, verdict: minusTwo) }),
            (2, RawRPC.XDR.build { xdr in
                xdr.opaque(Array("v2".utf8)); xdr.opaque(Array("b".utf8)); xdr.hyper(1); xdr.hyper(0); xdr.word(1)
                xdr.eventWith(sequence: 1, kind: minusOne, verdict: minusTwo)
            }),
            (3, RawRPC.XDR.build { $0.eventBatchV3(agent: Array("v3".utf8), events: 1, kind: minusOne, verdict: minusTwo) }),
        ]
        for (version, arguments) in calls {
            let socket = try RawRPC.Connection(daemon.unix)
            #expect(successResult(socket.call(RawRPC.call(version: version, procedure: 1, arguments: arguments), datagram: false))?.first == 0)
        }
        let events = CollectorOutput.events(of: try daemon.outputLines())
        #expect(events.count == 3)
        #expect(events.allSatisfy { $0["kind"] as? String == "kind--1" && $0["verdict"] as? String == "verdict--2" })
    }
}

/// A valid version 2 batch on tcp, udp and unix, and a version 3 ping, each answered within 1 s.
func expectAnsweredQuickly(_ daemon: StartedCollector, sequence: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
    for endpoint in [daemon.tcp, daemon.udp, daemon.unix] {
        let client = CollectorClient(endpoint: endpoint, timeout: .seconds(1), connectTimeout: .seconds(1))
        let start = ContinuousClock.now
        do {
            let ack = try client.report(Sample.numberedBatch(agent: "valid-\(endpoint.transport)", count: 3, firstSequence: sequence))
            #expect(ack.status == .ok, sourceLocation: sourceLocation)
            try Version3Client(endpoint, timeout: .seconds(1)).ping()
        } catch {
            Issue.record("a valid client was not answered over \(endpoint): \(error)", sourceLocation: sourceLocation)
        }
        #expect(ContinuousClock.now - start < .seconds(1), "over \(endpoint)", sourceLocation: sourceLocation)
    }
}
