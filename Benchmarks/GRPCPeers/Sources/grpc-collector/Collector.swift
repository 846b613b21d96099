// grpc-collector: the gRPC counterpart of `legacy-collector -2` / `authrelayd --sink null`
// for `authrelay latency`: it takes the AuthRelayBench calls of Protos/authrelay_bench.proto,
// checks the XDR bounds, counts the events and answers. Nothing is stored.
//
// stderr, in this order: one line per listener, then "ready":
//   grpc-collector: listening tcp 127.0.0.1:PORT
//   grpc-collector: listening unix /path
//   grpc-collector: ready
// On SIGTERM or SIGINT: stops listening, lets running calls finish (for up to
// 1 s, then cancels them), prints "grpc-collector: events=N batches=M" and exits 0.
import ArgumentParser
import Dispatch
import GRPCBenchProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCPeerSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let program = "grpc-collector"

/// What the collector has taken: events (both calls) and batches (ReportBatches messages).
final class Counters: Sendable {
    let events = Atomic<UInt64>(0)
    let batches = Atomic<UInt64>(0)
}

struct CollectorService: AuthrelayBench_AuthRelayBench.SimpleServiceProtocol {
    let counters: Counters
    /// Slept per call or per batch before the answer (`--delay`): a slow collector.
    let delayNanoseconds: UInt64

    func reportEvent(request: AuthrelayBench_Event, context: ServerContext) async throws -> AuthrelayBench_Ack {
        var ack = AuthrelayBench_Ack()
        ack.seq = request.seq
        if Bounds.accepts(request) {
            counters.events.add(1, ordering: .relaxed)
            ack.status = .ok
        } else {
            ack.status = .rejected
        }
        if delayNanoseconds > 0 { try await Task.sleep(nanoseconds: delayNanoseconds) }
        return ack
    }

    func reportBatches(
        request: RPCAsyncSequence<AuthrelayBench_EventBatch, any Error>,
        response: RPCWriter<AuthrelayBench_BatchAck>,
        context: ServerContext
    ) async throws {
        for try await batch in request {
            var ack = AuthrelayBench_BatchAck()
            let count = batch.events.count
            if count <= Bounds.batchMax && batch.agentID.utf8.count <= Bounds.idMax
                && batch.bootID.utf8.count <= Bounds.idMax && batch.events.allSatisfy(Bounds.accepts)
            {
                counters.batches.add(1, ordering: .relaxed)
                counters.events.add(UInt64(count), ordering: .relaxed)
                ack.status = .ok
                ack.accepted = UInt32(count)
                ack.highestSeq = count > 0 ? batch.firstSeq &+ UInt64(count - 1) : 0
            } else {
                ack.status = .rejected
            }
            if delayNanoseconds > 0 { try await Task.sleep(nanoseconds: delayNanoseconds) }
            try await response.write(ack)
        }
    }

    func ping(request: AuthrelayBench_PingRequest, context: ServerContext) async throws -> AuthrelayBench_PingReply {
        AuthrelayBench_PingReply()
    }
}

