import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

extension ONCRPCTests {
    /// How `RPCServer` opens its listeners: the unix socket's file and mode, a
    /// stale file, a second instance, what it refuses, and its stop handle.
    @Suite struct ServerListeners {
        init() { TestProcess.prepare() }

        /// A fresh directory for socket files, removed by the caller.
        static func directory(_ tag: String) throws -> String {
            try FileSystem.makeTemporaryDirectory(prefix: "oncrpc-\(tag)")
        }

        @Test("the unix socket file has exactly the mode asked, nothing else is left beside it, and it serves",
              arguments: [0o600, 0o640, 0o666] as [UInt32])
        func unixSocketMode(mode: UInt32) throws {
            let directory = try Self.directory("mode")
            defer { FileSystem.removeTree(directory) }
            let path = directory + "/server.sock"
            let server = try RunningServer([.unix(path: path, mode: mode)]).start()
            defer { server.stop() }

            let status = try #require(try FileSystem.status(path, followingLinks: false))
            #expect(status.kind == .socket)
            #expect(status.mode == mode, "mode \(String(status.mode, radix: 8))")
            #expect(try FileSystem.listDirectory(directory) == ["server.sock"], "the private bind directory is gone")
            try RPCClient(endpoint: .unix(path: path), program: unregisteredProgram, version: 1, timeout: .seconds(2)).ping()

            #expect(server.stop())
            #expect(try FileSystem.status(path, followingLinks: false) == nil, "the socket file goes with the server")
        }

        @Test("a unix socket path that only just fits sockaddr_un (107 bytes) is bound too")
        func longestUnixPath() throws {
            let directory = try Self.directory("long")
            defer { FileSystem.removeTree(directory) }
            // A short name in a deep directory: the private bind directory's path would not fit.
            let deep = directory + "/" + String(repeating: "d", count: 104 - directory.utf8.count)
            try FileSystem.makeDirectory(deep, mode: 0o700)
            let path = deep + "/s"
            #expect(path.utf8.count == 107)
            let server = try RunningServer([.unix(path: path, mode: 0o640)]).start()
            defer { server.stop() }
            #expect(try FileSystem.status(path, followingLinks: false)?.mode == 0o640)
            #expect(try FileSystem.listDirectory(deep) == ["s"])
            try RPCClient(endpoint: .unix(path: path), program: unregisteredProgram, version: 1, timeout: .seconds(2)).ping()
        }

        @Test("a stale socket file is replaced; a live server's is refused; another kind of file is not touched")
        func existingFiles() throws {
            let directory = try Self.directory("existing")
            defer { FileSystem.removeTree(directory) }
            let path = directory + "/server.sock"

            try Sockets.listenLocal(path: path).close()  // a killed server's leftover: nobody listens
            let first = try RunningServer([.unix(path: path)]).start()
            defer { first.stop() }
            try RPCClient(endpoint: .unix(path: path), program: unregisteredProgram, version: 1, timeout: .seconds(2)).ping()

            let second = #expect(throws: RPCServerError.self) { try RunningServer.make([.unix(path: path)]) }
            guard case .unixSocketInUse(path)? = second else {
                Issue.record("a second instance: \(String(describing: second))")
                return
            }
            #expect(second?.description == "unix socket \(path) is in use by a running server")
            try RPCClient(endpoint: .unix(path: path), program: unregisteredProgram, version: 1, timeout: .seconds(2)).ping()

            let plain = directory + "/plain"
            try FileSystem.writeFile(plain, Array("keep".utf8))
            let refused = #expect(throws: RPCServerError.self) { try RunningServer.make([.unix(path: plain)]) }
            guard case .system(let error, _)? = refused else {
                Issue.record("a regular file: \(String(describing: refused))")
                return
            }
            #expect(error.errno == EEXIST)
            #expect(refused?.description == "bind failed for unix \(plain): File exists (not a socket file)")
            #expect(FileSystem.readText(plain) == "keep")
        }

