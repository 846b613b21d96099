import CAuthRelayLinux
import Glibc
import Synchronization

/// A fanotify call that failed, with what it means for the person running the agent.
public struct FanotifyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var function: String
    public var errno: Int32
    /// The watch path, for fanotify_mark.
    public var path: String?
    /// What to do about it, when known.
    public var hint: String?

    public var description: String {
        var text = "\(function)\(path.map { " \($0)" } ?? ""): \(String(cString: strerror(errno)))"
        if let hint { text += ": \(hint)" }
        return text
    }
}

/// A fanotify group of class FAN_CLASS_CONTENT (permission events): its
/// descriptor, its marks, and the answer to one event.
final class FanotifyGroup: Sendable {
    let descriptor: Int32
    private let closed = Atomic<Bool>(false)

    /// fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
    /// O_RDONLY | O_LARGEFILE | O_CLOEXEC). Non-blocking: the answering loop
    /// polls it together with the stop signal and reads until EAGAIN.
    init() throws(FanotifyError) {
        let flags = CAuthRelayLinux_FAN_CLASS_CONTENT | CAuthRelayLinux_FAN_CLOEXEC | CAuthRelayLinux_FAN_NONBLOCK
        let descriptor = CAuthRelayLinux_fanotify_init(flags, CAuthRelayLinux_FANOTIFY_EVENT_FD_FLAGS)
        guard descriptor >= 0 else {
            let code = Glibc.errno
            let hint: String? = switch code {
            case EPERM: "permission events need CAP_SYS_ADMIN: run authrelay agent as root"
            case EINVAL: "the kernel refused FAN_CLASS_CONTENT: it was built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS"
            case ENOSYS: "the kernel was built without fanotify (CONFIG_FANOTIFY); use --source synthetic"
            case EMFILE: "too many fanotify groups (see /proc/sys/fs/fanotify/max_user_groups)"
            default: nil
            }
            throw FanotifyError(function: "fanotify_init", errno: code, hint: hint)
        }
        self.descriptor = descriptor
    }

    /// Asks for FAN_OPEN_PERM and FAN_OPEN_EXEC_PERM on `path`: on a directory
    /// and its direct children (FAN_EVENT_ON_CHILD), on a file, or with
    /// `mount` on everything in the mount that holds `path` (FAN_MARK_MOUNT).
    func watch(_ path: String, mount: Bool) throws(FanotifyError) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            let code = Glibc.errno
            throw FanotifyError(function: "stat", errno: code, path: path,
                                hint: code == ENOENT ? "the watch path does not exist" : nil)
        }
        let isDirectory = (status.st_mode & S_IFMT) == S_IFDIR
        let events = CAuthRelayLinux_FAN_OPEN_PERM | CAuthRelayLinux_FAN_OPEN_EXEC_PERM
        let mask = events | (isDirectory && !mount ? CAuthRelayLinux_FAN_EVENT_ON_CHILD : 0)
        let flags = CAuthRelayLinux_FAN_MARK_ADD | (mount ? CAuthRelayLinux_FAN_MARK_MOUNT : 0)
        guard CAuthRelayLinux_fanotify_mark(descriptor, flags, mask, AT_FDCWD, path) == 0 else {
            let code = Glibc.errno
            var hint: String?
            switch code {
            case EINVAL:
                // Tell which flag the kernel lacks: try the older FAN_OPEN_PERM alone.
                let plainMask = CAuthRelayLinux_FAN_OPEN_PERM | (mask & CAuthRelayLinux_FAN_EVENT_ON_CHILD)
                if CAuthRelayLinux_fanotify_mark(descriptor, flags, plainMask, AT_FDCWD, path) == 0 {
                    hint = "the kernel does not support FAN_OPEN_EXEC_PERM (Linux 5.0 or later is needed)"
                } else {
                    hint = "the kernel refused FAN_OPEN_PERM\(mount ? " with FAN_MARK_MOUNT" : "")"
                }
            case ENOENT: hint = "the watch path does not exist"
            case ENODEV, EXDEV: hint = "this filesystem cannot be marked\(mount ? " as a whole mount" : ""); watch a path on another filesystem"
            case ENOSPC: hint = "too many marks (see /proc/sys/fs/fanotify/max_user_marks)"
            default: break
            }
            throw FanotifyError(function: "fanotify_mark", errno: code, path: path, hint: hint)
        }
    }

    /// Writes `verdict` for the event's descriptor. Returns errno, 0 on success.
    func answer(_ eventDescriptor: Int32, allow: Bool) -> Int32 {
        let response = allow ? CAuthRelayLinux_FAN_ALLOW : CAuthRelayLinux_FAN_DENY
        return CAuthRelayLinux_fanotify_respond(descriptor, eventDescriptor, response) == 0 ? 0 : max(Glibc.errno, 1)
    }

    /// Closing the group makes the kernel allow every event still pending on it. Once only.
    func close() {
        if !closed.exchange(true, ordering: .relaxed) { _ = Glibc.close(descriptor) }
    }

    deinit { close() }
}
