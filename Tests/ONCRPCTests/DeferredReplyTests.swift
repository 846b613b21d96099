import CAuthRelayRPC
import Glibc
import Logging
import ONCRPC
import Synchronization
import SystemSupport
import TestSupport
import Testing

extension ONCRPCTests {
    /// Deferred replies over real sockets: a procedure answers later from
    /// another thread (`RPCProcedure(deferrable:...)`, `RPCCompletion`).
    @Suite struct DeferredReplies {
        @Test("several connections (tcp, unix, udp), each call answered later, completed in reverse order: each gets its own answer; the loop serves others meanwhile")
        func outOfOrder() throws {
            let path = temporarySocketPath("deferred")
            let server = try DeferredServer([.tcp(host: "127.0.0.1", port: 0), .udp(host: "127.0.0.1", port: 0), .unix(path: path)])
            defer { server.stop() }
            let endpoints = server.listeners.map(\.endpoint)
            let callers = [endpoints[0], endpoints[0], endpoints[2], endpoints[2], endpoints[1]]
            let answers = Locked<[Int: UInt64]>([:])
            let group = ThreadGroup()
            for (index, endpoint) in callers.enumerated() {
                group.start(name: "deferred-\(index)") {
                    let answer = try? DeferredServer.call(endpoint, procedure: DeferredServer.later, value: UInt64(index + 1))
                    answers.withLock { $0[index] = answer }
                }
            }
            #expect(eventually { server.pendingValues.count >= callers.count }, "pending: \(server.pendingValues)")
            // Not blocked by the calls it owes: an immediate call, and the deferrable procedure answering at once.
            #expect(try DeferredServer.call(endpoints[0], procedure: DeferredServer.echo, value: 41) == 42)
            #expect(try DeferredServer.call(endpoints[2], procedure: DeferredServer.later, value: 0) == 0)
            for (completion, value) in server.takePending().reversed() {
                #expect(completion.complete(ar_ack.self) { result in
                    result.pointee.seq = u_quad_t(value * 100)
                    return .result
                })
                SystemClock.sleep(.milliseconds(5))
            }
            group.joinAll()
            #expect(answers.withLock { $0 } == [0: 100, 1: 200, 2: 300, 3: 400, 4: 500])
        }

        @Test("a connection owing a deferred reply is not read until it is written: the call behind it is answered after it, in order")
        func backpressure() throws {
            let server = try DeferredServer([.tcp(host: "127.0.0.1", port: 0)])
            defer { server.stop() }
            let raw = try RawRPC.Connection(server.listeners[0].endpoint, timeout: .milliseconds(400))
            #expect(raw.send(RawRPC.recordMarked(DeferredServer.callMessage(xid: 1, procedure: DeferredServer.later, value: 7))))
            #expect(eventually { server.pendingValues == [7] })
            #expect(raw.send(RawRPC.recordMarked(DeferredServer.callMessage(xid: 2, procedure: DeferredServer.echo, value: 5))))
            #expect(raw.receiveReply() == nil, "answered while a deferred reply was owed")
            let (completion, _) = try #require(server.takePending().first)
            completion.complete(ar_ack.self) { result in
                result.pointee.seq = 70
                return .result
            }
            let first = try #require(raw.receiveReply())
            let second = try #require(raw.receiveReply())
            #expect(first.first == 1 && first.last == 70, "\(first)")
            #expect(second.first == 2 && second.last == 6, "\(second)")
        }

        @Test("a full table does not close a connection owed a deferred reply, however long the wait: it is mid-call, not idle")
        func evictionSparesOwed() throws {
            let server = try DeferredServer([.tcp(host: "127.0.0.1", port: 0)], maxConnections: 4)
            defer { server.stop() }
            let endpoint = server.listeners[0].endpoint
            let owed = try RawRPC.Connection(endpoint, timeout: .seconds(2))
            #expect(owed.send(RawRPC.recordMarked(DeferredServer.callMessage(xid: 1, procedure: DeferredServer.later, value: 7))))
            #expect(eventually { server.pendingValues == [7] })
            // Twenty newer connections, each active after the owed one (one call each), through a table of four.
            var newer: [RawRPC.Connection] = []
            for index in 0..<20 {
                let socket = try RawRPC.Connection(endpoint, timeout: .seconds(2))
                #expect(socket.send(RawRPC.recordMarked(DeferredServer.callMessage(xid: UInt32(10 + index), procedure: DeferredServer.echo, value: 1))))
                #expect(socket.receiveReply() != nil)
                newer.append(socket)
            }
            #expect(newer.prefix(10).allSatisfy { $0.closedByPeer() }, "the table evicted none of the newer ones")
            let (completion, _) = try #require(server.takePending().first)
            completion.complete(ar_ack.self) { result in
                result.pointee.seq = 70
                return .result
            }
            let reply = try #require(owed.receiveReply(), "the owed connection was closed")
            #expect(reply.first == 1 && reply.last == 70, "\(reply)")
        }

        @Test("a connection closed before its completion: the reply is dropped, counted, and nothing else is disturbed")
        func closedBeforeCompletion() throws {
            let server = try DeferredServer([.tcp(host: "127.0.0.1", port: 0), .unix(path: temporarySocketPath("closed"))])
            defer { server.stop() }
            for endpoint in server.listeners.map(\.endpoint) {
                var raw: RawRPC.Connection? = try RawRPC.Connection(endpoint)
                #expect(raw?.send(RawRPC.recordMarked(DeferredServer.callMessage(xid: 9, procedure: DeferredServer.later, value: 9))) == true)
                #expect(eventually { server.pendingValues == [9] })
                raw = nil  // closes it
                // The server notices the peer gone (POLLRDHUP) though it does not read that connection.
                #expect(eventually { (try? DeferredServer.stats(endpoint).open) == 0 })
                let (completion, _) = try #require(server.takePending().first)
                #expect(completion.complete(ar_ack.self) { _ in .result })
                #expect(!completion.complete(ar_ack.self) { _ in .result }, "a second completion sends nothing")
            }
            #expect(eventually { (try? DeferredServer.stats(server.listeners[0].endpoint).dropped) == 2 })
            #expect(try DeferredServer.call(server.listeners[0].endpoint, procedure: DeferredServer.echo, value: 1) == 2)
        }

        @Test("a token dropped without a reply answers SYSTEM_ERR: the caller is never left waiting")
        func neverCompleted() throws {
            let server = try DeferredServer([.unix(path: temporarySocketPath("dropped"))])
            defer { server.stop() }
            let endpoint = server.listeners[0].endpoint
            let outcome = Locked<RPCError?>(nil)
            let caller = NamedThread(name: "never") {
                do throws(RPCError) { _ = try DeferredServer.call(endpoint, procedure: DeferredServer.later, value: 3) } catch {
                    outcome.withLock { $0 = error }
                }
            }
            #expect(eventually { server.pendingValues == [3] })
            _ = server.takePending()  // the only reference: the token goes here
            caller.join()
            #expect(outcome.withLock { $0 }?.status == .systemError, "\(String(describing: outcome.withLock { $0 }))")
        }

        @Test("stop with completions pending: one completed during the drain is delivered, one never completed is cut off at the drain's end; completing after the stop is harmless")
        func stopWithPending() throws {
            let server = try DeferredServer([.tcp(host: "127.0.0.1", port: 0)], drain: .seconds(1))
            let tcp = server.listeners[0].endpoint
            let outcomes = Locked<[UInt64: Result<UInt64, RPCError>]>([:])
            let group = ThreadGroup()
            for value in [1, 2] as [UInt64] {
                group.start(name: "stop-\(value)") {
                    let result = Result { () throws(RPCError) in
                        try DeferredServer.call(tcp, procedure: DeferredServer.later, value: value, timeout: .seconds(10))
                    }
                    outcomes.withLock { $0[value] = result }
                }
            }
            #expect(eventually { server.pendingValues.sorted() == [1, 2] })
            let pending = server.takePending()
            let first = try #require(pending.first { $0.value == 1 }).completion
            let second = try #require(pending.first { $0.value == 2 }).completion
            let completer = NamedThread(name: "completer") {
                SystemClock.sleep(.milliseconds(200))  // while the server drains
                first.complete(ar_ack.self) { result in
                    result.pointee.seq = 11
                    return .result
                }
            }
            let (stopped, took) = measure { server.stop() }
            completer.join()
            #expect(stopped)
            #expect(took < .seconds(3), "stop took \(took)")
            group.joinAll()
            let results = outcomes.withLock { $0 }
            #expect((try? results[1]?.get()) == 11)
            if case .success(let value)? = results[2] { Issue.record("answered \(value) though never completed") }
            #expect(second.complete(ar_ack.self) { _ in .result }, "its first completion, after the stop")
            #expect(!second.complete(ar_ack.self) { _ in .result })
            #expect(server.finalStatistics?.deferredReplies == 2)
            // At the stop nothing was dropped: one was delivered, the other's connection closed before any completion.
            #expect(server.finalStatistics?.droppedDeferredReplies == 0)
        }
    }
}

