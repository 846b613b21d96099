import Glibc

/// A failed system call: which function, the errno it left, and on what
/// (a path, an address, a descriptor's purpose). Domain errors (the server's,
/// the sinks', the agent's) wrap it rather than carry an errno of their own.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The C function that failed, e.g. "open" or "connect".
    public var function: String
    /// The errno it left; 0 when the failure has no errno (see `detail`).
    public var errno: Int32
    /// What it was called on: a path, an address; nil when nothing says more.
    public var path: String?
    /// Text for failures that have no errno (getaddrinfo's own codes), or a hint.
    public var detail: String?

    public init(function: String, errno: Int32, path: String? = nil, detail: String? = nil) {
        self.function = function
        self.errno = errno
        self.path = path
        self.detail = detail
    }

    /// strerror's text for `errno`, read once (strerror's buffer is shared).
    public var reason: String {
        if errno == 0 { return detail ?? "failed" }
        return String(cString: strerror(errno))
    }

    /// "open /var/lib/authrelayd/state.json: Permission denied (errno 13)"
    public var description: String {
        var text = function
        if let path { text += " \(path)" }
        text += ": \(reason)"
        if errno != 0 {
            text += " (errno \(errno))"
            if let detail { text += ": \(detail)" }
        }
        return text
    }
}

/// strerror's text with the number, for messages that are not a SystemError.
package func errnoDescription(_ code: Int32) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}
