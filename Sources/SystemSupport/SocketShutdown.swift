import Glibc

extension FileDescriptor {
    /// shutdown(2) of both directions. A thread blocked in accept(2) or read(2)
    /// on this socket returns (accept fails, read sees end of stream), which
    /// close(2) would not guarantee: how a blocking server thread is ended.
    package func shutdownReadingAndWriting() {
        _ = Glibc.shutdown(rawValue, Int32(SHUT_RDWR))
    }
}
