import CSystemSupport
import Glibc

/// An open file descriptor that this value owns: closed exactly once, when
/// the owner closes it or goes away, and moved, never copied (swift-system's
/// `FileDescriptor`, NIO's `BaseSocket`). A late user of a copied raw number
/// cannot write into a descriptor that was closed and reused.
///
/// `rawValue` is there for what must see the number (poll sets, libtirpc
/// handles, child processes); whoever reads it does not own it.
package struct FileDescriptor: ~Copyable, Sendable {
    package let rawValue: Int32

    /// Takes ownership of an open descriptor.
    package init(adopting rawValue: Int32) {
        precondition(rawValue >= 0, "FileDescriptor(adopting:) needs an open descriptor, not \(rawValue)")
        self.rawValue = rawValue
    }

    deinit {
        // Linux closes the descriptor even when close() reports EINTR: never retry.
        _ = Glibc.close(rawValue)
    }

    /// Closes now and reports a failure (EIO of a delayed write, say).
    package consuming func close() throws(SystemError) {
        let fd = rawValue
        discard self
        if Glibc.close(fd) != 0 && Glibc.errno != EINTR {
            throw SystemError(function: "close", errno: Glibc.errno)
        }
    }

    /// Gives the descriptor away (to a libtirpc handle that closes it, say): no close here.
    package consuming func releaseOwnership() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }
}

// MARK: Opening and I/O

extension FileDescriptor {
    /// open(2), always with O_CLOEXEC.
    package static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws(SystemError) -> FileDescriptor {
        let fd = try systemCall("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(adopting: fd)
    }

    /// open(2) of a NUL-terminated path the caller laid out (the agent's /proc
    /// reads, which must not allocate); nil when it fails.
    package static func open(cPath path: UnsafePointer<CChar>, _ flags: Int32) -> FileDescriptor? {
        let fd = Glibc.open(path, flags | O_CLOEXEC)
        return fd >= 0 ? FileDescriptor(adopting: fd) : nil
    }

    /// A pipe's two ends, both close-on-exec.
    package static func pipe(nonBlocking: Bool = false) throws(SystemError) -> Pipe {
        var ends: [Int32] = [-1, -1]
        _ = try systemCall("pipe") { Glibc.pipe(&ends) }
        let pipe = Pipe(read: FileDescriptor(adopting: ends[0]), write: FileDescriptor(adopting: ends[1]))
        for end in ends {
            _ = try systemCall("fcntl(F_SETFD)") { Glibc.fcntl(end, F_SETFD, FD_CLOEXEC) }
        }
        if nonBlocking {
            try pipe.read.setNonBlocking()
            try pipe.write.setNonBlocking()
        }
        return pipe
    }

    /// read(2): the bytes read, 0 at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        try systemCall("read") { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// read(2) on a non-blocking descriptor.
    package func readNonBlocking(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("read") { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// pread(2) at `offset`: the bytes read, 0 at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SystemError) -> Int {
        try systemCall("pread") { Glibc.pread(rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// Reads until `buffer` is full or the end of the file; the bytes read.
    package func readFully(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        var done = 0
        while done < buffer.count {
            let got = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// write(2): the bytes written (maybe fewer than given).
    package func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> Int {
        try systemCall("write") { Glibc.write(rawValue, bytes.baseAddress, bytes.count) }
    }

    /// write(2) on a non-blocking descriptor.
    package func writeNonBlocking(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("write") { Glibc.write(rawValue, bytes.baseAddress, bytes.count) }
    }

    /// Writes every byte, across short writes. A write that makes no progress
    /// is EIO: its errno would be stale.
    package func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let written = try write(UnsafeRawBufferPointer(rebasing: bytes[done...]))
            if written == 0 { throw SystemError(function: "write", errno: EIO, detail: "no progress") }
            done += written
        }
    }

    package func writeAll(_ bytes: [UInt8]) throws(SystemError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try writeAll(raw) } }.get()
    }

    /// fsync(2).
    package func sync() throws(SystemError) {
        _ = try systemCall("fsync") { Glibc.fsync(rawValue) }
    }

    /// fdatasync(2): the data and what is needed to read it back, not every timestamp.
    package func dataSync() throws(SystemError) {
        _ = try systemCall("fdatasync") { Glibc.fdatasync(rawValue) }
    }

    /// ftruncate(2).
    package func truncate(to size: Int64) throws(SystemError) {
        _ = try systemCall("ftruncate") { Glibc.ftruncate(rawValue, off_t(size)) }
    }

    /// lseek(2) to the end: the file's size as this descriptor sees it.
    package func seekToEnd() throws(SystemError) -> Int64 {
        Int64(try systemCall("lseek") { Glibc.lseek(rawValue, 0, SEEK_END) })
    }

    /// fstat(2).
    package func status() throws(SystemError) -> FileStatus {
        var raw = stat()
        _ = try systemCall("fstat") { Glibc.fstat(rawValue, &raw) }
        return FileStatus(raw)
    }

    /// flock(2) LOCK_EX | LOCK_NB: false when another process holds the lock.
    package func lockExclusively() throws(SystemError) -> Bool {
        while CSystemSupport_flock_exclusive_nonblocking(rawValue) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EWOULDBLOCK { return false }
            throw SystemError(function: "flock", errno: code)
        }
        return true
    }

    /// Sets or clears O_NONBLOCK.
    package func setNonBlocking(_ on: Bool = true) throws(SystemError) {
        let flags = try systemCall("fcntl(F_GETFL)") { Glibc.fcntl(rawValue, F_GETFL) }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags { _ = try systemCall("fcntl(F_SETFL)") { Glibc.fcntl(rawValue, F_SETFL, wanted) } }
    }

    /// Waits until the descriptor is ready for `events` or `timeout` passes
    /// (nil: no limit); the events that are ready, empty on timeout.
    package func wait(for events: PollEvents, timeout: Duration?) throws(SystemError) -> PollEvents {
        var set = PollSet()
        set.add(rawValue, events)
        _ = try set.wait(timeout: timeout)
        return set.ready(0)
    }
}

/// Both ends of a pipe, each owned.
package struct Pipe: ~Copyable, Sendable {
    package let read: FileDescriptor
    package let write: FileDescriptor
}

/// What fstat and stat say of a file, as far as this project asks.
package struct FileStatus: Sendable, Equatable {
    package enum Kind: Sendable, Equatable { case regular, directory, socket, other }

    package var kind: Kind
    package var size: Int64
    package var device: UInt64
    package var inode: UInt64
    /// The permission bits.
    package var mode: UInt32
    package var owner: UInt32

    init(_ raw: stat) {
        switch raw.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFSOCK: kind = .socket
        default: kind = .other
        }
        size = Int64(raw.st_size)
        device = UInt64(raw.st_dev)
        inode = UInt64(raw.st_ino)
        mode = UInt32(raw.st_mode & 0o7777)
        owner = raw.st_uid
    }
}
