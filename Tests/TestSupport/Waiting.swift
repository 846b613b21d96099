import SystemSupport

/// Runs `body` until it returns true or `timeout` passes; true when it did.
package func eventually(timeout: Duration = .seconds(10), _ body: () throws -> Bool) rethrows -> Bool {
    let deadline = SystemClock.deadline(after: timeout)
    while SystemClock.monotonicNanoseconds() < deadline {
        if try body() { return true }
        SystemClock.sleep(.milliseconds(20))
    }
    return false
}
