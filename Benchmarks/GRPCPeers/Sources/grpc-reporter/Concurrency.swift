import GRPCBenchProto
import Synchronization

/// How `race(timeoutNanoseconds:_:)` ended.
enum RaceOutcome<Value: Sendable>: Sendable {
    case value(Value)
    case failure(any Error)
    case timeout
}

/// Runs `body` against a timer, the way grpc-swift applies a call's deadline
/// (`withDeadline`: a task group of the work and a sleep): the first to end
/// wins, the other is cancelled.
func race<Value: Sendable>(
    timeoutNanoseconds: UInt64, _ body: @escaping @Sendable () async throws -> Value
) async -> RaceOutcome<Value> {
    await withTaskGroup(of: RaceOutcome<Value>?.self) { group in
        group.addTask {
            do {
                try await Task.sleep(nanoseconds: timeoutNanoseconds)
                return .timeout
            } catch {
                return nil // cancelled: the body won
            }
        }
        group.addTask {
            do {
                return .value(try await body())
            } catch {
                return .failure(error)
            }
        }
        var outcome: RaceOutcome<Value>?
        while outcome == nil, let next = await group.next() {
            outcome = next
        }
        group.cancelAll()
        return outcome ?? .timeout
    }
}

/// Hands the acknowledgements of one ReportBatches stream from its response
/// handler to the request producer, which waits for each batch's ack before it
/// sends the next batch. `next()` is cancellable: a batch's timeout cancels it.
final class AckMailbox: Sendable {
    private struct State {
        var queued: [AuthrelayBench_BatchAck] = []
        var waiter: CheckedContinuation<AuthrelayBench_BatchAck, any Error>?
        var ended: (any Error)?
        var cancelled = false
    }

    struct StreamEnded: Error, CustomStringConvertible {
        var description: String { "the server ended the stream before acknowledging the batch" }
    }

    private let state = Mutex(State())

    func deliver(_ ack: AuthrelayBench_BatchAck) {
        let waiter: CheckedContinuation<AuthrelayBench_BatchAck, any Error>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.queued.append(ack)
            return nil
        }
        waiter?.resume(returning: ack)
    }

    /// The response stream ended: normally (nil) or with `error`.
    func finish(_ error: (any Error)?) {
        let waiter: CheckedContinuation<AuthrelayBench_BatchAck, any Error>? = state.withLock { state in
            if state.ended == nil { state.ended = error ?? StreamEnded() }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error ?? StreamEnded())
    }

    /// The next acknowledgement, in order.
    func next() async throws -> AuthrelayBench_BatchAck {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<AuthrelayBench_BatchAck, any Error>) in
                enum Now { case ack(AuthrelayBench_BatchAck), fail(any Error), wait }
                let now: Now = state.withLock { state in
                    if !state.queued.isEmpty { return .ack(state.queued.removeFirst()) }
                    if let ended = state.ended { return .fail(ended) }
                    if state.cancelled { return .fail(CancellationError()) }
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .ack(let ack): continuation.resume(returning: ack)
                case .fail(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            let waiter: CheckedContinuation<AuthrelayBench_BatchAck, any Error>? = state.withLock { state in
                state.cancelled = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
