import Logging
import Synchronization
import SystemSupport
import Testing

/// Runs `group` on a thread of its own, asks it to stop after `stopAfter` (nil:
/// let it stop by itself), and waits at most `timeout` for it: its stop reason,
/// or nil (and a recorded issue) when it did not stop in time.
func runBounded(_ group: ServiceGroup, stopAfter: Duration?, timeout: Duration = .seconds(15)) -> ServiceGroup.StopReason? {
    let result = Outcome<ServiceGroup.StopReason>()
    let thread = NamedThread(name: "test-group") { result.finish(group.run()) }
    if let stopAfter {
        SystemClock.sleep(stopAfter)
        group.requestStop()
    }
    guard result.wait(timeout: timeout) else {
        Issue.record("the service group did not stop within \(timeout)")
        thread.detach()
        return nil
    }
    thread.join()
    return result.value
}

/// A value another thread produces once, with a bounded wait for it.
final class Outcome<Value: Sendable>: Sendable {
    private let stored = Locked<Value?>(nil)
    private let done = WakeSignal()

    func finish(_ value: Value) {
        stored.withLock { $0 = value }
        done.signal()
    }

    /// True once `finish` was called, waiting at most `timeout`.
    func wait(timeout: Duration) -> Bool {
        value != nil || done.wait(timeout: timeout)
    }

    var value: Value? { stored.withLock { $0 } }
}

/// For services whose logs a test does not read: only critical messages.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}()

/// Log entries kept in memory: "LEVEL message key=value ...".
final class LogRecorder: Sendable {
    private let entries = Locked<[String]>([])

    var lines: [String] { entries.withLock { $0 } }

    func logger(_ label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in Handler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ line: String) {
        entries.withLock { $0.append(line) }
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            recorder.append(([event.level.rawValue, event.message.description] + fields).joined(separator: " "))
        }
    }
}
