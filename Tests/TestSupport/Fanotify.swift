import SystemSupport

/// Why the fanotify tests cannot run here, or nil when they can (root, and the
/// kernel gives this process permission events): a group is made and closed once.
package let fanotifyUnavailableReason: String? = {
    if Processes.effectiveUserID != 0 { return "not root: fanotify permission events need CAP_SYS_ADMIN" }
    do {
        try FanotifyGroup().close()
    } catch {
        return "fanotify permission events unavailable: \(error)"
    }
    return nil
}()
