import SystemSupport

/// A private directory under /tmp (mode 0700) for sockets, data and child
/// output, removed with everything in it when released or `remove()`d.
package final class TemporaryDirectory: Sendable {
    package let path: String

    package init(prefix: String = "authrelay") throws(HarnessError) {
        do {
            path = try FileSystem.makeTemporaryDirectory(prefix: prefix)
        } catch {
            throw HarnessError("cannot create a temporary directory", system: error)
        }
    }

    deinit { remove() }

    package func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Removes the directory and everything in it; safe to call again.
    package func remove() {
        FileSystem.removeTree(path)
    }
}
