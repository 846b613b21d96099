import AuthRelayProtocol
import TestSupport
import Testing

/// Event and EventBatch through the real rpcgen routines at every bound.
@Suite struct WireRoundTrips {
    @Test("an ordinary event comes back equal")
    func ordinary() throws {
        let event = Sample.event()
        let bytes = try #require(Wire.encode(event))
        #expect(Wire.decodeEvent(bytes) == event)
    }

    @Test("empty strings and an empty digest: 64 bytes, the fixed part alone")
    func empty() throws {
        let event = Sample.event(path: "", target: "", digest: [])
        let bytes = try #require(Wire.encode(event))
        // 3 hypers (24) + kind, verdict (8) + pid, ppid, uid, gid, flags (20) + 3 length words (12).
        #expect(bytes.count == 64)
        #expect(Wire.decodeEvent(bytes) == event)
    }

    static let sized: [String: Event] = [
        "ordinary": Sample.event(),
        "empty": Sample.event(path: "", target: "", digest: []),
        "maximal": Sample.maximal(),
        "non-ASCII, odd lengths": Sample.event(path: "/tmp/日本語/ß", target: "/a", digest: [1, 2, 3, 4, 5]),
    ]

    @Test("Event.encodedSize is the size xdr_ar_event writes", arguments: sized.keys.sorted())
    func encodedSize(name: String) throws {
        let event = try #require(Self.sized[name])
        let bytes = try #require(Wire.encode(event))
        #expect(event.encodedSize == bytes.count, "\(name): encodedSize \(event.encodedSize), xdr_ar_event wrote \(bytes.count)")
    }

    @Test("the maximum: 4096-byte paths, 64-byte digest, UInt64.max, Int32.min pid, every flag bit")
    func maximal() throws {
        let event = Sample.maximal()
        #expect(event.executablePath.utf8.count == Event.maxPathBytes)
        let bytes = try #require(Wire.encode(event))
        #expect(bytes.count == 64 + 2 * Event.maxPathBytes + Event.maxDigestBytes)
        #expect(Wire.decodeEvent(bytes) == event)
    }

    @Test("numbers at both ends", arguments: [
        (UInt64.min, Int32.min, UInt32.min), (UInt64.max, Int32.max, UInt32.max), (1 << 63, -1, 1 << 31),
    ])
    func extremes(value: UInt64, signed: Int32, unsigned: UInt32) throws {
        var event = Sample.event(sequence: value)
        event.timestampNanoseconds = value
        event.decisionNanoseconds = value
        event.pid = signed
        event.ppid = signed
        event.uid = unsigned
        event.gid = unsigned
        event.flags = Event.Flags(rawValue: unsigned)
        #expect(Wire.roundTrip(event) == event)
    }

    @Test("non-ASCII paths keep every byte", arguments: [
        "/tmp/日本語/ß", "/home/zoë/Ünïcödé.txt", "/tmp/emoji-🦊/💾", "/tmp/tab\tand\nnewline", "/ﬁ/ligature",
    ])
    func nonASCII(path: String) throws {
        let event = Sample.event(path: path, target: path + "/x")
        let bytes = try #require(Wire.encode(event))
        let back = try #require(Wire.decodeEvent(bytes))
        #expect(back.executablePath == path)
        #expect(Array(back.targetPath.utf8) == Array((path + "/x").utf8))
    }

    @Test("a non-ASCII path of exactly 4096 UTF-8 bytes is in bounds")
    func nonASCIIAtTheBound() throws {
        // "日" is 3 bytes: 1365 of them plus "/" is 4096 bytes, 1366 characters.
        let path = "/" + String(repeating: "日", count: 1365)
        #expect(path.utf8.count == 4096)
        let event = Sample.event(path: path)
        #expect(throws: Never.self) { try event.validate() }
        #expect(Wire.roundTrip(event) == event)
    }

    @Test("kinds: open, exec, and unknown values are kept", arguments: [
        Event.Kind.open, .exec, .other(0), .other(3), .other(77), .other(.max),
    ])
    func kinds(kind: Event.Kind) throws {
        var event = Sample.event()
        event.kind = kind
        let back = try #require(Wire.roundTrip(event))
        #expect(back.kind == kind)
        #expect(back.kind.rawValue == kind.rawValue)
    }

    @Test("verdicts and flags")
    func verdictsAndFlags() throws {
        for verdict in [Event.Verdict.allow, .deny] {
            for flags in [Event.Flags(), .cached, .deadline, [.cached, .deadline]] {
                var event = Sample.event()
                event.verdict = verdict
                event.flags = flags
                #expect(Wire.roundTrip(event) == event)
            }
        }
    }

    @Test("a batch of one")
    func batchOfOne() throws {
        let batch = Sample.batch(count: 1, firstSequence: 42)
        try batch.validate()
        #expect(Wire.roundTrip(batch) == batch)
    }

    @Test("the largest batch: 512 maximal events, 64-byte ids, UInt64.max dropped")
    func maximalBatch() throws {
        var batch = Sample.batch(count: Event.maxBatchEvents, firstSequence: UInt64.max - 511) { Sample.maximal(sequence: $0) }
        batch.header.agentID = String(repeating: "a", count: Event.maxIDBytes)
        batch.header.bootID = String(repeating: "ß", count: Event.maxIDBytes / 2)
        batch.header.dropped = .max
        try batch.validate()
        #expect(batch.events.last?.sequence == .max)
        let bytes = try #require(Wire.encode(batch))
        let perEvent = 64 + 2 * Event.maxPathBytes + Event.maxDigestBytes
        #expect(bytes.count == 4 + 64 + 4 + 64 + 8 + 8 + 4 + 512 * perEvent)
        #expect(Wire.decodeBatch(bytes) == batch)
    }

    @Test("one arena reused for batches of different sizes lays each out afresh")
    func arenaReuse() throws {
        let arena = WireArena(eventCapacity: 2, byteCapacity: 64)
        let small = Sample.batch(count: 2)
        let large = Sample.batch(count: 300) { Sample.event(sequence: $0, path: "/p/" + String($0), target: "/日本語/" + String($0)) }
        for batch in [small, large, small, large] {
            let bytes = try #require(Wire.encode(batch, arena: arena))
            #expect(Wire.decodeBatch(bytes) == batch)
        }
        for event in [Sample.maximal(), Sample.event(path: "", target: "", digest: [])] {
            let bytes = try #require(Wire.encode(event, arena: arena))
            #expect(Wire.decodeEvent(bytes) == event)
        }
    }

    @Test("the small value types convert both ways")
    func smallTypes() {
        let ack = Ack(status: .sinkError, sequence: .max)
        #expect(Ack(wire: ack.wire) == ack)
        let batchAck = BatchAck(status: .other(9), accepted: .max, duplicates: 3, highestSequence: .max)
        #expect(BatchAck(wire: batchAck.wire) == batchAck)
        var stats = CollectorStats()
        stats.events = .max
        stats.gapEvents = 5
        stats.connections = .max
        #expect(CollectorStats(wire: stats.wire) == stats)
    }
}
