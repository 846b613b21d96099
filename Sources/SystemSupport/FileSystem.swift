import Glibc

/// Path-level file operations: every one names its path in its error.
package enum FileSystem {
    /// stat(2) (lstat with `followingLinks: false`); nil when nothing is there.
    package static func status(_ path: String, followingLinks: Bool = true) throws(SystemError) -> FileStatus? {
        var raw = stat()
        let result: Int32
        if followingLinks { result = stat(path, &raw) } else { result = lstat(path, &raw) }
        if result != 0 {
            if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR { return nil }
            throw SystemError(function: followingLinks ? "stat" : "lstat", errno: Glibc.errno, path: path)
        }
        return FileStatus(raw)
    }

    package static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    package static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    package static func isWritableDirectory(_ path: String) -> Bool { access(path, W_OK | X_OK) == 0 }

    /// mkdir(2); false when it already exists (as anything).
    @discardableResult
    package static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SystemError) -> Bool {
        if mkdir(path, mode) == 0 { return true }
        if Glibc.errno == EEXIST { return false }
        throw SystemError(function: "mkdir", errno: Glibc.errno, path: path)
    }

    /// mkdir -p: every missing component, with `mode`.
    package static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            try makeDirectory(partial, mode: mode)
        }
    }

    /// unlink(2); nothing there is not an error.
    package static func removeFile(_ path: String) throws(SystemError) {
        if unlink(path) != 0 && Glibc.errno != ENOENT {
            throw SystemError(function: "unlink", errno: Glibc.errno, path: path)
        }
    }

    /// rmdir(2) of an empty directory; nothing there is not an error.
    package static func removeDirectory(_ path: String) throws(SystemError) {
        if rmdir(path) != 0 && Glibc.errno != ENOENT {
            throw SystemError(function: "rmdir", errno: Glibc.errno, path: path)
        }
    }

    /// Removes `path` and, when it is a directory, everything in it (no links followed).
    package static func removeTree(_ path: String) {
        guard let status = try? status(path, followingLinks: false) else { return }
        if status.kind == .directory {
            for name in (try? listDirectory(path)) ?? [] { removeTree(path + "/" + name) }
            try? removeDirectory(path)
        } else {
            try? removeFile(path)
        }
    }

    /// rename(2).
    package static func rename(_ source: String, to target: String) throws(SystemError) {
        if Glibc.rename(source, target) != 0 {
            throw SystemError(function: "rename", errno: Glibc.errno, path: "\(source) -> \(target)")
        }
    }

    /// chmod(2).
    package static func setMode(_ path: String, _ mode: mode_t) throws(SystemError) {
        if chmod(path, mode) != 0 { throw SystemError(function: "chmod", errno: Glibc.errno, path: path) }
    }

    /// The names in a directory, without "." and "..".
    package static func listDirectory(_ path: String) throws(SystemError) -> [String] {
        guard let directory = opendir(path) else { throw SystemError(function: "opendir", errno: Glibc.errno, path: path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            // The name in place: a dirent is only as long as its name, so copying
            // the struct (`entry.pointee`, 256 bytes of d_name) reads past the
            // last entry of readdir's buffer (ASan: heap-buffer-overflow).
            let name = String(cString: (UnsafeRawPointer(entry) + Self.direntNameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    /// fsync(2) of a directory: a rename or create in it survives power loss.
    package static func syncDirectory(_ path: String) throws(SystemError) {
        let directory = try FileDescriptor.open(path, O_RDONLY | O_DIRECTORY)
        try directory.sync()
    }

    /// The whole file.
    package static func readFile(_ path: String) throws(SystemError) -> [UInt8] {
        let file = try FileDescriptor.open(path, O_RDONLY)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = try chunk.withUnsafeMutableBytes { raw in Result { () throws(SystemError) in try file.read(into: raw) } }.get()
            if got == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<got])
        }
    }

    /// The whole file as UTF-8 text, or nil when it cannot be read.
    package static func readText(_ path: String) -> String? {
        (try? readFile(path)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes `bytes` to `path`, replacing it.
    package static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let file = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        try file.writeAll(bytes)
        try file.close()
    }

    /// Replaces `path` with `bytes` atomically: a temporary file next to it,
    /// then rename(2) over it. `durable`: the file and the directory are
    /// fsynced too, so the new content survives power loss.
    package static func replaceFile(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600, durable: Bool) throws(SystemError) {
        let temporary = path + ".tmp"
        let file = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        try file.writeAll(bytes)
        if durable { try file.sync() }
        try file.close()
        try rename(temporary, to: path)
        if durable { try syncDirectory(directoryName(of: path)) }
    }

    /// A new private directory (0700) under /tmp, named from `prefix`.
    package static func makeTemporaryDirectory(prefix: String) throws(SystemError) -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw SystemError(function: "mkdtemp", errno: Glibc.errno, path: "/tmp/\(prefix)-XXXXXX") }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// readlink(2); nil when it fails.
    package static func readLink(_ path: String) -> String? {
        path.withCString { readLink(cPath: $0) }
    }

    /// readlink(2) of a NUL-terminated path into a stack buffer; nil when it fails.
    package static func readLink(cPath path: UnsafePointer<CChar>) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX)) { buffer in
            let count = Glibc.readlink(path, buffer.baseAddress!, buffer.count)
            guard count > 0 else { return nil }
            return buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: count) {
                String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
            }
        }
    }

    /// The directory part of a path ("." for a bare name).
    package static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of a path.
    package static func baseName(of path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }
}
