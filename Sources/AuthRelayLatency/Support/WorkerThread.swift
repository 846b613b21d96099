import Glibc

/// A plain OS thread for the in-process echo server: it blocks
/// in poll and read, so they must not run on the Swift concurrency pool.
final class WorkerThread {
    private var thread = pthread_t()
    private var joined = false

    private final class Start {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    init(_ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(body)).toOpaque()
        let status = pthread_create(&thread, nil, { argument in
            Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, start)
        precondition(status == 0, "pthread_create failed: \(String(cString: strerror(status)))")
    }

    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}
