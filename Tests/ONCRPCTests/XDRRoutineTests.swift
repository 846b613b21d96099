import CAuthRelayRPC
import ONCRPC
import TestSupport
import Testing

extension ONCRPCTests {
    /// `XDRRoutine` over real rpcgen routines, and the C decoder's own bound checks
    /// against hand-made bytes (what a hostile or broken peer could send).
    @Suite struct XDRRoutines {
        init() { TestProcess.prepare() }

        static let event = XDRRoutine(CAuthRelayRPC_xdr_ar_event)
        static let batch = XDRRoutine(CAuthRelayRPC_xdr_ar_event_batch)

        /// XDR bytes of an `ar_event` whose exe_path has `pathLength` bytes, written
        /// by hand: 52 bytes of fixed fields, then the three counted fields.
        static func eventBytes(pathLength: Int, digestLength: Int = 0) -> [UInt8] {
            var xdr = RawRPC.XDR()
            xdr.event(sequence: 7, exe: [UInt8](repeating: 0x2f, count: pathLength), target: [],
                      digest: [UInt8](repeating: 0xab, count: digestLength))
            #expect(RawRPC.word(xdr.bytes, 52) == UInt32(pathLength))  // the first counted field
            return xdr.bytes
        }

        static func decodes(_ routine: XDRRoutine, _ bytes: [UInt8], as type: (some Any).Type) -> Bool {
            bytes.withUnsafeBytes { routine.decode($0, as: type) { _ in true } } ?? false
        }

        @Test("the C decoder takes a 4096-byte path and refuses a declared 4097")
        func pathBound() {
            #expect(Self.decodes(Self.event, Self.eventBytes(pathLength: 4096), as: ar_event.self))
            #expect(!Self.decodes(Self.event, Self.eventBytes(pathLength: 4097), as: ar_event.self))
            // A length prefix far past the bound and past the bytes: refused before any allocation.
            var huge = Self.eventBytes(pathLength: 0)
            huge.replaceSubrange(52..<56, with: [0x7f, 0xff, 0xff, 0xff])
            #expect(!Self.decodes(Self.event, huge, as: ar_event.self))
        }

        @Test("the C decoder takes a 64-byte digest and refuses 65")
        func digestBound() {
            #expect(Self.decodes(Self.event, Self.eventBytes(pathLength: 1, digestLength: 64), as: ar_event.self))
            #expect(!Self.decodes(Self.event, Self.eventBytes(pathLength: 1, digestLength: 65), as: ar_event.self))
        }

        @Test("the C decoder refuses a batch declaring 513 events, and an agent id of 65 bytes")
        func batchBounds() {
            func batchBytes(agentID: Int, count: UInt32, events: Int) -> [UInt8] {
                var xdr = RawRPC.XDR()
                xdr.eventBatch(agent: [UInt8](repeating: 0x61, count: agentID), boot: [], first: 1, events: events,
                               declaredEvents: count, exe: Array("///".utf8), target: [])
                return xdr.bytes
            }
            #expect(Self.decodes(Self.batch, batchBytes(agentID: 64, count: 2, events: 2), as: ar_event_batch.self))
            #expect(!Self.decodes(Self.batch, batchBytes(agentID: 65, count: 2, events: 2), as: ar_event_batch.self))
            #expect(!Self.decodes(Self.batch, batchBytes(agentID: 1, count: 513, events: 513), as: ar_event_batch.self))
            // Truncated: declares two events, carries one.
            #expect(!Self.decodes(Self.batch, batchBytes(agentID: 1, count: 2, events: 1), as: ar_event_batch.self))
        }

        @Test("encode refuses a value over a bound; decode reads back what encode wrote")
        func encodeBound() throws {
            var path = Array("/usr/bin/true".utf8CString)
            // 65 bytes behind the pointer although 3 are encoded: the over-bound encode below must
            // fail on the length, and ASan's xdr_bytes interceptor reads all `digest_len` bytes
            // before libtirpc checks the bound (a 3-byte buffer is a heap overflow under ASan).
            var digest: [UInt8] = [1, 2, 3] + [UInt8](repeating: 0, count: 62)
            let bytes = try path.withUnsafeMutableBufferPointer { pathPointer in
                try digest.withUnsafeMutableBytes { digestBytes in
                    var wire = ar_event()
                    wire.seq = 9
                    wire.exe_path = pathPointer.baseAddress
                    wire.target_path = pathPointer.baseAddress
                    wire.digest.digest_len = 3
                    wire.digest.digest_val = digestBytes.baseAddress?.assumingMemoryBound(to: CChar.self)
                    let encoded = try #require(Self.event.encode(&wire))
                    wire.digest.digest_len = 65  // over AR_DIGEST_MAX
                    #expect(Self.event.encode(&wire) == nil)
                    return encoded
                }
            }
            #expect(bytes.count == 52 + 4 + 16 + 4 + 16 + 4 + 4)
            let seq = bytes.withUnsafeBytes { Self.event.decode($0, as: ar_event.self) { UInt64($0.pointee.seq) } }
            #expect(seq == 9)
            // Too small a buffer: nil, not a partial encoding.
            var small = [UInt8](repeating: 0, count: 16)
            let written = small.withUnsafeMutableBytes { buffer in
                path.withUnsafeMutableBufferPointer { pathPointer in
                    var wire = ar_event()
                    wire.exe_path = pathPointer.baseAddress
                    wire.target_path = pathPointer.baseAddress
                    return Self.event.encode(&wire, into: buffer)
                }
            }
            #expect(written == nil)
        }

        @Test("void encodes to no bytes")
        func voidEncodes() {
            var nothing: Int32 = 0
            #expect(XDRRoutine.void.encode(&nothing) == [])
        }
    }
}

extension ONCRPCTests.XDRRoutines {
    @Test("xdr_wrapstring is bounded at RPC_MAXDATASIZE (9000 bytes), not unbounded")
    func wrapStringBound() {
        func encodes(_ count: Int) -> Bool {
            var text = [CChar](repeating: 0x61, count: count) + [0]
            return text.withUnsafeMutableBufferPointer { buffer in
                var pointer: UnsafeMutablePointer<CChar>? = buffer.baseAddress
                return XDRRoutine.wrapString.encode(&pointer).map { $0.count == 4 + (count + 3) / 4 * 4 } ?? false
            }
        }
        #expect(encodes(0))
        #expect(encodes(9000))
        #expect(!encodes(9001))
    }
}
