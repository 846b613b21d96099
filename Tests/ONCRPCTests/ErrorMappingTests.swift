import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

extension ONCRPCTests {
    /// Each way a call fails becomes the right `RPCError`: status, errno,
    /// function, and a description a person can read.
    @Suite struct ErrorMapping {
        init() { TestProcess.prepare() }

        @Test("tcp port with nothing listening: cantConnect, ECONNREFUSED")
        func connectionRefused() throws {
            // Bound but not listening: connect is refused, and no one else can take the port meanwhile.
            let placeholder = try Sockets.loopback(datagram: false)
            let port = try Sockets.port(of: placeholder)
            let client = RPCClient(endpoint: .tcp(host: "127.0.0.1", port: port), program: unregisteredProgram, version: 1)
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .cantConnect)
            #expect(error.errno == ECONNREFUSED)
            #expect(error.function == "connect")
            #expect(error.isConnectionLost)
            #expect(!client.isConnected)
            #expect(error.description.hasPrefix("connect failed: RPC_CANTCONNECT (RPC: Couldn't make connection), errno 111 (Connection refused)"))
            #expect(error.description.contains("Connection refused"))
            #expect(error.description.contains("127.0.0.1:\(port)"))
        }

        @Test("unix socket path that does not exist: cantConnect, ENOENT")
        func missingSocketPath() throws {
            let path = temporarySocketPath("missing")
            let client = RPCClient(endpoint: .unix(path: path), program: unregisteredProgram, version: 1)
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .cantConnect)
            #expect(error.errno == ENOENT)
            #expect(error.description.contains("No such file or directory"))
            #expect(error.description.contains(path))
        }

        @Test("unix socket path that is not a socket server: cantConnect, ECONNREFUSED")
        func socketFileWithoutServer() throws {
            let path = temporarySocketPath("stale")
            try Sockets.listenLocal(path: path).close()  // the file stays, nobody listens: a crashed server's leftover
            defer { try? FileSystem.removeFile(path) }
            let client = RPCClient(endpoint: .unix(path: path), program: unregisteredProgram, version: 1)
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .cantConnect)
            #expect(error.errno == ECONNREFUSED)
        }

        @Test("unix socket path longer than sockaddr_un holds: unknownAddress, ENAMETOOLONG")
        func socketPathTooLong() throws {
            let client = RPCClient(endpoint: .unix(path: "/tmp/" + String(repeating: "x", count: 200)), program: 1, version: 1)
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .unknownAddress)
            #expect(error.errno == ENAMETOOLONG)
            #expect(error.function == "sockaddr_un")
            #expect(error.description.contains("at most 107 bytes"), "\(error)")
        }

        @Test("udp port with nothing bound: the ICMP error comes back as a lost connection, ECONNREFUSED")
        func udpNothingListening() throws {
            // Bound to reserve the port, then closed: nothing receives on it.
            let port = try Sockets.port(of: Sockets.loopback(datagram: true))  // closed again at once
            let client = RPCClient(
                endpoint: .udp(host: "127.0.0.1", port: port), program: unregisteredProgram, version: 1,
                timeout: .seconds(5))
            let (error, elapsed) = measure { #expect(throws: RPCError.self) { try client.ping() } }
            let failure = try #require(error)
            #expect(failure.status == .cantReceive)
            #expect(failure.errno == ECONNREFUSED)
            #expect(failure.isConnectionLost)
            #expect(elapsed < .milliseconds(1500), "ECONNREFUSED should end the call long before its 5 s timeout, took \(elapsed)")
        }

        @Test("a server that accepts and never answers: timedOut within about the timeout")
        func timeoutAgainstSilentServer() throws {
            let server = try StreamResponder(.neverAnswer)
            defer { server.stop() }
            // Bounds are generous above (1.5 s) so a loaded 2-core machine does not fail them;
            // what they rule out is the 5 s default, or blocking.
            let client = RPCClient(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 1,
                timeout: .seconds(5))
            let (error, elapsed) = measure { #expect(throws: RPCError.self) { try client.ping(timeout: .milliseconds(200)) } }
            let failure = try #require(error)
            #expect(failure.status == .timedOut)
            #expect(failure.errno == 0)
            #expect(!failure.isConnectionLost)
            #expect(elapsed >= .milliseconds(190) && elapsed < .milliseconds(1500), "took \(elapsed)")
            #expect(failure.description.hasPrefix("clnt_call failed: RPC_TIMEDOUT (RPC: Timed out)"))
            #expect(failure.description.contains("tcp 127.0.0.1:\(server.port) program 1057652225 (0x3f0a7e01) version 1 procedure 0"))
            // A timed-out handle is dropped (its late reply would still be on the stream): the next call connects again.
            #expect(!client.isConnected)
            #expect(server.calls == 1)

            // The client's own timeout applies to calls that do not name one.
            client.timeout = .milliseconds(100)
            let (_, second) = measure { #expect(throws: RPCError.self) { try client.ping() } }
            #expect(second >= .milliseconds(90) && second < .milliseconds(1500), "took \(second)")
            #expect(server.accepted == 2, "the second call came on a new connection")
        }

        @Test("a server answering PROG_MISMATCH: programVersionMismatch with the versions it has")
        func programMismatch() throws {
            let server = try StreamResponder(.answer(.programMismatch(low: 1, high: 1)))
            defer { server.stop() }
            let client = RPCClient(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 2,
                timeout: .seconds(2))
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .programVersionMismatch)
            #expect(error.supportedVersions == 1...1)
            #expect(error.function == "clnt_call")
            #expect(error.description.contains("RPC_PROGVERSMISMATCH"))
            #expect(error.description.contains("server supports versions 1...1"))
            #expect(error.description.contains("version 2"))
        }

        @Test("every status has its C name and libtirpc's text")
        func statusNames() {
            for status in RPCStatus.allCases {
                #expect(status.cName.hasPrefix("RPC_"))
                #expect(!status.text.isEmpty)
                #expect(!status.text.contains("unknown error code"), "\(status.cName): \(status.text)")
            }
            #expect(RPCStatus.timedOut.text == "RPC: Timed out")
        }

        @Test("endpoint parsing: the command-line forms")
        func endpointParsing() {
            #expect(RPCEndpoint(parsing: "tcp://127.0.0.1:4000") == .tcp(host: "127.0.0.1", port: 4000))
            #expect(RPCEndpoint(parsing: "udp://[::1]:4000") == .udp(host: "::1", port: 4000))
            #expect(RPCEndpoint(parsing: "unix:///run/x.sock") == .unix(path: "/run/x.sock"))
            #expect(RPCEndpoint(parsing: "/run/x.sock") == .unix(path: "/run/x.sock"))
            #expect(RPCEndpoint(parsing: "rpcbind://host/udp") == .rpcbind(host: "host", transport: .udp))
            #expect(RPCEndpoint(parsing: "local") == .rpcbind(host: "localhost", transport: .local))
            #expect(RPCEndpoint(parsing: "tcp://host") == nil)
            #expect(RPCEndpoint(parsing: "tcp://host:70000") == nil)
            #expect(RPCEndpoint(parsing: "ftp://host:21") == nil)
            #expect(RPCEndpoint.tcp(host: "::1", port: 7).description == "tcp [::1]:7")
        }

        @Test("universal addresses: IPv4, IPv6, wildcard, local")
        func universalAddresses() {
            #expect(RPCBind.universalAddress(host: "127.0.0.1", port: 4000) == "127.0.0.1.15.160")
            #expect(RPCBind.endpoint(universalAddress: "127.0.0.1.15.160", transport: .tcp, host: "x") == .tcp(host: "127.0.0.1", port: 4000))
            #expect(RPCBind.endpoint(universalAddress: "::1.0.111", transport: .udp, host: "x") == .udp(host: "::1", port: 111))
            #expect(RPCBind.endpoint(universalAddress: "/run/x.sock", transport: .local, host: "x") == .unix(path: "/run/x.sock"))
            // A wildcard registration: reached at the host asked, the loopback address of its family on this machine.
            #expect(RPCBind.endpoint(universalAddress: "0.0.0.0.15.160", transport: .tcp, host: "localhost") == .tcp(host: "127.0.0.1", port: 4000))
            #expect(RPCBind.endpoint(universalAddress: "::.15.160", transport: .tcp, host: "localhost") == .tcp(host: "::1", port: 4000))
            #expect(RPCBind.endpoint(universalAddress: "0.0.0.0.15.160", transport: .udp, host: "collector.example") == .udp(host: "collector.example", port: 4000))
            #expect(RPCBind.endpoint(universalAddress: "127.0.0.1.300.1", transport: .tcp, host: "x") == nil)
            #expect(RPCBind.endpoint(universalAddress: "garbage", transport: .tcp, host: "x") == nil)
        }
    }
}
