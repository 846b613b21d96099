extension PollEvents {
    /// POLLRDHUP (Linux): the peer shut its side down (closed, or shutdown(SHUT_WR)).
    /// Asked for alone, it reports a peer gone away without reporting data to
    /// read: for a connection the poller does not want to read yet.
    /// (0x2000: Glibc's module leaves POLLRDHUP out, it needs _GNU_SOURCE.)
    package static let readHangUp = PollEvents(rawValue: 0x2000)
}