@main
struct GRPCCollector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: program,
        abstract: "A gRPC collector for the AuthRelay latency benchmark: counts events, stores nothing.",
        discussion: """
            Listens on tcp HOST:PORT (127.0.0.1 and a port the kernel picks by default) and, with \
            --unix, on a unix domain socket too. stderr shows one 'grpc-collector: listening tcp \
            HOST:PORT' / 'grpc-collector: listening unix PATH' line per listener, then \
            'grpc-collector: ready'. SIGTERM or SIGINT stops it; it prints \
            'grpc-collector: events=N batches=M' and exits 0.
            """)

    @Option(help: "The tcp listener's address.")
    var host = "127.0.0.1"

    @Option(help: "The tcp listener's port; 0: the kernel picks one.")
    var port = 0

    @Option(help: ArgumentHelp("Also listen on this unix domain socket (an existing file there is replaced).", valueName: "PATH"))
    var unix: String?

    @Flag(name: .customLong("no-tcp"), help: "Listen on the unix socket only (needs --unix).")
    var noTCP = false

    @Option(help: ArgumentHelp("Sleep this long per call and per batch before answering: a slow collector (20ms, 500us, 1s).", valueName: "DURATION"))
    var delay = "0"

    func validate() throws {
        guard DurationText.nanoseconds(delay) != nil else { throw ValidationError("bad --delay: \(delay) (want e.g. 20ms, 500us, 1s)") }
        guard (0...65535).contains(port) else { throw ValidationError("bad --port: \(port)") }
        if noTCP && unix == nil { throw ValidationError("--no-tcp needs --unix PATH") }
        if let unix, unix.isEmpty || unix.utf8.count >= 108 { throw ValidationError("bad --unix path: '\(unix)'") }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        // SIGTERM and SIGINT arrive through Dispatch, not as the default "terminate".
        let (signals, signalContinuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { signalContinuation.yield(number) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        let counters = Counters()
        let service = CollectorService(counters: counters, delayNanoseconds: DurationText.nanoseconds(delay) ?? 0)

        var listeners: [(kind: String, server: GRPCServer<HTTP2ServerTransport.Posix>)] = []
        if !noTCP {
            let address: GRPCNIOTransportCore.SocketAddress =
                host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
            listeners.append(("tcp", GRPCServer(
                transport: .http2NIOPosix(address: address, transportSecurity: .plaintext), services: [service])))
        }
        if let unix {
            listeners.append(("unix", GRPCServer(
                transport: .http2NIOPosix(address: .unixDomainSocket(path: unix), transportSecurity: .plaintext),
                services: [service])))
        }

        /// How a task of the group below ended.
        enum Ended: Sendable { case listener(failed: Bool), signal, graceOver }

        let failed: Bool = await withTaskGroup(of: Ended.self) { group in
            for listener in listeners {
                let server = listener.server
                group.addTask {
                    do {
                        try await server.serve()
                        return .listener(failed: false)
                    } catch {
                        note(program, "\(listener.kind) listener failed: \(error)")
                        return .listener(failed: true)
                    }
                }
            }

            for listener in listeners {
                do {
                    let address = try await listener.server.transport.listeningAddress
                    if let ipv4 = address.ipv4 {
                        note(program, "listening tcp \(ipv4.host):\(ipv4.port)")
                    } else if let ipv6 = address.ipv6 {
                        note(program, "listening tcp [\(ipv6.host)]:\(ipv6.port)")
                    } else if let uds = address.unixDomainSocket {
                        note(program, "listening unix \(uds.path)")
                    } else {
                        note(program, "listening \(listener.kind) \(address)")
                    }
                } catch {
                    note(program, "cannot listen on \(listener.kind): \(error)")
                    listeners.forEach { $0.server.beginGracefulShutdown() }
                    group.cancelAll()
                    return true
                }
            }
            note(program, "ready")

            // Until SIGTERM or SIGINT, or a listener ends.
            group.addTask {
                for await _ in signals { break }
                return .signal
            }
            var running = listeners.count
            var stopping = false
            var failed = false
            while let ended = await group.next() {
                switch ended {
                case .listener(let listenerFailed):
                    running -= 1
                    failed = failed || listenerFailed
                case .signal:
                    break
                case .graceOver:
                    // Calls still running after 1 s (streams of a stopped client): cancel them.
                    group.cancelAll()
                }
                if !stopping {
                    // Stop listening everywhere; running calls get 1 s to finish.
                    stopping = true
                    listeners.forEach { $0.server.beginGracefulShutdown() }
                    group.addTask {
                        do {
                            try await Task.sleep(for: .seconds(1))
                            return .graceOver
                        } catch {
                            return .signal // cancelled: every listener has ended
                        }
                    }
                }
                if running == 0 {
                    group.cancelAll() // the grace timer, and the signal wait if a listener ended first
                }
            }
            return failed
        }
        signalContinuation.finish()

        if let unix { unlink(unix) }
        note(program, "events=\(counters.events.load(ordering: .relaxed)) batches=\(counters.batches.load(ordering: .relaxed))")
        if failed { throw ExitCode(1) }
    }
}
