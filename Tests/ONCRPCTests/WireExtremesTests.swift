import ONCRPC
import SystemSupport
import TestSupport
import Testing

extension ONCRPCTests {
    /// The extreme lengths of the record layer and the call header, sent over
    /// real sockets: each closes only the connection that sent it (or is not
    /// answered, over UDP), and a valid call afterwards is answered.
    @Suite struct WireExtremes {
        init() { TestProcess.prepare() }

        static let null = RawRPC.call(xid: 77, program: unregisteredProgram, version: 1, procedure: 0)

        /// A NULL call whose credential length is `length` (with 8 bytes after it).
        static func callWithCredentialLength(_ length: UInt32) -> [UInt8] {
            RawRPC.XDR.build { xdr in
                for value: UInt32 in [78, 0, 2, unregisteredProgram, 1, 0, 1, length] { xdr.word(value) }
                xdr.hyper(0)
            }
        }

        /// What each stream connection sends before it is closed.
        static let badStreams: [(String, [UInt8])] = [
            ("the largest record mark", RawRPC.XDR.build { $0.word(0xFFFF_FFFF) } + [1, 2, 3, 4]),
            ("record so far + the next fragment over the 1 MiB cap",
             RawRPC.XDR.build { $0.word(600_000) } + [UInt8](repeating: 0, count: 600_000) + RawRPC.XDR.build { $0.word(0x8000_0000 | 600_000) }),
            ("a credential length that wraps its padding", RawRPC.recordMarked(callWithCredentialLength(0xFFFF_FFFD))),
            ("a credential length of 2^32 - 1", RawRPC.recordMarked(callWithCredentialLength(0xFFFF_FFFF))),
        ]

        @Test("stream: each extreme closes its connection; a new connection's call is answered")
        func streams() throws {
            let directory = try FileSystem.makeTemporaryDirectory(prefix: "oncrpc-extremes")
            defer { FileSystem.removeTree(directory) }
            let server = try RunningServer([.tcp(host: "127.0.0.1", port: 0), .unix(path: directory + "/server.sock")]).start()
            defer { server.stop() }
            for endpoint in server.listeners.map(\.endpoint) {
                for (name, bytes) in Self.badStreams {
                    let bad = try RawRPC.Connection(endpoint, timeout: .seconds(5))
                    _ = bad.send(bytes)  // the server may close before it has read everything
                    #expect(bad.closedByPeer(), "\(name) over \(endpoint)")
                    let good = try RawRPC.Connection(endpoint, timeout: .seconds(5))
                    #expect(good.send(RawRPC.recordMarked(Self.null)))
                    #expect(good.receiveReply() == [77] + RawRPC.acceptedReplyHeader(0), "after \(name) over \(endpoint)")
                }
            }
        }

        @Test("udp: a datagram with a huge credential length is not answered; the next call on the same socket is")
        func datagrams() throws {
            let server = try RunningServer([.udp(host: "127.0.0.1", port: 0)]).start()
            defer { server.stop() }
            let connection = try RawRPC.Connection(server.listeners[0].endpoint, timeout: .seconds(1))
            for length: UInt32 in [0xFFFF_FFFD, 0xFFFF_FFFF] {
                #expect(connection.send(Self.callWithCredentialLength(length)))
                #expect(connection.receiveDatagram() == nil)
                #expect(connection.send(Self.null))
                #expect(connection.receiveDatagram() == [77] + RawRPC.acceptedReplyHeader(0))
            }
        }
    }
}
