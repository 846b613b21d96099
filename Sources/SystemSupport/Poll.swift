import Glibc

/// poll(2) event bits.
package struct PollEvents: OptionSet, Sendable {
    package let rawValue: Int16
    package init(rawValue: Int16) { self.rawValue = rawValue }

    package static let readable = PollEvents(rawValue: Int16(POLLIN))
    package static let writable = PollEvents(rawValue: Int16(POLLOUT))
    package static let error = PollEvents(rawValue: Int16(POLLERR))
    package static let hangUp = PollEvents(rawValue: Int16(POLLHUP))
    package static let invalid = PollEvents(rawValue: Int16(POLLNVAL))
    /// The descriptor failed or was closed under the poller.
    package static let failed: PollEvents = [.error, .hangUp, .invalid]
}

/// The descriptors one poll(2) waits on, rebuilt by its owner for each wait
/// (kept capacity: no allocation once warm).
package struct PollSet {
    private var entries: [pollfd] = []

    package init() {}

    package var count: Int { entries.count }

    package mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
    }

    /// Adds a descriptor (not owned: the caller keeps it open through the wait); its index.
    @discardableResult
    package mutating func add(_ descriptor: Int32, _ events: PollEvents) -> Int {
        entries.append(pollfd(fd: descriptor, events: events.rawValue, revents: 0))
        return entries.count - 1
    }

    /// Keeps an index without a descriptor (poll skips a negative fd): a paused listener.
    @discardableResult
    package mutating func addPlaceholder() -> Int {
        add(-1, [])
    }

    /// What was ready at `index` after the last wait.
    package func ready(_ index: Int) -> PollEvents {
        PollEvents(rawValue: entries[index].revents)
    }

    /// Waits until a descriptor is ready or `timeout` passes (nil: no limit,
    /// rounded up to whole milliseconds); the number ready. An interrupted
    /// wait (EINTR) returns 0, as if it timed out: callers loop anyway.
    package mutating func wait(timeout: Duration?) throws(SystemError) -> Int {
        for index in entries.indices { entries[index].revents = 0 }
        let milliseconds = timeout.map { Int32(clamping: $0.roundedUpMilliseconds) } ?? -1
        let ready = Glibc.poll(&entries, nfds_t(entries.count), milliseconds)
        if ready < 0 {
            if Glibc.errno == EINTR { return 0 }
            throw SystemError(function: "poll", errno: Glibc.errno)
        }
        return Int(ready)
    }
}