/// An `RPCServer` on its own thread with a deferrable procedure whose calls
/// wait in `pending` until the test completes them.
private final class DeferredServer: @unchecked Sendable {
    // @unchecked: `server` is used by its run thread (and its handlers) only,
    // until `stop()` has waited for the thread; `pending` is behind a mutex.
    static let routine = XDRRoutine(CAuthRelayRPC_xdr_ar_ack)
    /// Answered later with what the test gives; a value of 0 is answered at once with 0.
    static let later: UInt32 = 1
    /// Answered at once: the value plus one.
    static let echo: UInt32 = 2
    /// Answered at once: open connections in `status`, dropped deferred replies in `seq`.
    static let statistics: UInt32 = 3

    let listeners: [RPCServer.Listener]
    private let server: RPCServer
    private let stopHandle: RPCServer.StopHandle
    private let finished = WakeSignal()
    private let pending = PendingCalls()
    private let statisticsAtStop = Locked<RPCServer.Statistics?>(nil)
    /// The server's counters when `run()` returned.
    var finalStatistics: RPCServer.Statistics? { statisticsAtStop.withLock { $0 } }

    init(_ listeners: [RPCServer.Listener], drain: Duration = .milliseconds(500), maxConnections: Int = 512) throws {
        var configuration = RPCServer.Configuration(listeners: listeners)
        configuration.registerWithRPCBind = false
        configuration.drainTimeout = drain
        configuration.maxConnections = maxConnections
        var logger = Logger(label: "oncrpc-deferred")
        logger.logLevel = .error
        let box = ServerBox()
        let program = RPCProgram(program: unregisteredProgram, version: 1, procedures: [
            .null(),
            RPCProcedure(deferrable: Self.later, argument: Self.routine, ar_ack.self, result: Self.routine, ar_ack.self) {
                [pending] _, argument, result, deferral in
                guard argument.pointee.seq != 0 else { return .result }
                let value = UInt64(argument.pointee.seq)
                let completion = deferral.later()
                pending.calls.withLock { $0.append((completion, value)) }
                return .deferred
            },
            RPCProcedure(Self.echo, argument: Self.routine, ar_ack.self, result: Self.routine, ar_ack.self) { _, argument, result in
                result.pointee.seq = argument.pointee.seq + 1
                return .result
            },
            RPCProcedure(Self.statistics, result: Self.routine, ar_ack.self) { _, result in
                guard let server = box.server else { return .systemError }
                result.pointee.status = ar_status(rawValue: UInt32(server.openConnections))
                result.pointee.seq = u_quad_t(server.statistics.droppedDeferredReplies)
                return .result
            },
        ])
        server = try RPCServer(configuration: configuration, programs: [program], logger: logger)
        box.server = server
        self.listeners = server.listeners
        stopHandle = server.stopHandle
        NamedThread(name: "DeferredServer") { [self] in
            server.run()
            let final = server.statistics
            statisticsAtStop.withLock { $0 = final }
            box.server = nil
            finished.signal()
        }.detach()
    }

