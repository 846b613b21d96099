import CSystemSupport
import Glibc

/// A fanotify call that failed, with what it means for the person running the agent.
public struct FanotifyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var system: SystemError
    /// What to do about it, when known.
    public var hint: String?

    public var description: String {
        hint.map { "\(system): \($0)" } ?? system.description
    }
}

/// A fanotify group of class FAN_CLASS_CONTENT (permission events): its
/// descriptor, its marks, reading events and answering them.
///
/// `close()` comes after the answering loop has returned (the agent joins
/// that thread first): nothing reads the descriptor once it is closed.
package final class FanotifyGroup: @unchecked Sendable {
    // @unchecked: `group` is read by the one answering thread and set to nil
    // by `close()` only after that thread was joined.
    /// One permission event as read from the group.
    package struct Event: Sendable {
        package var isExec: Bool
        package var isOverflow: Bool
        /// The event's descriptor of the file (owned: answer() closes it); -1 when none.
        package var fileDescriptor: Int32
        package var pid: Int32
    }

    private var group: FileDescriptor?

    /// fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
    /// O_RDONLY | O_LARGEFILE | O_CLOEXEC). Non-blocking: the answering loop
    /// polls it together with a stop signal and reads until EAGAIN.
    package init() throws(FanotifyError) {
        let flags = CSystemSupport_FAN_CLASS_CONTENT | CSystemSupport_FAN_CLOEXEC | CSystemSupport_FAN_NONBLOCK
        let descriptor = CSystemSupport_fanotify_init(flags, CSystemSupport_FANOTIFY_EVENT_FD_FLAGS)
        guard descriptor >= 0 else {
            let code = Glibc.errno
            let hint: String? = switch code {
            case EPERM: "permission events need CAP_SYS_ADMIN: run authrelay agent as root"
            case EINVAL: "the kernel refused FAN_CLASS_CONTENT: it was built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS"
            case ENOSYS: "the kernel was built without fanotify (CONFIG_FANOTIFY); use --source synthetic"
            case EMFILE: "too many fanotify groups (see /proc/sys/fs/fanotify/max_user_groups)"
            default: nil
            }
            throw FanotifyError(system: SystemError(function: "fanotify_init", errno: code), hint: hint)
        }
        group = FileDescriptor(adopting: descriptor)
    }

    /// Poll it for `.readable`.
    package var descriptor: Int32 { group?.rawValue ?? -1 }

    /// Asks for FAN_OPEN_PERM and FAN_OPEN_EXEC_PERM on `path`: on a directory
    /// and its direct children (FAN_EVENT_ON_CHILD), on a file, or with
    /// `mount` on everything in the mount that holds `path` (FAN_MARK_MOUNT).
    package func watch(_ path: String, mount: Bool) throws(FanotifyError) {
        let status: FileStatus
        do {
            guard let found = try FileSystem.status(path) else {
                throw FanotifyError(system: SystemError(function: "stat", errno: ENOENT, path: path), hint: "the watch path does not exist")
            }
            status = found
        } catch let error as FanotifyError {
            throw error
        } catch {
            throw FanotifyError(system: error as! SystemError, hint: nil)
        }
        let events = CSystemSupport_FAN_OPEN_PERM | CSystemSupport_FAN_OPEN_EXEC_PERM
        let mask = events | (status.kind == .directory && !mount ? CSystemSupport_FAN_EVENT_ON_CHILD : 0)
        let flags = CSystemSupport_FAN_MARK_ADD | (mount ? CSystemSupport_FAN_MARK_MOUNT : 0)
        guard CSystemSupport_fanotify_mark(descriptor, flags, mask, AT_FDCWD, path) == 0 else {
            let code = Glibc.errno
            var hint: String?
            switch code {
            case EINVAL:
                // Tell which flag the kernel lacks: try the older FAN_OPEN_PERM alone.
                let plainMask = CSystemSupport_FAN_OPEN_PERM | (mask & CSystemSupport_FAN_EVENT_ON_CHILD)
                if CSystemSupport_fanotify_mark(descriptor, flags, plainMask, AT_FDCWD, path) == 0 {
                    hint = "the kernel does not support FAN_OPEN_EXEC_PERM (Linux 5.0 or later is needed)"
                } else {
                    hint = "the kernel refused FAN_OPEN_PERM\(mount ? " with FAN_MARK_MOUNT" : "")"
                }
            case ENOENT: hint = "the watch path does not exist"
            case ENODEV, EXDEV: hint = "this filesystem cannot be marked\(mount ? " as a whole mount" : ""); watch a path on another filesystem"
            case ENOSPC: hint = "too many marks (see /proc/sys/fs/fanotify/max_user_marks)"
            default: break
            }
            throw FanotifyError(system: SystemError(function: "fanotify_mark", errno: code, path: path), hint: hint)
        }
    }

    /// One read(2) of whatever events are waiting into `buffer`; `.wouldBlock` when none.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("read(fanotify)") { Glibc.read(descriptor, buffer.baseAddress, buffer.count) }
    }

    /// Decodes the event at `offset` of what `read` filled and advances it;
    /// nil when no complete event is left. Throws EPROTO when the kernel's
    /// metadata version is not the one this was built against.
    package static func nextEvent(in bytes: UnsafeRawBufferPointer, offset: inout Int) throws(SystemError) -> Event? {
        var raw = CSystemSupport_fanotify_event()
        var position = offset
        let decoded = CSystemSupport_fanotify_next_event(bytes.baseAddress, bytes.count, &position, &raw)
        if decoded == 0 { return nil }
        if decoded < 0 { throw SystemError(function: "fanotify read", errno: EPROTO, detail: "unknown event metadata version") }
        offset = position
        return Event(isExec: raw.mask & CSystemSupport_FAN_OPEN_EXEC_PERM != 0,
                     isOverflow: raw.mask & CSystemSupport_FAN_Q_OVERFLOW != 0,
                     fileDescriptor: raw.fd, pid: raw.pid)
    }

    /// Writes the verdict for `event`, then closes its descriptor, on every path.
    package func answer(_ event: Event, allow: Bool) throws(SystemError) {
        defer { _ = Glibc.close(event.fileDescriptor) }
        let response = allow ? CSystemSupport_FAN_ALLOW : CSystemSupport_FAN_DENY
        if CSystemSupport_fanotify_respond(descriptor, event.fileDescriptor, response) != 0 {
            throw SystemError(function: "write(fanotify_response)", errno: max(Glibc.errno, 1))
        }
    }

    /// Closes an event's descriptor without answering (an event that carries no permission question).
    package static func discard(_ event: Event) {
        if event.fileDescriptor >= 0 { _ = Glibc.close(event.fileDescriptor) }
    }

    /// Closes the group: the kernel then allows every event still pending on it. Once.
    package func close() {
        group = nil
    }
}
