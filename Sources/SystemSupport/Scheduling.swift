import Glibc

extension NamedThread {
    /// sched_yield(2): lets another runnable thread have this CPU (a producer
    /// between its queue claim and its write, say) without sleeping.
    @inlinable
    package static func yield() {
        _ = sched_yield()
    }
}
