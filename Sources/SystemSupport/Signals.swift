import CSystemSupport
import Glibc

/// Process-wide settings that an executable makes once, at start. Libraries
/// never change them.
package enum ProcessSettings {
    /// Ignores SIGPIPE: libtirpc writes with plain write(2), so a peer that
    /// goes away mid-call would otherwise kill the process.
    package static func ignoreBrokenPipe() {
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
    }
}

/// Signals turned into bytes on a pipe that a poll loop reads: the one way
/// this project handles signals. The handler (in C) only write(2)s the
/// signal's number; the pipe is made once per process and never closed, so
/// a late signal can never write into a reused descriptor.
package final class SignalRoute: Sendable {
    package static let shared = SignalRoute()

    private let pipe: Pipe
    private let routed = Locked<Set<Int32>>([])

    private init() {
        do {
            pipe = try FileDescriptor.pipe(nonBlocking: true)
        } catch {
            fatalError("cannot create the signal pipe: \(error)")
        }
    }

    /// Poll it for `.readable`; then `take()` the signals that arrived.
    package var descriptor: Int32 { pipe.read.rawValue }

    /// Routes `signals` to the pipe and unblocks them on the calling thread
    /// (a parent may have started us with them blocked: the mask survives exec).
    package func route(_ signals: [Int32]) {
        routed.withLock { routed in
            for number in signals where !routed.contains(number) {
                _ = CSystemSupport_route_signal(number, pipe.write.rawValue)
                routed.insert(number)
            }
        }
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for number in signals { sigaddset(&unblock, number) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// The signals that arrived since the last call, oldest first.
    package func take() -> [Int32] {
        var bytes = [UInt8](repeating: 0, count: 64)
        var result: [Int32] = []
        while case .success(.done(let count)) = bytes.withUnsafeMutableBytes({ raw in
            Result { () throws(SystemError) in try pipe.read.readNonBlocking(into: raw) }
        }), count > 0 {
            result += bytes[0..<count].map { Int32($0) }
        }
        return result
    }

    /// The usual name of a signal, for logs.
    package static func name(_ number: Int32) -> String {
        switch number {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        case SIGQUIT: "SIGQUIT"
        default: "signal \(number)"
        }
    }
}
