extension FileDescriptor {
    /// Runs `body` on a descriptor that something else owns and will close (a
    /// libtirpc handle given it with CLSET_FD_CLOSE), to set an option on it.
    /// It is not closed here; the owner must keep it open through `body`.
    package static func borrowing<Result>(
        _ rawValue: Int32, _ body: (borrowing FileDescriptor) throws(SystemError) -> Result
    ) throws(SystemError) -> Result {
        let borrowed = FileDescriptor(adopting: rawValue)
        let result = Swift.Result { () throws(SystemError) in try body(borrowed) }
        _ = borrowed.releaseOwnership()
        return try result.get()
    }
}
