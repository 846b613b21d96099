import Glibc

/// A value behind a pthread mutex. Why not `Synchronization.Mutex`: on Linux
/// it is a futex that ThreadSanitizer does not model, so every value it
/// guards reports as a data race under TSan (a two-thread counter under Mutex
/// reported races and still summed exactly) — false reports that would hide
/// real ones in CI's ThreadSanitizer run. A pthread mutex TSan sees.
///
/// Uncontended it costs about what Mutex does (no system call); neither may
/// be taken on an auth thread where a slower thread can hold it.
package final class Locked<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `mutex` held.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    package init(_ value: consuming Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, the lock held.
    package func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
