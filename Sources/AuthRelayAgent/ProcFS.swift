import Glibc  // O_RDONLY
import SystemSupport

/// What /proc says about a requester and an event's file, read on the
/// answering thread before it answers, so it must stay cheap: readlink(2) and
/// one read(2) into stack buffers, no allocation but the resulting strings.
/// A process that already exited yields empty strings and zeros.
enum ProcFS {
    /// The path of an open descriptor of this process (the event's file).
    static func path(ofDescriptor descriptor: Int32) -> String {
        withProcPath("/proc/self/fd/", Int64(descriptor), "") { FileSystem.readLink(cPath: $0) ?? "" }
    }

    /// The executable of `pid` (/proc/PID/exe).
    static func executable(of pid: Int32) -> String {
        withProcPath("/proc/", Int64(pid), "/exe") { FileSystem.readLink(cPath: $0) ?? "" }
    }

    struct Identity: Equatable {
        var ppid: Int32 = 0
        /// Effective ids: what the kernel checks this open against.
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// The parent pid and effective uid and gid of `pid`, from /proc/PID/status.
    static func identity(of pid: Int32) -> Identity {
        withProcPath("/proc/", Int64(pid), "/status") { path in
            guard let status = FileDescriptor.open(cPath: path, O_RDONLY) else { return Identity() }
            // PPid, Uid and Gid come in the first few hundred bytes; one read is enough.
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
                guard let count = try? status.read(into: UnsafeMutableRawBufferPointer(buffer)), count > 0 else {
                    return Identity()
                }
                return parseStatus(UnsafeBufferPointer(rebasing: buffer[..<count]))
            }
        }
    }

    /// Reads the PPid:, Uid: and Gid: lines ("Uid:\treal\teffective\tsaved\tfs").
    static func parseStatus(_ text: UnsafeBufferPointer<UInt8>) -> Identity {
        var identity = Identity()
        var lineStart = 0
        while lineStart < text.count {
            var lineEnd = lineStart
            while lineEnd < text.count && text[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            let line = UnsafeBufferPointer(rebasing: text[lineStart..<lineEnd])
            if let values = fields(line, after: "PPid:") {
                identity.ppid = Int32(truncatingIfNeeded: values.first)
            } else if let values = fields(line, after: "Uid:") {
                identity.uid = UInt32(truncatingIfNeeded: values.second)
            } else if let values = fields(line, after: "Gid:") {
                identity.gid = UInt32(truncatingIfNeeded: values.second)
                break  // Gid follows PPid and Uid
            }
            lineStart = lineEnd + 1
        }
        return identity
    }

    /// The first two decimal numbers after `key` when `line` starts with it.
    private static func fields(_ line: UnsafeBufferPointer<UInt8>, after key: StaticString) -> (first: Int64, second: Int64)? {
        let keyLength = key.utf8CodeUnitCount
        guard line.count >= keyLength else { return nil }
        for index in 0..<keyLength where line[index] != key.utf8Start[index] { return nil }
        var index = keyLength
        var first: Int64 = 0
        var second: Int64 = 0
        var found = 0
        while index < line.count && found < 2 {
            while index < line.count && !isDigit(line[index]) { index += 1 }
            guard index < line.count else { break }
            var value: Int64 = 0
            while index < line.count && isDigit(line[index]) {
                value = value &* 10 &+ Int64(line[index] - UInt8(ascii: "0"))
                index += 1
            }
            if found == 0 { first = value } else { second = value }
            found += 1
        }
        return (first, found > 1 ? second : first)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Lays out "PREFIX<number>SUFFIX" NUL-terminated in a stack buffer.
    private static func withProcPath<T>(_ prefix: StaticString, _ number: Int64, _ suffix: StaticString,
                                        _ body: (UnsafePointer<CChar>) -> T) -> T {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            var length = 0
            func append(_ text: StaticString) {
                for index in 0..<text.utf8CodeUnitCount {
                    buffer[length] = text.utf8Start[index]
                    length += 1
                }
            }
            append(prefix)
            // Digits written from the right, after counting them.
            let value = UInt64(max(number, 0))
            var digitCount = 1
            var scan = value / 10
            while scan > 0 { digitCount += 1; scan /= 10 }
            var rest = value
            for position in stride(from: length + digitCount - 1, through: length, by: -1) {
                buffer[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            length += digitCount
            append(suffix)
            buffer[length] = 0
            return buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: length + 1) { body($0) }
        }
    }
}