        @Test("what a listener cannot be is one clear line")
        func refusedListeners() throws {
            let long = "/tmp/" + String(repeating: "x", count: 200)
            let tooLong = #expect(throws: RPCServerError.self) { try RunningServer.make([.unix(path: long)]) }
            guard case .system(let error, .unix(long, _))? = tooLong else {
                Issue.record("a path over sockaddr_un: \(String(describing: tooLong))")
                return
            }
            #expect(error.errno == ENAMETOOLONG)
            #expect(tooLong?.description == "sockaddr_un failed for unix \(long): File name too long (a unix socket path holds at most 107 bytes)")

            let missing = "/nonexistent-oncrpc-dir/server.sock"
            let noDirectory = #expect(throws: RPCServerError.self) { try RunningServer.make([.unix(path: missing)]) }
            guard case .system(let failure, _)? = noDirectory else {
                Issue.record("a missing directory: \(String(describing: noDirectory))")
                return
            }
            #expect(failure.errno == ENOENT)
            #expect(noDirectory?.description.hasSuffix("for unix \(missing): No such file or directory") == true, "\(noDirectory!)")

            let address = #expect(throws: RPCServerError.self) { try RunningServer.make([.tcp(host: "not-an-address", port: 0)]) }
            #expect(address?.description == "bind address \"not-an-address\" is not an IPv4 address")
        }

        @Test("a tcp port in use is addressInUse; port 0 is replaced by the port the kernel chose")
        func tcpPorts() throws {
            let server = try RunningServer([.tcp(host: "localhost", port: 0), .udp(host: "127.0.0.1", port: 0)]).start()
            defer { server.stop() }
            guard case .tcp("127.0.0.1", let port) = server.listeners[0], port != 0,
                  case .udp("127.0.0.1", let udpPort) = server.listeners[1], udpPort != 0 else {
                Issue.record("listeners as bound: \(server.listeners)")
                return
            }
            for endpoint in [RPCEndpoint.tcp(host: "127.0.0.1", port: port), .udp(host: "127.0.0.1", port: udpPort)] {
                try RPCClient(endpoint: endpoint, program: unregisteredProgram, version: 1, timeout: .seconds(2)).ping()
            }
            let taken = #expect(throws: RPCServerError.self) { try RunningServer.make([.tcp(host: "127.0.0.1", port: port)]) }
            #expect(taken?.description == "tcp 127.0.0.1:\(port) is already in use by another process")
        }

        @Test("hand-made calls over each transport: an unserved procedure is PROC_UNAVAIL, a record in fragments is served")
        func rawCalls() throws {
            let directory = try Self.directory("raw")
            defer { FileSystem.removeTree(directory) }
            let server = try RunningServer([.tcp(host: "127.0.0.1", port: 0), .udp(host: "127.0.0.1", port: 0),
                                            .unix(path: directory + "/server.sock")]).start()
            defer { server.stop() }
            for endpoint in server.listeners.map(\.endpoint) {
                let connection = try RawRPC.Connection(endpoint, timeout: .seconds(2))
                let unserved = RawRPC.call(xid: 41, program: unregisteredProgram, version: 1, procedure: 9)
                if endpoint.transport == .udp {
                    #expect(connection.send(unserved))
                    #expect(connection.receiveDatagram() == [41] + RawRPC.acceptedReplyHeader(3), "\(endpoint)")
                    continue
                }
                #expect(connection.send(RawRPC.recordMarked(unserved)))
                #expect(connection.receiveReply() == [41] + RawRPC.acceptedReplyHeader(3), "\(endpoint)")
                let null = RawRPC.call(xid: 42, program: unregisteredProgram, version: 1, procedure: 0)
                for fragment in RawRPC.fragments(null, size: 7) { #expect(connection.send(fragment)) }
                #expect(connection.receiveReply() == [42] + RawRPC.acceptedReplyHeader(0), "\(endpoint)")
                // Not a call at all: the stream is out of step, and the server closes it.
                #expect(connection.send(RawRPC.recordMarked([0, 0, 0, 1, 0, 0, 0, 1])))
                #expect(connection.closedByPeer(), "\(endpoint)")
            }
        }

        @Test("a stop handle outlives its server: a late requestStop writes into no descriptor reused meanwhile")
        func lateStop() throws {
            let directory = try Self.directory("late-stop")
            defer { FileSystem.removeTree(directory) }
            var server: RPCServer? = try RunningServer.make([])
            let handle = try #require(server?.stopHandle)
            server = nil  // closes what the server owned; the handle keeps its wake-up signal
            // Descriptors are given lowest first: this file would get a number the server freed.
            let file = try FileDescriptor.open(directory + "/victim", O_RDWR | O_CREAT)
            handle.requestStop()
            handle.requestStop()
            #expect(try file.status().size == 0)
        }
    }
}
