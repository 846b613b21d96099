@testable import AuthRelayCollector
@testable import AuthRelayProtocol
import CAuthRelayRPC
import ONCRPC
import Testing

/// `ViewBatchDecoder` against rpcgen's routines on the same bytes: the same
/// batches accepted with the same values, the same ones refused, whether the
/// bytes come whole or piece by piece in a buffer that moves; and the storage
/// reused from batch to batch.
@Suite("ViewBatchDecoder")
struct ViewBatchDecoderTests {
    typealias Version = ViewBatchDecoder.Version

    static func event(_ sequence: UInt64, pathBytes: Int = 12, digest: Int = 32) -> Event {
        Event(sequence: sequence, timestampNanoseconds: 1_700_000_000_000_000_000 &+ sequence, kind: .open, verdict: .allow,
              decisionNanoseconds: 1500, pid: 4242, ppid: 1, uid: 1000, gid: 1000, flags: [],
              executablePath: String(repeating: "x", count: pathBytes), targetPath: "/etc/hosts",
              digest: [UInt8]((0..<digest).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
    }

    static func batch(agent: String = "agent-1", boot: String = "boot-1", count: Int, pathBytes: Int = 12, digest: Int = 32,
                      losses: [LossRange] = []) -> EventBatch {
        EventBatch(header: BatchHeader(agentID: agent, bootID: boot, firstSequence: 1, dropped: 3, losses: losses),
                   events: (0..<count).map { event(1 + UInt64($0), pathBytes: pathBytes, digest: digest) })
    }

    static func encode(_ batch: EventBatch, _ version: Version) -> [UInt8] {
        switch version {
        case .v2: WireArena().withWire(batch) { AuthRelayProgram.eventBatch.encode(&$0.pointee) }!
        case .v3: WireArena().withWire(version3: batch) { AuthRelayProgram.eventBatchV3.encode(&$0.pointee) }!
        }
    }

    static let batches: [(String, EventBatch)] = [
        ("no events", batch(count: 0)),
        ("one event", batch(count: 1)),
        ("512 events", batch(count: 512)),
        ("paths of 4096 bytes, digest of 64", batch(count: 2, pathBytes: 4096, digest: 64)),
        ("empty paths and digest", batch(count: 3, pathBytes: 0, digest: 0)),
        ("odd lengths (padding)", batch(agent: "a", boot: "bb5", count: 4, pathBytes: 5, digest: 3)),
        ("ids of 64 bytes", batch(agent: String(repeating: "a", count: 64), boot: String(repeating: "b", count: 64), count: 1)),
        ("64 loss ranges", batch(count: 1, losses: (0..<64).map { LossRange(first: UInt64($0), last: UInt64($0), reason: .other(9)) })),
    ]

    /// The decoder's result on `bytes` (given whole), compared with rpcgen's; returns whether both accepted.
    @discardableResult
    static func expectSame(_ bytes: [UInt8], _ version: Version, _ decoder: ViewBatchDecoder? = nil) -> Bool {
        let decoder = decoder ?? ViewBatchDecoder(version)
        defer { decoder.reset() }
        return bytes.withUnsafeBytes { bytes in
            let accepted = decoder.finish(bytes)
            return RPCGenBatchReference.decode(bytes, version) { reference in
                #expect(accepted == (reference != nil), "accepted \(accepted), rpcgen \(reference != nil)")
                if accepted, let reference { #expect(decoder.batch.difference(from: reference) == nil) }
                return accepted && reference != nil
            }
        }
    }

    @Test("the same values as rpcgen's decode", arguments: batches.map(\.0))
    func sameValues(name: String) {
        let batch = Self.batches.first { $0.0 == name }!.1
        for version in [Version.v2, .v3] {
            #expect(Self.expectSame(Self.encode(batch, version), version))
        }
    }

    /// Word `index` of `bytes` set to `value`.
    static func patched(_ bytes: [UInt8], word index: Int, _ value: UInt32) -> [UInt8] {
        var bytes = bytes
        for byte in 0..<4 { bytes[index * 4 + byte] = UInt8(truncatingIfNeeded: value >> (24 - 8 * byte)) }
        return bytes
    }

    // Version 2 words: agent id "agent-1" (len, 2 words), boot id (len, 2), first_seq (2), dropped (2), count, then events:
    // seq 2, timestamp 2, kind, verdict, decision 2, pid, ppid, uid, gid, flags, exe_path (length at word 13 of the
    // event, 5 bytes in words 14 and 15), target_path (16, "/etc/hosts" in 17...19), digest (20, 3 bytes in 21).
    static let v2One = encode(batch(count: 1, pathBytes: 5, digest: 3), .v2)
    static let countWord = 10
    static let event = 11

    @Test("bounds: rejected as rpcgen rejects them, the bound itself accepted")
    func bounds() {
        #expect(!Self.expectSame(Self.patched(Self.v2One, word: Self.countWord, 513), .v2))
        #expect(!Self.expectSame(Self.patched(Self.v2One, word: Self.countWord, UInt32.max), .v2))
        #expect(!Self.expectSame(Self.patched(Self.v2One, word: 0, 65), .v2))  // agent id over AR_ID_MAX
        #expect(!Self.expectSame(Self.patched(Self.v2One, word: 0, UInt32.max), .v2))
        #expect(!Self.expectSame(Self.patched(Self.v2One, word: Self.event + 13, 4097), .v2))  // exe_path over AR_PATH_MAX
        #expect(!Self.expectSame(Self.patched(Self.v2One, word: Self.event + 20, 65), .v2))  // digest over AR_DIGEST_MAX
        #expect(Self.expectSame(Self.encode(Self.batch(count: 1, pathBytes: 4096, digest: 64), .v2), .v2))
        // Version 3: 65 loss ranges.
        var v3 = Self.encode(Self.batch(count: 0, losses: [LossRange(first: 1, last: 1, reason: .queueFull)]), .v3)
        #expect(Self.expectSame(v3, .v3))
        v3 = Self.patched(v3, word: 8, 65)
        #expect(!Self.expectSame(v3, .v3))
    }

    @Test("every prefix of a batch is refused, as rpcgen refuses it; trailing bytes are ignored, as the dispatcher ignores them")
    func prefixesAndTrailingBytes() {
        for version in [Version.v2, .v3] {
            let bytes = Self.encode(Self.batch(count: 2, pathBytes: 5, digest: 3, losses: [LossRange(first: 9, last: 9, reason: .refused)]), version)
            for length in 0..<bytes.count { #expect(!Self.expectSame(Array(bytes.prefix(length)), version)) }
            #expect(Self.expectSame(bytes + [1, 2, 3, 4, 5], version))
        }
    }

    @Test("enums as any 32 bits, NUL bytes inside strings cut the view as strlen does, nonzero padding ignored")
    func oddButAccepted() {
        var bytes = Self.patched(Self.v2One, word: Self.event + 4, UInt32.max)  // kind -1
        bytes = Self.patched(bytes, word: Self.event + 5, 77)  // verdict 77
        // exe_path "xxxxx": length word, then "xxxx", "x" + 3 padding bytes; a NUL in the middle and padding 0xFF.
        let exe = (Self.event + 14) * 4
        bytes[exe + 2] = 0
        bytes[exe + 5] = 0xFF
        bytes[exe + 7] = 0xFF
        #expect(Self.expectSame(bytes, .v2))
        let decoder = ViewBatchDecoder(.v2)
        bytes.withUnsafeBytes { #expect(decoder.finish($0)) }
        #expect(decoder.batch.events[0].kind == UInt32.max && decoder.batch.events[0].verdict == 77)
        #expect(Array(decoder.batch.events[0].executablePath) == Array("xx".utf8))
        // An agent id of only NULs is empty, as strlen says.
        var nul = Self.v2One
        for index in 4..<11 { nul[index] = 0 }
        #expect(Self.expectSame(nul, .v2))
    }

    @Test("fed piece by piece in a buffer that moves: the same batch as whole, and as rpcgen's")
    func incrementalInMovingBuffer() {
        for version in [Version.v2, .v3] {
            let bytes = Self.encode(Self.batch(count: 40, pathBytes: 7, digest: 5), version)
            for step in [1, 3, 97, 1000] {
                let decoder = ViewBatchDecoder(version)
                var previous: UnsafeMutableRawBufferPointer?
                var length = 0
                var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)  // replaced at the first step
                while length < bytes.count {
                    length = min(bytes.count, length + step)
                    // A new buffer every time, the old one scribbled over then freed: views must not point into it.
                    buffer = .allocate(byteCount: length, alignment: 1)
                    buffer.copyBytes(from: bytes[0..<length])
                    if let previous {
                        previous.initializeMemory(as: UInt8.self, repeating: 0xEE)
                        previous.deallocate()
                    }
                    previous = buffer
                    if length < bytes.count { #expect(decoder.decode(UnsafeRawBufferPointer(buffer))) }
                }
                #expect(decoder.finish(UnsafeRawBufferPointer(buffer)))
                RPCGenBatchReference.decode(UnsafeRawBufferPointer(buffer), version) { reference in
                    #expect(reference.map { decoder.batch.difference(from: $0) } == .some(nil), "step \(step)")
                }
                decoder.reset()
                buffer.deallocate()
            }
        }
    }

    @Test("gives up early on bytes that can never be a batch")
    func givesUpEarly() {
        let decoder = ViewBatchDecoder(.v2)
        Self.patched(Self.v2One, word: Self.countWord, 513).withUnsafeBytes { #expect(!decoder.decode($0)) }
        decoder.reset()
        Array(Self.v2One.prefix(50)).withUnsafeBytes { #expect(decoder.decode($0)) }  // only short: more may come
    }

    @Test("warm: a second batch of 512 reuses the first one's event storage, and the pool its decoder")
    func storageReused() {
        let pool = ViewBatchDecoderPool(.v2)
        let bytes = Self.encode(Self.batch(count: 512), .v2)
        let first = pool.take()
        bytes.withUnsafeBytes { #expect(first.finish($0)) }
        #expect(pool.decoder(of: first.argument) === first)
        let storage = first.batch.events.withUnsafeBufferPointer { $0.baseAddress }
        let capacity = first.batch.events.capacity
        first.reset()
        #expect(pool.decoder(of: first.argument) == nil)
        let second = pool.take()
        #expect(second === first)
        bytes.withUnsafeBytes { #expect(second.finish($0)) }
        #expect(second.batch.events.withUnsafeBufferPointer { $0.baseAddress } == storage)
        #expect(second.batch.events.capacity == capacity)
        second.reset()
        second.reset()  // twice: given back once
        #expect(pool.take() === second && pool.take() !== second)
    }
}
