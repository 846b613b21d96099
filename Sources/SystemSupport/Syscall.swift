import Glibc

/// What a call on a non-blocking descriptor did: its result, or nothing yet.
package enum IOResult<Value> {
    case done(Value)
    /// EAGAIN / EWOULDBLOCK: try again when poll says so.
    case wouldBlock
}

/// Runs a system call that returns -1 with errno on failure: retries EINTR,
/// and turns any other failure into a `SystemError` naming `function`.
/// The one place errno is read after a call (NIO's `syscall(blocking:where:)`).
@inline(__always)
package func systemCall<Result: FixedWidthInteger>(
    _ function: @autoclosure () -> String, path: @autoclosure () -> String? = nil, _ body: () -> Result
) throws(SystemError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemError(function: function(), errno: code, path: path())
    }
}

/// `systemCall` for non-blocking descriptors: EAGAIN and EWOULDBLOCK are `.wouldBlock`, not errors.
@inline(__always)
package func nonBlockingCall<Result: FixedWidthInteger>(
    _ function: @autoclosure () -> String, path: @autoclosure () -> String? = nil, _ body: () -> Result
) throws(SystemError) -> IOResult<Result> {
    while true {
        let result = body()
        if result != -1 { return .done(result) }
        let code = Glibc.errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        throw SystemError(function: function(), errno: code, path: path())
    }
}

/// For calls that report failure as a returned error number instead of errno
/// (pthread_*, posix_spawn*): 0 or throws.
@inline(__always)
package func errorNumberCall(_ function: @autoclosure () -> String, path: @autoclosure () -> String? = nil,
                             _ body: () -> Int32) throws(SystemError) {
    let code = body()
    if code != 0 { throw SystemError(function: function(), errno: code, path: path()) }
}
