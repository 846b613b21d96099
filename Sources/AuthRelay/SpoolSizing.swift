import AuthRelayProtocol

/// The spool's default size, computed rather than guessed: it must hold a
/// 10-minute collector outage at 2,000 events/s of realistic paths.
///
/// A realistic event: a 48-byte executable path and a 128-byte target path
/// (deep project trees, /usr/lib/jvm/..., versioned library paths), no
/// digest: `WireSize.event` says 64 + 48 + 128 = 240 bytes of XDR. A record
/// adds 21 bytes of framing to a batch of events; at 2,000/s with a 2 ms
/// linger a record holds 4 events or more: at most 6 bytes each. 10 minutes
/// at 2,000/s is 1,200,000 events x 246 bytes = 295 MB; 10% for longer paths,
/// rounded up to whole segments, and one more segment (the one being written,
/// which eviction cannot take): 40 segments of 8 MiB, 320 MiB.
public enum SpoolSizing {
    public static let defaultSegmentBytes: Int64 = 8 << 20
    public static let realisticEventBytes = WireSize.event(executablePath: 48, targetPath: 128, digest: 0)
    /// Framing per event, records of at least 4 events.
    static let recordFramingPerEvent = 6

    /// Bytes that hold `outage` at `rate` events/s of `eventBytes` each, with a 10% margin, in whole segments plus one.
    public static func bytes(rate: Double, outage: Duration, eventBytes: Int = realisticEventBytes,
                             segmentBytes: Int64 = defaultSegmentBytes) -> Int64 {
        let seconds = Double(outage.components.seconds) + Double(outage.components.attoseconds) / 1e18
        let needed = rate * seconds * Double(eventBytes + recordFramingPerEvent) * 1.1
        let segments = Int64((needed / Double(segmentBytes)).rounded(.up)) + 1
        return segments * segmentBytes
    }

    /// A segment a sixteenth of the spool, between 64 KiB and 8 MiB: eviction
    /// takes a small share at a time, and a small spool still has segments.
    public static func segmentBytes(forMaxBytes maxBytes: Int64) -> Int64 {
        min(defaultSegmentBytes, max(64 << 10, maxBytes / 16))
    }

    /// The smallest spool the flags take.
    public static let minimumMaxBytes: Int64 = 1 << 20

    /// 320 MiB: a 10-minute outage at 2,000 events/s.
    public static let defaultMaxBytes = bytes(rate: 2000, outage: .seconds(600))
}
