import Logging
import ONCRPC
import SystemSupport

/// An `RPCServer` serving the null procedure of `unregisteredProgram` on its
/// own thread, without rpcbind; `stop()` ends it within a bounded wait.
final class RunningServer: @unchecked Sendable {
    // @unchecked: `server` is used by its run thread only, once `start()` has
    // handed it over; the test thread keeps to `stopHandle` and `listeners`.
    let listeners: [RPCServer.Listener]
    let stopHandle: RPCServer.StopHandle
    private let server: RPCServer
    private let finished = WakeSignal()
    private var started = false

    init(_ listeners: [RPCServer.Listener]) throws(RPCServerError) {
        server = try Self.make(listeners)
        self.listeners = server.listeners
        stopHandle = server.stopHandle
    }

    /// A server that is not run: for what `init` refuses, or what it leaves behind.
    static func make(_ listeners: [RPCServer.Listener]) throws(RPCServerError) -> RPCServer {
        var configuration = RPCServer.Configuration(listeners: listeners)
        configuration.registerWithRPCBind = false
        let program = RPCProgram(program: unregisteredProgram, version: 1, procedures: [.null()])
        var logger = Logger(label: "oncrpc-test")
        logger.logLevel = .error  // no "listening" lines in the test output
        return try RPCServer(configuration: configuration, programs: [program], logger: logger)
    }

    func start() -> Self {
        started = true
        NamedThread(name: "RunningServer") { [self] in
            server.run()
            finished.signal()
        }.detach()
        return self
    }

    /// Asks the server to stop and waits (bounded) for `run()` to return; false when it did not.
    @discardableResult
    func stop() -> Bool {
        guard started else { return true }
        stopHandle.requestStop()
        return finished.wait(timeout: .seconds(5), clearing: false)
    }
}
