import Glibc
import ONCRPC
import SystemSupport
import TestSupport
import Testing

extension ONCRPCTests {
    /// The libtirpc traps `RPCClient` handles (unbounded sends, UDP handles poisoned
    /// by late replies, no reconnect) and the one the process handles (SIGPIPE), each
    /// reproduced against a real socket.
    @Suite struct Traps {
        init() { TestProcess.prepare() }

        /// Waits (bounded) until `condition` holds.
        static func waitUntil(_ limit: Duration = .seconds(2), _ condition: () -> Bool) -> Bool {
            let deadline = ContinuousClock.now + limit
            while !condition() {
                if ContinuousClock.now >= deadline { return false }
                SystemClock.sleep(.milliseconds(2))
            }
            return true
        }

        /// Runs `bind` (a server on a given port) again while it fails with EADDRINUSE, for up
        /// to a second: other suites of this process bind and connect beside these tests, and
        /// one of their sockets may briefly own the port a test must bind again.
        static func retryingAddressInUse<T: ~Copyable>(_ bind: () throws -> T) throws -> T {
            let deadline = ContinuousClock.now + .seconds(1)
            while true {
                do {
                    return try bind()
                } catch let failure as SystemError where failure.errno == EADDRINUSE && ContinuousClock.now < deadline {
                    SystemClock.sleep(.milliseconds(10))
                }
            }
        }

        @Test("with SIGPIPE ignored (as executables and TestProcess do), writing to a connection the server closed is an error, not a dead process")
        func sigpipeIsIgnored() throws {
            let server = try StreamResponder(.closeOnAccept)
            defer { server.stop() }
            let client = RPCClient(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 1,
                timeout: .seconds(1))

            // The library does not ignore it: the process does, once (TestProcess.prepare in init).
            var action = sigaction()
            sigaction(SIGPIPE, nil, &action)
            #expect(unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self))

            try client.connect()
            #expect(Self.waitUntil { server.accepted == 1 })
            SystemClock.sleep(.milliseconds(20))  // let the server's FIN arrive
            // 4 MB: many write() calls, the later ones after the peer's RST, which is where SIGPIPE is raised.
            let argument = LargeArgument()
            let error = try #require(throws: RPCError.self) { try argument.send(client) }
            #expect(error.isConnectionLost)
            #expect([EPIPE, ECONNRESET].contains(error.errno), "\(error)")
            #expect(!client.isConnected)
            // Still alive, and the next call reports the dead server again rather than hanging.
            let again = try #require(throws: RPCError.self) { try client.ping() }
            #expect(again.isConnectionLost)
        }

        @Test("a send that cannot complete (server never reads) returns within about the call timeout")
        func blockedSendIsBounded() throws {
            // A small receive buffer and no reads: the client's send buffer fills after a few MiB.
            let server = try StreamResponder(receiveBuffer: 4096, .neverRead)
            defer { server.stop() }
            let timeout = Duration.milliseconds(200)
            let client = RPCClient(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 1,
                timeout: timeout)
            let argument = LargeArgument()

            var last: RPCError?
            var slowest = Duration.zero
            for _ in 0..<32 {
                let start = ContinuousClock.now
                do {
                    try argument.send(client)
                    Issue.record("a server that never reads answered")
                } catch {
                    last = error
                }
                slowest = max(slowest, ContinuousClock.now - start)
                // Until the buffers are full, each call is sent whole and times out waiting for the reply.
                guard last?.status == .timedOut else { break }
            }
            let failure = try #require(last)
            #expect(failure.status == .cantSend, "\(failure)")
            #expect(failure.isConnectionLost)
            #expect(failure.errno == EAGAIN)
            #expect(!client.isConnected, "a half-sent record leaves the stream out of step: the handle must go")
            #expect(slowest < .milliseconds(1500), "slowest call took \(slowest) with a \(timeout) timeout")
        }

        @Test("one-way calls against a server that never reads: bounded too")
        func blockedOneWayIsBounded() throws {
            let server = try StreamResponder(receiveBuffer: 4096, .neverRead)
            defer { server.stop() }
            let timeout = Duration.milliseconds(200)
            let client = RPCClient(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 1,
                timeout: timeout)
            let argument = LargeArgument(events: 8)  // 66 kB: each call fills libtirpc's 64 KiB buffer
            var failure: RPCError?
            var slowest = Duration.zero
            for _ in 0..<2_000 where failure == nil {
                let start = ContinuousClock.now
                do {
                    try argument.sendOneWay(client)
                } catch {
                    failure = error
                }
                slowest = max(slowest, ContinuousClock.now - start)
            }
            let error = try #require(failure, "2000 one-way calls of 66 kB never filled the buffers")
            #expect(error.status == .cantSend, "\(error)")
            #expect(slowest < .milliseconds(1500), "slowest call took \(slowest) with a \(timeout) timeout")
        }

