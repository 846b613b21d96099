/// The `ViewBatchDecoder`s of one version's REPORT_BATCH: one per record in
/// progress (each connection decodes its own), taken when a record starts and
/// given back when it ends, so a warm collector makes none per batch.
///
/// Runs on the RPC server's thread, as the handlers do; not thread-safe.
final class ViewBatchDecoderPool {
    let version: ViewBatchDecoder.Version
    private var free: ContiguousArray<ViewBatchDecoder> = []
    /// The decoder whose `finish` last succeeded: the dispatcher calls the handler
    /// right after, with that decoder's `argument`.
    var finished: ViewBatchDecoder?

    init(_ version: ViewBatchDecoder.Version) {
        self.version = version
    }

    func take() -> ViewBatchDecoder {
        if let decoder = free.popLast() {
            decoder.isFree = false
            return decoder
        }
        let decoder = ViewBatchDecoder(version)
        decoder.pool = self
        return decoder
    }

    func giveBack(_ decoder: ViewBatchDecoder) {
        if finished === decoder { finished = nil }
        guard !decoder.isFree else { return }  // reset twice
        decoder.isFree = true
        free.append(decoder)
    }

    /// The decoder that decoded the handler's `argument` (its `batch`), or nil when
    /// the dispatcher decoded it with rpcgen's routine instead (no decoder finished it).
    func decoder(of argument: UnsafeRawPointer) -> ViewBatchDecoder? {
        guard let finished, UnsafeRawPointer(finished.argument) == argument else { return nil }
        return finished
    }
}
