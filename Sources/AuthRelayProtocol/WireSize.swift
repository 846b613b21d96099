/// How many bytes protocol values take in XDR: the one place they are counted
/// (the sender's byte bounds, the collector's record cap, UDP's datagram cap).
public enum WireSize {
    /// An XDR opaque or string of `count` bytes, padded to 4.
    public static func padded(_ count: Int) -> Int { (count + 3) & ~3 }

    /// ar_event without its variable parts: 3 hypers, kind, verdict, 5 ints, 3 length words.
    public static let eventFixed = 3 * 8 + 2 * 4 + 5 * 4 + 3 * 4

    /// One ar_event with strings and digest of these lengths.
    public static func event(executablePath: Int, targetPath: Int, digest: Int) -> Int {
        eventFixed + padded(executablePath) + padded(targetPath) + padded(digest)
    }

    /// The largest ar_event the bounds allow.
    public static let largestEvent = event(executablePath: Event.maxPathBytes, targetPath: Event.maxPathBytes,
                                           digest: Event.maxDigestBytes)

    /// ar_batch_header with ids of these lengths: two strings, two hypers.
    public static func batchHeader(agentID: Int, bootID: Int) -> Int {
        4 + padded(agentID) + 4 + padded(bootID) + 2 * 8
    }

    /// The largest ar_batch_header.
    public static let largestBatchHeader = batchHeader(agentID: Event.maxIDBytes, bootID: Event.maxIDBytes)

    /// The largest ONC RPC call header: ten words and the largest credential
    /// and verifier (400 bytes of body each, RFC 5531).
    public static let largestCallHeader = 10 * 4 + 2 * 400

    /// The largest call a valid reporter can send: a full batch of the largest events.
    public static let largestBatchCall = largestCallHeader + largestBatchHeader + 4 + Event.maxBatchEvents * largestEvent
}
