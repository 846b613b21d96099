import ONCRPC
import TestSupport
import Testing

extension ONCRPCTests {
    /// Calls to rpcbind itself (program 100000), the one ONC RPC server every
    /// machine here runs: the client against a real libtirpc server.
    @Suite(.enabled(if: rpcbindIsRunning, "rpcbind is not running (start it with rpcbind -w)"))
    struct RPCBindCalls {
        init() { TestProcess.prepare() }

        static let direct: [RPCEndpoint] = [
            .tcp(host: "127.0.0.1", port: 111),
            .udp(host: "127.0.0.1", port: 111),
            .unix(path: "/run/rpcbind.sock"),
        ]

        @Test("NULL procedure of rpcbind, directly", arguments: direct)
        func nullProcedure(endpoint: RPCEndpoint) throws {
            let client = RPCClient(endpoint: endpoint, program: RPCBind.program, version: 3, timeout: .seconds(2))
            try client.ping()
            #expect(client.isConnected)
            #expect(client.connectedAddress == endpoint.description)
            try client.ping()  // the same handle serves a second call
        }

        @Test("NULL procedure of rpcbind, found through rpcbind", arguments: RPCTransport.allCases)
        func nullProcedureThroughRPCBind(transport: RPCTransport) throws {
            let client = RPCClient(
                endpoint: .rpcbind(host: "localhost", transport: transport), program: RPCBind.program, version: 4,
                timeout: .seconds(2))
            try client.ping()
            #expect(client.isConnected)
        }

        @Test("rpcbind's own registration: 100000 v3 tcp and udp on port 111, local on its socket")
        func lookupOfRPCBindItself() throws {
            let tcp = try RPCBind.lookup(host: "localhost", program: RPCBind.program, version: 3, transport: .tcp)
            guard case .tcp(_, let tcpPort) = tcp else {
                Issue.record("tcp lookup gave \(tcp)")
                return
            }
            #expect(tcpPort == 111)

            let udp = try RPCBind.lookup(host: "127.0.0.1", program: RPCBind.program, version: 3, transport: .udp)
            guard case .udp(_, let udpPort) = udp else {
                Issue.record("udp lookup gave \(udp)")
                return
            }
            #expect(udpPort == 111)

            let local = try RPCBind.lookup(host: "localhost", program: RPCBind.program, version: 3, transport: .local)
            guard case .unix(let path) = local else {
                Issue.record("local lookup gave \(local)")
                return
            }
            #expect(RPCBind.localSocketPaths.contains(path))
        }

        @Test("a program rpcbind does not know is programNotRegistered, from the lookup", arguments: RPCTransport.allCases)
        func programNotRegistered(transport: RPCTransport) throws {
            let client = RPCClient(
                endpoint: .rpcbind(host: "localhost", transport: transport), program: unregisteredProgram, version: 1,
                timeout: .seconds(2))
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .programNotRegistered)
            #expect(!client.isConnected)
            #expect(error.description.contains("RPC_PROGNOTREGISTERED"))
            #expect(error.description.contains("0x3f0a7e01"))
        }

        @Test("an unsupported version is PROG_MISMATCH with rpcbind's versions 2...4", arguments: direct)
        func versionMismatch(endpoint: RPCEndpoint) throws {
            let client = RPCClient(endpoint: endpoint, program: RPCBind.program, version: 9, timeout: .seconds(2))
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.status == .programVersionMismatch)
            #expect(error.supportedVersions == 2...4)
            #expect(!error.isConnectionLost)
            #expect(error.description.contains("server supports versions 2...4"))
            // A mismatch is an answer: the connection stays usable.
            #expect(client.isConnected)
        }

        @Test("register, look up and unregister a program with the local rpcbind")
        func registerAndUnregister() throws {
            let program = unregisteredProgram + 1
            defer { _ = try? RPCBind.unregister(program: program, version: 1, transport: .tcp) }
            let registered = try RPCBind.register(
                program: program, version: 1, transport: .tcp,
                universalAddress: RPCBind.universalAddress(host: "127.0.0.1", port: 4000))
            guard registered else {
                // Another owner (or an unprivileged user on some setups) may be refused.
                Issue.record("rpcbind refused the registration")
                return
            }
            #expect(try RPCBind.lookup(host: "localhost", program: program, version: 1, transport: .tcp)
                == .tcp(host: "127.0.0.1", port: 4000))
            #expect(try RPCBind.unregister(program: program, version: 1, transport: .tcp))
            let error = try #require(throws: RPCError.self) {
                try RPCBind.lookup(host: "localhost", program: program, version: 1, transport: .tcp)
            }
            #expect(error.status == .programNotRegistered)
        }
    }
}
