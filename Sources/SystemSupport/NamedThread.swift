import CSystemSupport
import Glibc

/// A dedicated, named OS thread, for work that blocks: the sender in RPC
/// calls, the agent's answering loop in poll(), a service's run loop. A Swift
/// concurrency pool thread blocked there would starve every other task.
///
/// Non-copyable: it is joined (or detached) exactly once, by its one owner.
package struct NamedThread: ~Copyable, Sendable {
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
            _ = CSystemSupport_set_thread_name(String(decoding: start.name.utf8.prefix(15), as: UTF8.self))
            start.body()
            return nil
        }, start)
        precondition(status == 0, "pthread_create failed: \(errnoDescription(status))")
        self.thread = thread
    }

    /// Waits for the thread to return; what it wrote is visible afterwards.
    package consuming func join() {
        pthread_join(thread, nil)
        discard self
    }

    /// Lets the thread finish on its own (it must not touch what the caller frees).
    package consuming func detach() {
        pthread_detach(thread)
        discard self
    }

    deinit {
        // Neither joined nor detached: detach, so the thread's resources are freed when it ends.
        pthread_detach(thread)
    }
}

/// Several named threads started together and joined together (benchmark
/// producers, test workers): non-copyable threads cannot sit in an array.
package final class ThreadGroup {
    private final class Slot {
        var thread: NamedThread?
        init(_ thread: consuming NamedThread) { self.thread = .some(thread) }
    }

    private var slots: [Slot] = []

    package init() {}

    /// Starts `body` on a new thread named `name`.
    package func start(name: String, _ body: @escaping @Sendable () -> Void) {
        slots.append(Slot(NamedThread(name: name, body)))
    }

    /// Waits for every thread started so far.
    package func joinAll() {
        for slot in slots { slot.thread.take()?.join() }
        slots.removeAll()
    }

    deinit { joinAll() }
}
