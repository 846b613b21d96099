import CAuthRelayLinux
import Glibc

/// A dedicated, named OS thread, for work that blocks: the sender in RPC calls,
/// the agent's answering loop in poll() on the fanotify descriptor. A Swift
/// concurrency pool thread blocked there would starve every other task.
package struct NamedThread: Sendable {
    private let thread: pthread_t

    private final class Start {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new thread named `name` (Linux keeps 15 bytes of it).
    package init(name: String, _ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            _ = CAuthRelayLinux_set_thread_name(String(start.name.prefix(15)))
            start.body()
            return nil
        }, start)
        precondition(status == 0, "pthread_create failed: \(String(cString: strerror(status)))")
        self.thread = thread
    }

    /// Waits for the thread to return; what it wrote is visible afterwards.
    package func join() {
        pthread_join(thread, nil)
    }
}
