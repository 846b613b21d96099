import Logging
import Synchronization

/// A long-running part of a program with a blocking run loop of its own: the
/// collector's RPC server, the agent's answering loop, the event sender.
package protocol Service: AnyObject, Sendable {
    /// For logs: "collector", "agent", "sender".
    var name: String { get }
    /// Runs until `requestStop()`, or until it has nothing left to do. Called
    /// once, on a thread of its own.
    func run()
    /// Asks `run()` to return soon. From any thread, any number of times.
    func requestStop()
}

/// Runs services and stops them in reverse start order: the shape of
/// swift-service-lifecycle's `ServiceGroup`, by hand, because these services
/// are threads that block in poll(2) and clnt_call, not async tasks.
///
/// `run()` starts each service on its own thread, in order, then waits for a
/// stop signal (SIGTERM, SIGINT), `requestStop()`, or any service's `run()`
/// returning. Then it asks the services to stop from the last started to
/// the first, joining each before asking the next: the agent stops answering
/// before its sender drains; the sender outlives what feeds it.
package final class ServiceGroup: Sendable {
    package enum StopReason: Sendable, Equatable, CustomStringConvertible {
        case signal(Int32)
        case requested
        /// The named service's `run()` returned by itself.
        case serviceEnded(String)

        package var description: String {
            switch self {
            case .signal(let number): SignalRoute.name(number)
            case .requested: "stop requested"
            case .serviceEnded(let name): "\(name) ended"
            }
        }
    }

    private final class Running: @unchecked Sendable {
        // @unchecked: written by run() on the calling thread only.
        var thread: NamedThread?
    }

    private let services: [any Service]
    private let stopSignals: [Int32]
    private let logger: Logger
    private let wake = WakeSignal()
    private let ended = Locked<String?>(nil)
    private let requested = Atomic<Bool>(false)

    package init(services: [any Service], stopSignals: [Int32], logger: Logger) {
        self.services = services
        self.stopSignals = stopSignals
        self.logger = logger
    }

    /// Asks `run()` to stop every service; from any thread.
    package func requestStop() {
        requested.store(true, ordering: .sequentiallyConsistent)
        wake.signal()
    }

    /// Runs the services until a stop, then stops them; why it stopped.
    @discardableResult
    package func run() -> StopReason {
        if !stopSignals.isEmpty { SignalRoute.shared.route(stopSignals) }
        let running = services.map { service -> Running in
            let box = Running()
            box.thread = NamedThread(name: service.name) { [self] in
                service.run()
                self.ended.withLock { if $0 == nil { $0 = service.name } }
                wake.signal()
            }
            return box
        }
        let reason = waitForStop()
        logger.info("stopping", metadata: ["reason": "\(reason)"])
        for (service, box) in zip(services, running).reversed() {
            service.requestStop()
            box.thread.take()?.join()
            logger.debug("service stopped", metadata: ["service": "\(service.name)"])
        }
        return reason
    }

    private func waitForStop() -> StopReason {
        var set = PollSet()
        set.add(wake.descriptor, .readable)
        set.add(SignalRoute.shared.descriptor, .readable)
        while true {
            if let signal = stopSignals.isEmpty ? nil : SignalRoute.shared.take().first(where: stopSignals.contains) {
                return .signal(signal)
            }
            if requested.load(ordering: .sequentiallyConsistent) { return .requested }
            if let name = ended.withLock({ $0 }) { return .serviceEnded(name) }
            _ = try? set.wait(timeout: .seconds(1))
            wake.clear()
        }
    }
}
