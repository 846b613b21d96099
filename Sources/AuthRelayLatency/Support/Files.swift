import AuthRelayHarness
import Glibc

/// The few file operations the runs need, over plain libc (no Foundation in this module).
enum Files {
    /// The whole file as text, or nil when it cannot be read.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to `path`, replacing it.
    static func write(_ text: String, to path: String) throws(LatencyError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LatencyError("cannot write \(path): \(errnoText())") }
        defer { close(fd) }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw LatencyError("cannot write \(path): \(errnoText())") }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Creates `path` (one level) unless it is already a directory.
    static func makeDirectory(_ path: String) throws(LatencyError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw LatencyError("cannot create directory \(path): \(errnoText())")
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }
}

/// strerror for the current (or a given) errno.
func errnoText(_ code: Int32 = errno) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}