        @Test("one-way calls are buffered and flushed by the next normal call")
        func oneWayCallsAreFlushed() throws {
            let server = try StreamResponder(.answer(.success))
            defer { server.stop() }
            let client = RPCClient(
                endpoint: .tcp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 1,
                timeout: .seconds(2))
            let argument = LargeArgument(events: 1, pathBytes: 100)
            for _ in 0..<10 {
                try argument.sendOneWay(client)
            }
            try client.ping()
            #expect(Self.waitUntil { server.calls == 11 }, "server saw \(server.calls) calls")

            let udp = RPCClient(endpoint: .udp(host: "127.0.0.1", port: 9), program: 1, version: 1)
            let error = try #require(throws: RPCError.self) { try argument.sendOneWay(udp) }
            #expect(error.status == .unknownProtocol)
        }

        @Test("UDP: after a timeout the handle is recreated, so a late reply cannot poison the next call")
        func udpHandleRecreatedAfterTimeout() throws {
            // The first reply is held past the first call's timeout and then sent, while the
            // second call waits: the stale datagram that, on the same handle, makes clnt_dg
            // give up on the second call too (it subtracts the whole timeout on a stale reply).
            let server = try DatagramResponder(delays: [.milliseconds(350)])
            defer { server.stop() }
            let client = RPCClient(
                endpoint: .udp(host: "127.0.0.1", port: server.port), program: unregisteredProgram, version: 1,
                timeout: .seconds(2))

            let (first, elapsed) = measure { #expect(throws: RPCError.self) { try client.ping(timeout: .milliseconds(200)) } }
            #expect(first?.status == .timedOut)
            #expect(elapsed >= .milliseconds(190) && elapsed < .milliseconds(1500), "took \(elapsed)")
            #expect(!client.isConnected, "a UDP handle is dropped after a timeout")

            for _ in 0..<3 {
                try client.ping()
            }
            // Four datagrams for four calls: the timed-out call was not retransmitted either.
            #expect(server.calls == 4)
        }

        @Test("UDP: a socket that never answers, then a responder on the same port: the next call succeeds")
        func udpSilentThenAnswering() throws {
            let silent = try DatagramResponder(answers: false)
            defer { silent.stop() }
            let port = silent.port
            let client = RPCClient(
                endpoint: .udp(host: "127.0.0.1", port: port), program: unregisteredProgram, version: 1,
                timeout: .seconds(2))
            let error = try #require(throws: RPCError.self) { try client.ping(timeout: .milliseconds(150)) }
            #expect(error.status == .timedOut)
            silent.stop()

            let server = try Self.retryingAddressInUse { try DatagramResponder(port: port) }
            defer { server.stop() }
            try client.ping()
            #expect(server.calls == 1)
        }

        @Test("a dead connection is reported as lost, and the next call reconnects to the restarted server",
              arguments: [false, true])
        func reconnectAfterRestart(local: Bool) throws {
            let path = temporarySocketPath("restart")
            var server = local ? try StreamResponder(path: path, .answer(.success)) : try StreamResponder(.answer(.success))
            defer { server.stop() }  // whichever runs at the end (stop is idempotent)
            let port = server.port
            let endpoint: RPCEndpoint = local ? .unix(path: path) : .tcp(host: "127.0.0.1", port: port)
            let client = RPCClient(endpoint: endpoint, program: unregisteredProgram, version: 1, timeout: .seconds(1))
            try client.ping()
            #expect(server.accepted == 1)

            server.stop()  // closes the listener and the connection: the server died
            // The restarted server needs this port again, and other suites of this process bind
            // and connect in parallel: hold the port at once with a socket that is bound and does
            // not listen. Connecting to it is refused as to a port nobody has, no other socket is
            // given it, and the restarted server binds beside it (both have SO_REUSEADDR).
            var placeholder: FileDescriptor?
            defer { withExtendedLifetime(placeholder) {} }  // closed at the end, after the restarted server bound
            if !local {
                placeholder = try Self.retryingAddressInUse { try Sockets.loopback(datagram: false, port: port) }
            }
            let error = try #require(throws: RPCError.self) { try client.ping() }
            #expect(error.isConnectionLost, "\(error)")
            #expect(!client.isConnected)
            // While it is down, calls fail fast with cantConnect.
            let down = try #require(throws: RPCError.self) { try client.ping() }
            #expect(down.status == .cantConnect)

            server = local ? try StreamResponder(path: path, .answer(.success)) : try StreamResponder(tcpPort: port, .answer(.success))
            try client.ping()
            #expect(client.isConnected)
            #expect(server.accepted == 1)
        }
    }
}
