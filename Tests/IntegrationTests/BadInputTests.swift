import AuthRelay
import AuthRelayHarness
import AuthRelayProtocol
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// Hostile and broken input over real sockets. After each, a valid client is
/// served, the daemon still runs, and every output line is valid JSON.
@Suite("authrelayd bad input", .serialized, .timeLimit(.minutes(3)))
struct BadInputTests {
    static let acceptedGarbageArguments = RawRPC.acceptedReplyHeader(4)  // GARBAGE_ARGS

    init() { TestProcess.prepare() }

    @Test("random bytes on tcp, unix and udp")
    func randomBytes() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-random")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        var generator = SystemRandomNumberGenerator()
        for round in 0..<30 {
            let endpoint = [daemon.tcp, daemon.unix, daemon.udp][round % 3]
            let socket = try RawRPC.Connection(endpoint, timeout: .milliseconds(200))
            let count = Int.random(in: 1...8192, using: &generator)
            socket.send((0..<min(count, endpoint.transport == .udp ? 1400 : count)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        expectServed(daemon, sequence: 1)
        #expect(try daemon.outputLines().count == 6)
    }

    @Test("a fragment header claiming 2 GiB closes the connection without allocating")
    func hugeFragmentHeader() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-huge")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let before = daemon.residentKiB
        for endpoint in [daemon.tcp, daemon.unix] {
            for header: [UInt8] in [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF]] {  // last and not-last fragment
                let socket = try RawRPC.Connection(endpoint)
                socket.send(header + [UInt8](repeating: 0x41, count: 1024))
                #expect(socket.closedByPeer())
            }
        }
        #expect(daemon.residentKiB < before + 16 * 1024)
        expectServed(daemon, sequence: 1)
    }

