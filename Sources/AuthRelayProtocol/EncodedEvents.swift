/// Events encoded once to XDR (what `xdr_ar_event` writes), kept as bytes: the
/// spool stores them so, and the sender sends them so (pass-through routines,
/// `PassThroughWire`), without a Swift value or a C struct in between.
package enum EventXDR {
    /// Offsets into one encoded ar_event (Protocol.md's field order).
    static let sequenceOffset = 0
    static let timestampOffset = 8
    /// seq, timestamp_ns, kind, verdict, decision_ns, pid, ppid, uid, gid, flags: then exe_path's length.
    package static let fixedBytes = 52

    /// Appends `event` as xdr_ar_event would encode it; its size in bytes
    /// (`event.encodedSize`). Strings must be within bounds and hold no NUL
    /// (the sender sanitizes every event first).
    @discardableResult
    package static func append(_ event: Event, to bytes: inout [UInt8]) -> Int {
        let size = event.encodedSize
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: size))
        bytes.withUnsafeMutableBytes { raw in _ = encode(event, to: raw.baseAddress! + start) }
        return size
    }

    /// The most bytes one encoded event can take (both paths and the digest at their bounds).
    package static let maxEventBytes = WireSize.event(executablePath: Event.maxPathBytes, targetPath: Event.maxPathBytes,
                                                      digest: Event.maxDigestBytes)

    /// Writes `event` at `destination`, which has room for `event.encodedSize`
    /// bytes (initialized or not: every byte is written, padding included); that size.
    @discardableResult
    package static func encode(_ event: Event, to destination: UnsafeMutableRawPointer) -> Int {
        var writer = Writer(base: destination)
        writer.put(event.sequence)
        writer.put(event.timestampNanoseconds)
        writer.put(event.kind.rawValue)
        writer.put(event.verdict.rawValue)
        writer.put(event.decisionNanoseconds)
        writer.put(UInt32(bitPattern: event.pid))
        writer.put(UInt32(bitPattern: event.ppid))
        writer.put(event.uid)
        writer.put(event.gid)
        writer.put(event.flags.rawValue)
        writer.putString(event.executablePath)
        writer.putString(event.targetPath)
        event.digest.withUnsafeBytes { writer.putBytes($0) }
        return writer.offset
    }

    /// Big-endian words and padded opaques.
    private struct Writer {
        var base: UnsafeMutableRawPointer
        var offset = 0

        mutating func put(_ value: UInt32) {
            base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }

        mutating func put(_ value: UInt64) {
            put(UInt32(truncatingIfNeeded: value >> 32))
            put(UInt32(truncatingIfNeeded: value))
        }

        /// The string's own UTF-8 when it is contiguous (native strings are): no copy, no retain.
        mutating func putString(_ text: String) {
            if let done: Void = text.utf8.withContiguousStorageIfAvailable({ putBytes(UnsafeRawBufferPointer($0)) }) {
                return done
            }
            var copy = text
            copy.withUTF8 { putBytes(UnsafeRawBufferPointer($0)) }
        }

        mutating func putBytes(_ bytes: UnsafeRawBufferPointer) {
            put(UInt32(bytes.count))
            if let source = bytes.baseAddress { (base + offset).copyMemory(from: source, byteCount: bytes.count) }
            let padded = WireSize.padded(bytes.count)
            if padded > bytes.count { (base + offset + bytes.count).initializeMemory(as: UInt8.self, repeating: 0, count: padded - bytes.count) }
            offset += padded
        }
    }

    // MARK: Reading encoded events

    /// The byte length of the encoded event at `offset`, or nil when the bytes
    /// there do not hold a whole event within the protocol's bounds.
    package static func length(in bytes: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        var position = offset + fixedBytes
        for limit in [Event.maxPathBytes, Event.maxPathBytes, Event.maxDigestBytes] {
            guard position + 4 <= bytes.count else { return nil }
            let count = Int(word(bytes, at: position))
            guard count <= limit else { return nil }
            position += 4 + WireSize.padded(count)
        }
        return position <= bytes.count ? position - offset : nil
    }

    package static func sequence(in bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        hyper(bytes, at: offset + sequenceOffset)
    }

    package static func timestamp(in bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        hyper(bytes, at: offset + timestampOffset)
    }

    /// The end offsets of `count` events from `offset` (the first ends at
    /// `ends[0]`), or nil when the bytes do not hold them exactly.
    package static func boundaries(of bytes: UnsafeRawBufferPointer, count: Int) -> [Int]? {
        var ends: [Int] = []
        ends.reserveCapacity(count)
        var offset = 0
        for _ in 0..<count {
            guard let length = length(in: bytes, at: offset) else { return nil }
            offset += length
            ends.append(offset)
        }
        return offset == bytes.count ? ends : nil
    }

    private static func word(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    private static func hyper(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(word(bytes, at: offset)) << 32 | UInt64(word(bytes, at: offset + 4))
    }
}

extension WireSize {
    /// An ONC RPC call header with AUTH_NONE credential and verifier: ten words.
    public static let callHeaderWithoutAuth = 10 * 4

    /// ar_loss_range: two hypers and an enum.
    public static let lossRange = 2 * 8 + 4

    /// ar_agent_status: nine hypers, two ints.
    public static let agentStatus = 9 * 8 + 2 * 4

    /// ar3_batch_header with ids of these lengths and `losses` loss ranges.
    public static func batchHeaderV3(agentID: Int, bootID: Int, losses: Int) -> Int {
        4 + padded(agentID) + 4 + padded(bootID) + 8 + 4 + losses * lossRange + agentStatus
    }

    /// What libtirpc's svcudp_create/svc_dg_create take by default (UDPMSGSIZE):
    /// a plain rpcgen server truncates a longer datagram and answers GARBAGE_ARGS.
    public static let defaultServerDatagram = 8_800
}