    /// The values of the calls waiting for their reply.
    var pendingValues: [UInt64] { pending.calls.withLock { $0.map(\.value) } }

    /// Takes the waiting calls' completions (in arrival order) out of the server's hands.
    func takePending() -> [(completion: RPCCompletion, value: UInt64)] {
        pending.calls.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
    }

    @discardableResult
    func stop() -> Bool {
        stopHandle.requestStop()
        return finished.wait(timeout: .seconds(5), clearing: false)
    }

    static func call(_ endpoint: RPCEndpoint, procedure: UInt32, value: UInt64, timeout: Duration = .seconds(10)) throws(RPCError) -> UInt64 {
        let client = RPCClient(endpoint: endpoint, program: unregisteredProgram, version: 1, timeout: timeout)
        var argument = ar_ack(status: ar_status(rawValue: 0), seq: u_quad_t(value))
        return try client.call(procedure, &argument, encode: routine, decode: routine, as: ar_ack.self) { UInt64($0.pointee.seq) }
    }

    static func stats(_ endpoint: RPCEndpoint) throws(RPCError) -> (open: Int, dropped: UInt64) {
        let client = RPCClient(endpoint: endpoint, program: unregisteredProgram, version: 1, timeout: .seconds(5))
        var none: Int32 = 0
        return try client.call(statistics, &none, encode: .void, decode: routine, as: ar_ack.self) {
            (Int($0.pointee.status.rawValue) - 1, UInt64($0.pointee.seq))  // less the asking connection
        }
    }

    /// A call message (no record mark) of `procedure` with an `ar_ack` argument carrying `value`.
    static func callMessage(xid: UInt32, procedure: UInt32, value: UInt64) -> [UInt8] {
        RawRPC.call(xid: xid, program: unregisteredProgram, version: 1, procedure: procedure,
                    arguments: RawRPC.XDR.build { $0.word(0); $0.hyper(value) })
    }
}

/// The deferred calls waiting for the test, with their values.
private final class PendingCalls: Sendable {
    let calls = Locked<[(completion: RPCCompletion, value: UInt64)]>([])
}

/// The server, for the statistics procedure (set once the server exists; used on its thread).
private final class ServerBox: @unchecked Sendable {
    var server: RPCServer?
}

/// Waits (bounded) until `condition` holds.
private func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = SystemClock.deadline(after: timeout)
    while SystemClock.monotonicNanoseconds() < deadline {
        if condition() { return true }
        SystemClock.sleep(.milliseconds(5))
    }
    return condition()
}