    @Test("truncated records: a half record held open does not stall other clients; closed ones are cleaned up")
    func truncatedRecords() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-truncated")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let call = RawRPC.recordMarked(RawRPC.call(version: 2, procedure: 1, arguments: RawRPC.XDR.build { $0.eventBatch(events: 3) }))
        var held: [RawRPC.Connection] = []
        for endpoint in [daemon.tcp, daemon.unix] {
            // Stops in the middle of the record mark, of the call header, and of the arguments.
            for cut in [2, 20, call.count - 5] {
                let socket = try RawRPC.Connection(endpoint)
                socket.send(Array(call.prefix(cut)))
                held.append(socket)
            }
        }
        let start = ContinuousClock.now
        expectServed(daemon, sequence: 1)
        #expect(ContinuousClock.now - start < .seconds(2))
        held.removeAll()  // closed mid-record
        expectServed(daemon, sequence: 4)
        #expect(CollectorOutput.events(of: try daemon.outputLines()).count == 12)
    }

    @Test("batches sent slowly in small fragments decode as sent (incremental decoding); bad ones are still GARBAGE_ARGS")
    func slowFragmentedBatches() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-fragments")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        func sendInFragments(_ arguments: [UInt8], fragment: Int, over endpoint: RPCEndpoint) throws -> [UInt32] {
            let socket = try RawRPC.Connection(endpoint)
            for piece in RawRPC.fragments(RawRPC.call(version: 2, procedure: 1, arguments: arguments), size: fragment) {
                socket.send(piece)
                SystemClock.sleep(.microseconds(300))  // each fragment in its own read
            }
            return try #require(socket.receiveReply())
        }
        for (index, endpoint) in [daemon.unix, daemon.tcp].enumerated() {
            let first = UInt64(index * 100 + 1)
            let good = RawRPC.XDR.build { $0.eventBatch(first: first, events: 40, exe: Array("/bin/\u{1}slow".utf8), digest: [1, 2, 3]) }
            let reply = try sendInFragments(good, fragment: 97, over: endpoint)
            #expect(Array(reply.dropFirst(6).prefix(3)) == [0, 40, 0], "\(endpoint)")  // AR_STATUS_OK, 40 accepted
            let events = try daemon.outputLines().filter { ($0["seq"] as? Int).map { UInt64($0) >= first } ?? false }
            #expect(events.count == 40 && events.allSatisfy { $0["exe_path"] as? String == "/bin/\u{1}slow" && $0["digest"] as? String == "010203" })

            let long = RawRPC.XDR.build { $0.eventBatch(events: 3, exe: [UInt8](repeating: 0x62, count: 4097)) }
            #expect(Array(try sendInFragments(long, fragment: 500, over: endpoint).dropFirst()) == Self.acceptedGarbageArguments)
            let tooMany = RawRPC.XDR.build { $0.eventBatch(events: 513) }
            #expect(Array(try sendInFragments(tooMany, fragment: 4000, over: endpoint).dropFirst()) == Self.acceptedGarbageArguments)
            let cut = RawRPC.XDR.build { $0.eventBatch(events: 10, declaredEvents: 11) }
            #expect(Array(try sendInFragments(cut, fragment: 200, over: endpoint).dropFirst()) == Self.acceptedGarbageArguments)
        }
        expectServed(daemon, sequence: 1)
    }

    @Test("strings, opaques and arrays over their bounds are GARBAGE_ARGS, on every transport")
    func overBoundFields() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-bounds")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let long = [UInt8](repeating: 0x61, count: 65)
        var cases: [(String, UInt32, UInt32, [UInt8])] = [
            ("agent_id of 65 bytes", 2, 1, RawRPC.XDR.build { $0.eventBatch(agent: long, events: 1) }),
            ("boot_id claiming 2 GiB", 2, 1, RawRPC.XDR.build { $0.eventBatch(bootLength: 0x7FFF_FFF0, events: 1) }),
            ("exe_path of 4097 bytes", 2, 1, RawRPC.XDR.build { $0.eventBatch(events: 1, exe: [UInt8](repeating: 0x62, count: 4097)) }),
            ("digest of 65 bytes", 2, 1, RawRPC.XDR.build { $0.eventBatch(events: 1, digest: long) }),
            ("513 events", 2, 1, RawRPC.XDR.build { $0.eventBatch(events: 513) }),
            ("events array claiming 2^31 entries", 2, 1, RawRPC.XDR.build { $0.eventBatch(events: 0, declaredEvents: 0x8000_0000) }),
        ]
        cases.append(("v1 target_path of 4097 bytes", 1, 1,
                      RawRPC.XDR.build { $0.event(sequence: 1, target: [UInt8](repeating: 0x63, count: 4097)) }))
        cases.append(("arguments cut short", 2, 1, Array(RawRPC.XDR.build { $0.eventBatch(events: 2) }.dropLast(12))))
        for endpoint in [daemon.tcp, daemon.unix, daemon.udp] {
            for (name, version, procedure, arguments) in cases {
                let socket = try RawRPC.Connection(endpoint)
                let call = RawRPC.call(xid: 99, version: version, procedure: procedure, arguments: arguments)
                if endpoint.transport == .udp {
                    guard call.count + 4 < 60_000 else { continue }
                    socket.send(call)  // no record mark on UDP
                    #expect(Array(socket.receiveDatagram()?.dropFirst() ?? []) == Self.acceptedGarbageArguments, "\(name) over udp")
                } else {
                    socket.send(RawRPC.recordMarked(call))
                    #expect(Array(socket.receiveReply()?.dropFirst() ?? []) == Self.acceptedGarbageArguments, "\(name) over \(endpoint)")
                }
            }
        }
        expectServed(daemon, sequence: 1)
        let stats = try CollectorClient(endpoint: daemon.tcp).stats()
        #expect(stats.rejected >= UInt64(cases.count * 2))
    }

    @Test("wrong program is PROG_UNAVAIL, wrong version PROG_MISMATCH 1...3, unknown procedure PROC_UNAVAIL, RPC version 3 RPC_MISMATCH")
    func unservedCalls() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-unserved")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        for endpoint in [daemon.tcp, daemon.udp, daemon.unix] {
            let otherProgram = RPCClient(endpoint: endpoint, program: AuthRelayProgram.program + 1, version: 1, timeout: .seconds(3))
            #expect(throws: RPCError.self) { try otherProgram.ping() }
            do { try otherProgram.ping() } catch { #expect(error.status == .programUnavailable, "\(endpoint)") }

            let version4 = RPCClient(endpoint: endpoint, program: AuthRelayProgram.program, version: 4, timeout: .seconds(3))
            do {
                try version4.ping()
                Issue.record("version 4 answered over \(endpoint)")
            } catch {
                #expect(error.status == .programVersionMismatch)
                #expect(error.supportedVersions == 1...3)
            }

            let v2 = RPCClient(endpoint: endpoint, program: AuthRelayProgram.program, version: 2, timeout: .seconds(3))
            var nothing: Int32 = 0
            do {
                try v2.call(9, &nothing, encode: .void, decode: .void, as: Int32.self) { _ in () }
                Issue.record("procedure 9 answered over \(endpoint)")
            } catch {
                #expect(error.status == .procedureUnavailable)
            }
        }
        let socket = try RawRPC.Connection(daemon.tcp)
        socket.send(RawRPC.recordMarked(RawRPC.call(xid: 5, rpcVersion: 3, version: 2, procedure: 0)))
        #expect(socket.receiveReply() == [5] + RawRPC.rpcMismatchReply(low: 2, high: 2))  // supports 2...2
        expectServed(daemon, sequence: 1)
        // None of it is bad input: `rejected` stays 0, version 3 counts them apart (4 calls on 3 transports, and the RPC version).
        let stats = try CollectorStatsClient(endpoint: daemon.tcp).stats()
        #expect(stats.rejected == 0)
        #expect(stats.version3?.unservedCalls == 13)
    }

    @Test("invalid UTF-8, quotes, backslashes and control characters still make valid JSON lines")
    func hostileStrings() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-strings")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let exe: [UInt8] = Array("/bin/\"q\"\\".utf8) + [0x01, 0x0A, 0x1F, 0x7F, 0xC3, 0x28, 0xE2, 0x82, 0x41, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0x80]
        let agent: [UInt8] = [0x61, 0xE2, 0x82, 0x0A]
        let socket = try RawRPC.Connection(daemon.unix)
        let report = RawRPC.recordMarked(RawRPC.call(version: 2, procedure: 1,
                                                     arguments: RawRPC.XDR.build { $0.eventBatch(agent: agent, events: 1, exe: exe) }))
        socket.send(report)
        let reply = try #require(socket.receiveReply())
        #expect(Array(reply.dropFirst().prefix(6)) == RawRPC.acceptedReplyHeader(0) + [0])  // SUCCESS, AR_STATUS_OK
        let line = try #require(try daemon.outputLines().first)
        // Each maximal invalid subpart is one U+FFFD, as Swift's String(cString:) repairs it.
        #expect(line["exe_path"] as? String == String(decoding: exe, as: UTF8.self))
        #expect(line["exe_path"] as? String == "/bin/\"q\"\\\u{01}\n\u{1F}\u{7F}\u{FFFD}(\u{FFFD}A😀\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}")
        #expect(line["agent_id"] as? String == "a\u{FFFD}\n")
        // The same repaired id de-duplicates after a restart.
        #expect(daemon.stop() == .exited(0))
        let again = try StartedCollector(in: directory, dataDirectory: daemon.dataDirectory, output: daemon.outputPath)
        defer { again.stop() }
        let retry = try RawRPC.Connection(again.unix)
        retry.send(report)
        let retried = try #require(retry.receiveReply())
        #expect(Array(retried.dropFirst().prefix(8)) == RawRPC.acceptedReplyHeader(0) + [0, 0, 1])  // OK, accepted 0, duplicates 1
        expectServed(again, sequence: 1)
    }

    @Test("a client that sends calls and never reads replies does not hold up others")
    func clientNotReadingReplies() throws {
        let directory = try TemporaryDirectory(prefix: "badinput-noread")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory)
        defer { daemon.stop() }
        let null = RawRPC.recordMarked(RawRPC.call(version: 2, procedure: 0))
        let flood = try RawRPC.Connection(daemon.unix, timeout: .milliseconds(500))
        let burst = Array([[UInt8]](repeating: null, count: 1000).joined())
        var bursts = 0
        while bursts < 200, flood.send(burst) { bursts += 1 }  // until the socket buffers are full
        let start = ContinuousClock.now
        expectServed(daemon, sequence: 1)
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test("5,000 idle connections: the least recently active closed past --max-connections, the rest after --idle-timeout; valid clients served; memory bounded")
    func idleConnectionFlood() throws {
        if let limit = OpenFileLimit.current(), limit.soft < 6000 {
            try OpenFileLimit.raiseToMaximum()  // 5,000 sockets in this process
        }
        let directory = try TemporaryDirectory(prefix: "badinput-idle")
        defer { directory.remove() }
        let daemon = try StartedCollector(in: directory, extra: ["--max-connections", "1000", "--idle-timeout", "3"])
        defer { daemon.stop() }
        let early = CollectorClient(endpoint: daemon.unix)  // connected before the flood: keeps being served
        #expect(try early.report(Sample.numberedBatch(agent: "early", count: 2, firstSequence: 1)).status == .ok)

        var idle: [RawRPC.Connection] = []
        let deadline = ContinuousClock.now + .seconds(60)
        for index in 0..<5000 where ContinuousClock.now < deadline {
            guard let socket = try? RawRPC.Connection(index % 2 == 0 ? daemon.tcp : daemon.unix, timeout: .seconds(2)) else { continue }
            idle.append(socket)
        }
        #expect(idle.count >= 4900)
        // It sent before the flood: the connections that never sent a byte were closed first.
        #expect(try early.report(Sample.numberedBatch(agent: "early", count: 2, firstSequence: 3)).status == .ok)
        #expect(daemon.openDescriptors < 1100)
        #expect(daemon.residentKiB < 100 * 1024)
        let stats = try CollectorStatsClient(endpoint: daemon.unix).stats()
        #expect(stats.connections <= 1000)
        #expect((stats.version3?.evictedConnections ?? 0) >= 3900)

        // The idle ones are closed after --idle-timeout; a new client then gets in.
        #expect(eventually(timeout: .seconds(15)) { daemon.openDescriptors < 100 })
        expectServed(daemon, sequence: 1)
        idle.removeAll()
        #expect(daemon.process.stderr.contains("connection table full"))
    }
}
