@testable import ONCRPC
import TestSupport
import Testing

extension ONCRPCTests {
    /// The call header parser on its own: every length it reads from the wire.
    @Suite struct CallHeader {
        /// A call whose credential and verifier bodies are given (their lengths may lie).
        static func call(credential: [UInt8] = [], credentialLength: UInt32? = nil, verifier: [UInt8] = [],
                         verifierLength: UInt32? = nil, arguments: [UInt8] = []) -> [UInt8] {
            RawRPC.XDR.build { xdr in
                for value: UInt32 in [9, 0, 2, 0x2000_0A7E, 2, 1] { xdr.word(value) }
                xdr.word(1)  // AUTH_SYS
                xdr.opaque(credential, declaredLength: credentialLength)
                xdr.word(0)
                xdr.opaque(verifier, declaredLength: verifierLength)
            } + arguments
        }

        static func parse(_ bytes: [UInt8]) -> RPCServerMessage.Call? {
            bytes.withUnsafeBytes { RPCServerMessage.parseCall($0) }
        }

        @Test("a call's fields and where its arguments start, with bodies of 0, 1, 3 and the largest 400 bytes")
        func fields() throws {
            for size in [0, 1, 3, 400] {
                let body = [UInt8](repeating: 0xA5, count: size)
                let call = try #require(Self.parse(Self.call(credential: body, verifier: body, arguments: [1, 2, 3, 4])))
                #expect(call.xid == 9 && call.rpcVersion == 2 && call.program == 0x2000_0A7E && call.version == 2)
                #expect(call.procedure == 1 && call.credentialFlavor == 1)
                #expect(call.argumentsOffset == 40 + 2 * ((size + 3) / 4 * 4), "bodies of \(size)")
            }
        }

        @Test("a body over 400 bytes, or a length near 2^32 that would wrap its padding, is no call",
              arguments: [401, 0xFFFF_FFFC, 0xFFFF_FFFD, 0xFFFF_FFFF, 0x8000_0000] as [UInt32])
        func hugeLengths(length: UInt32) {
            let body = [UInt8](repeating: 0, count: 404)
            #expect(Self.parse(Self.call(credential: body, credentialLength: length)) == nil)
            #expect(Self.parse(Self.call(verifier: body, verifierLength: length)) == nil)
        }

        @Test("a length that claims more than the record holds, padding included, is no call")
        func shortBodies() {
            #expect(Self.parse(Self.call(credential: [1, 2, 3], credentialLength: 8)) == nil)
            // Three body bytes and no padding word: the padding is missing.
            let unpadded = Array(Self.call(verifier: [1, 2, 3]).dropLast(1))
            #expect(Self.parse(unpadded) == nil)
        }

        @Test("every prefix of a header is no call; once the header is whole, a prefix parses as the record does")
        func prefixes() throws {
            let record = Self.call(credential: Array(repeating: 7, count: 20), verifier: [1], arguments: Array(repeating: 9, count: 16))
            let whole = try #require(Self.parse(record))
            for length in 0..<whole.argumentsOffset {
                #expect(Self.parse(Array(record.prefix(length))) == nil, "prefix of \(length)")
            }
            for length in whole.argumentsOffset...record.count {
                let call = Self.parse(Array(record.prefix(length)))
                #expect(call?.argumentsOffset == whole.argumentsOffset && call?.xid == whole.xid, "prefix of \(length)")
            }
        }

        @Test("a reply, or anything but CALL as the message type, is no call")
        func notACall() {
            var reply = Self.call()
            reply[7] = 1
            #expect(Self.parse(reply) == nil)
            #expect(Self.parse([0, 0, 0, 1, 0, 0, 0, 1]) == nil)
        }
    }
}
