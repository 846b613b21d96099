import Glibc

extension FileSystem {
    /// When `path` was last modified (stat's st_mtim), CLOCK_REALTIME
    /// nanoseconds; nil when nothing is there. The spool dates an unclean
    /// end by its last segment's last write.
    package static func modificationNanoseconds(_ path: String) throws(SystemError) -> UInt64? {
        var raw = stat()
        if stat(path, &raw) != 0 {
            if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR { return nil }
            throw SystemError(function: "stat", errno: Glibc.errno, path: path)
        }
        return UInt64(raw.st_mtim.tv_sec) * 1_000_000_000 + UInt64(raw.st_mtim.tv_nsec)
    }
}
