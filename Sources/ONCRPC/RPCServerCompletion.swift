import Synchronization
import SystemSupport

/// Where a deferred reply goes: the stream connection the call came on (by
/// its serial number: a descriptor number is reused once closed, a serial
/// never), or the datagram socket and the peer that sent it.
enum RPCReplyTarget: Sendable {
    case stream(connection: UInt64, fd: Int32)
    case datagram(socket: Int, peer: SocketAddress)
    /// Nowhere: a call dispatched outside a running server (the fuzz targets).
    case none
}

/// Handed to a deferrable procedure's handler (`RPCProcedure(deferrable:...)`):
/// `later()` takes the reply away from the handler, which then returns
/// `.deferred`, and someone completes the token, from any thread, when the
/// answer is known. A handler that answers at once simply does not call it.
public struct RPCDeferral {
    let context: DeferralContext

    /// The call's completion token; the handler must return `.deferred`.
    public func later() -> RPCCompletion {
        if let taken = context.taken { return taken }
        let completion = RPCCompletion(xid: context.xid, target: context.target, result: context.result,
                                       resultSize: context.resultSize, framed: context.framed, queue: context.queue)
        context.taken = completion
        return completion
    }
}

/// The dispatcher's per-call state for a deferrable procedure, one object
/// reused from call to call.
final class DeferralContext {
    var xid: UInt32 = 0
    var target = RPCReplyTarget.none
    var result = XDRRoutine.void
    var resultSize = 0
    var framed = false
    let queue: RPCCompletionQueue
    /// The token `later()` made for this call, if it was called.
    var taken: RPCCompletion?

    init(queue: RPCCompletionQueue) {
        self.queue = queue
    }
}

/// A reply that is not written when its handler returns: it carries the
/// call's xid, where the reply goes (the connection or the datagram peer)
/// and the procedure's result routine. `complete` encodes the reply on the
/// calling thread and posts the bytes to the server, which writes them from
/// its poll loop (woken through its `WakeSignal`).
///
/// Exactly one reply per call: a second `complete` does nothing (and says
/// so); a token dropped without one answers SYSTEM_ERR, so the caller is
/// never left waiting. A reply for a connection closed meanwhile, or posted
/// after the server stopped, is dropped (counted in `droppedDeferredReplies`).
public final class RPCCompletion: Sendable {
    let xid: UInt32
    let target: RPCReplyTarget
    private let result: XDRRoutine
    private let resultSize: Int
    private let framed: Bool
    private let queue: RPCCompletionQueue
    private let done = Atomic<Bool>(false)

    fileprivate init(xid: UInt32, target: RPCReplyTarget, result: XDRRoutine, resultSize: Int, framed: Bool,
                     queue: RPCCompletionQueue) {
        self.xid = xid
        self.target = target
        self.result = result
        self.resultSize = resultSize
        self.framed = framed
        self.queue = queue
    }

    deinit {
        // Never completed (a bug, or work abandoned at shutdown): the caller gets SYSTEM_ERR, not silence.
        if !done.load(ordering: .acquiring) { post { _ in .systemError } }
    }

    /// True once a reply was given (or the handler answered at once).
    public var isCompleted: Bool { done.load(ordering: .acquiring) }

    /// Fills the procedure's result (`Result` is its result type, zeroed
    /// before `fill` runs) and sends it with `fill`'s status. Whatever the
    /// result points to must live until this returns (it is encoded here).
    /// False when the call was already completed: nothing is sent.
    @discardableResult
    public func complete<Result>(_ type: Result.Type, _ fill: (UnsafeMutablePointer<Result>) -> RPCReply) -> Bool {
        precondition(MemoryLayout<Result>.size == resultSize, "\(Result.self) is not this procedure's result type")
        guard claim() else { return false }
        post { raw in fill(raw.assumingMemoryBound(to: Result.self)) }
        return true
    }

    /// Sends a reply without a result: `.systemError`, `.garbageArguments` or
    /// `.tooWeakAuthentication` (`.result` sends a zeroed result). False when
    /// the call was already completed.
    @discardableResult
    public func complete(_ reply: RPCReply) -> Bool {
        guard claim() else { return false }
        post { _ in reply }
        return true
    }

    /// The handler answered at once after all: this token must never send.
    func cancel() {
        _ = claim()
    }

    private func claim() -> Bool {
        !done.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// Encodes the reply (header, then the result `fill` made) and posts it.
    private func post(_ fill: (UnsafeMutableRawPointer) -> RPCReply) {
        let resultMemory = UnsafeMutableRawPointer.allocate(byteCount: max(resultSize, 16), alignment: 16)
        defer { resultMemory.deallocate() }
        resultMemory.initializeMemory(as: UInt8.self, repeating: 0, count: max(resultSize, 16))
        var reply = fill(resultMemory)
        if reply == .deferred { reply = .systemError }  // a completion is the answer: it cannot defer again
        let output = ByteBuffer()
        RPCReplyEncoder.append(reply, xid: xid, result: result, resultMemory: resultMemory, framed: framed, to: output)
        queue.post(target, Array(output.bytes))
    }
}

/// Deferred replies on their way from the threads that complete them to the
/// server's poll loop. Posting signals the loop's `WakeSignal` only when the
/// queue was empty: the loop clears the signal before it takes the queue, so
/// one signal covers everything posted until then.
final class RPCCompletionQueue: Sendable {
    struct Posted: Sendable {
        var target: RPCReplyTarget
        var bytes: [UInt8]
    }

    private struct State {
        var posted: [Posted] = []
        var closed = false
        var dropped: UInt64 = 0
    }

    private let state = Locked(State())
    private let wake: WakeSignal

    init(wake: WakeSignal) {
        self.wake = wake
    }

    func post(_ target: RPCReplyTarget, _ bytes: [UInt8]) {
        let signal = state.withLock { state -> Bool in
            guard !state.closed else {
                state.dropped += 1
                return false
            }
            state.posted.append(Posted(target: target, bytes: bytes))
            return state.posted.count == 1
        }
        if signal { wake.signal() }
    }

    /// Everything posted so far (the loop's).
    func takeAll() -> [Posted] {
        state.withLock { state in
            guard !state.posted.isEmpty else { return [] }
            defer { state.posted.removeAll(keepingCapacity: true) }
            return state.posted
        }
    }

    /// Replies posted after `close()`, or whose connection was gone when the loop took them.
    var dropped: UInt64 { state.withLock { $0.dropped } }

    func noteDropped(_ count: Int) {
        state.withLock { $0.dropped += UInt64(count) }
    }

    /// The server stopped: what is posted from now on is dropped.
    func close() {
        let left = state.withLock { state -> Int in
            state.closed = true
            defer { state.posted.removeAll() }
            return state.posted.count
        }
        noteDropped(left)
    }
}

/// What `RPCServer.StopHandle` and the completions share with the loop: the
/// one wake-up eventfd, and whether a stop was asked for (a wake-up alone
/// may be a completion).
final class ServerSignals: Sendable {
    let wake = WakeSignal()
    private let stop = Atomic<Bool>(false)

    func requestStop() {
        stop.store(true, ordering: .releasing)
        wake.signal()
    }

    var stopRequested: Bool { stop.load(ordering: .acquiring) }

    func clearStop() {
        stop.store(false, ordering: .releasing)
    }
}
