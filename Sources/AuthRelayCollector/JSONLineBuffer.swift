/// A reusable byte buffer that JSON lines are written into, straight from the
/// received bytes: no Swift `String` per field, no allocation once it has grown to the
/// largest batch.
///
/// Strings are escaped so every line is valid JSON whatever the bytes were:
/// `"` and `\` and control characters are escaped, and invalid UTF-8 becomes
/// U+FFFD, one per maximal invalid subpart (the rule Swift's own String repair
/// follows, so an id read back from the file equals `String(cString:)` of the wire bytes).
final class JSONLineBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 256 * 1024) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func removeAll() { count = 0 }

    @inline(__always)
    private func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Appends literal JSON text (keys, punctuation, fixed values).
    @inline(__always)
    func append(_ text: StaticString) {
        let length = text.utf8CodeUnitCount
        reserve(length)
        (base + count).update(from: text.utf8Start, count: length)
        count += length
    }

    /// Appends a piece of a line's fixed text (a key, a key with its fixed
    /// value): one copy of its whole slot, a size known when compiling, which
    /// becomes a few moves as a literal's copy does. A copy of a size known
    /// only at run time calls memcpy: that doubled the instructions spent on
    /// an event's fields (callgrind). The bytes past the fragment are overwritten next.
    @inline(__always)
    func append(_ fragment: LineFragment) {
        reserve(LineFragment.slotSize)
        UnsafeMutableRawPointer(base + count).copyMemory(from: fragment.slot, byteCount: LineFragment.slotSize)
        count += fragment.count
    }

    @inline(__always)
    func append(bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Appends a decimal number: two digits per division, from a table, then
    /// one copy of a fixed size. Numbers were the writer's largest cost (a
    /// division per digit, then a memcpy call): 44 of 313 million instructions
    /// for 51,200 events, 29 with this (callgrind).
    func append(_ value: UInt64) {
        reserve(24)
        if value < 10 {
            base[count] = 0x30 &+ UInt8(value)
            count += 1
            return
        }
        // The digits end at byte 24 of 48 bytes of scratch on the stack, so
        // the 24 bytes copied from the first digit stay inside it.
        var scratch: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        let length = withUnsafeMutableBytes(of: &scratch) { scratch -> Int in
            let digits = scratch.baseAddress!
            let pairs = Self.digitPairs
            var remaining = value
            var position = 24
            while remaining >= 100 {
                let (quotient, pair) = remaining.quotientAndRemainder(dividingBy: 100)
                position -= 2
                (digits + position).copyMemory(from: pairs + Int(pair) &* 2, byteCount: 2)
                remaining = quotient
            }
            if remaining >= 10 {
                position -= 2
                (digits + position).copyMemory(from: pairs + Int(remaining) &* 2, byteCount: 2)
            } else {
                position -= 1
                digits.storeBytes(of: 0x30 &+ UInt8(remaining), toByteOffset: position, as: UInt8.self)
            }
            UnsafeMutableRawPointer(base + count).copyMemory(from: digits + position, byteCount: 24)
            return 24 - position
        }
        count += length
    }

    /// "00", "01", ... "99", in the program's constant data.
    @inline(__always)
    private static var digitPairs: UnsafeRawPointer {
        UnsafeRawPointer((
            "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
                as StaticString).utf8Start)
    }

    func append(_ value: Int64) {
        if value < 0 {
            append("-")
            append(UInt64(bitPattern: 0 &- value))
        } else {
            append(UInt64(value))
        }
    }

    /// Appends bytes (a path or an id as received) as a quoted, escaped JSON string.
    @inline(__always)
    func appendQuoted(_ bytes: UnsafeRawBufferPointer) {
        guard let start = bytes.baseAddress, !bytes.isEmpty else {
            append("\"\"")
            return
        }
        appendQuoted(start.assumingMemoryBound(to: UInt8.self), count: bytes.count)
    }

    /// Appends bytes as a quoted, escaped JSON string.
    func appendQuoted(_ source: UnsafePointer<UInt8>, count length: Int) {
        reserve(length * 6 + 2)  // worst case: every byte becomes \u00XX or \ufffd
        var out = base + count
        out.pointee = 0x22
        out += 1
        var index = 0
        while index < length {
            let byte = source[index]
            if byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C {
                out.pointee = byte
                out += 1
                index += 1
            } else if byte < 0x80 {
                out = Self.escapeASCII(byte, out)
                index += 1
            } else {
                let valid = Self.validSequenceLength(source + index, available: length - index)
                if valid > 0 {
                    out.update(from: source + index, count: valid)
                    out += valid
                    index += valid
                } else {
                    out = Self.writeReplacement(out)
                    index += -valid
                }
            }
        }
        out.pointee = 0x22
        out += 1
        count = out - base
    }

    /// Appends bytes as a quoted lowercase hex string.
    func appendQuotedHex(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count * 2 + 2)
        var out = base + count
        out.pointee = 0x22
        out += 1
        for byte in bytes {
            out[0] = Self.hexDigits[Int(byte >> 4)]
            out[1] = Self.hexDigits[Int(byte & 0x0F)]
            out += 2
        }
        out.pointee = 0x22
        out += 1
        count = out - base
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func escapeASCII(_ byte: UInt8, _ out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        out[0] = 0x5C  // backslash
        switch byte {
        case 0x22: out[1] = 0x22
        case 0x5C: out[1] = 0x5C
        case 0x0A: out[1] = 0x6E  // n
        case 0x0D: out[1] = 0x72  // r
        case 0x09: out[1] = 0x74  // t
        case 0x08: out[1] = 0x62  // b
        case 0x0C: out[1] = 0x66  // f
        default:
            out[1] = 0x75  // u00XX
            out[2] = 0x30
            out[3] = 0x30
            out[4] = hexDigits[Int(byte >> 4)]
            out[5] = hexDigits[Int(byte & 0x0F)]
            return out + 6
        }
        return out + 2
    }

    private static func writeReplacement(_ out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        // "\ufffd"
        out[0] = 0x5C; out[1] = 0x75; out[2] = 0x66; out[3] = 0x66; out[4] = 0x66; out[5] = 0x64
        return out + 6
    }

    /// For a non-ASCII lead byte: the length of the well-formed UTF-8 sequence that
    /// starts here, or minus the length of the maximal invalid subpart (at least 1).
    /// Ranges from Unicode's table of well-formed UTF-8 byte sequences.
    static func validSequenceLength(_ bytes: UnsafePointer<UInt8>, available: Int) -> Int {
        let lead = bytes[0]
        let length: Int
        var secondLow: UInt8 = 0x80
        var secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondHigh = 0x9F
        case 0xF0: length = 4; secondLow = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondHigh = 0x8F
        default: return -1
        }
        var index = 1
        while index < length {
            guard index < available else { return -index }
            let byte = bytes[index]
            let (low, high) = index == 1 ? (secondLow, secondHigh) : (UInt8(0x80), UInt8(0xBF))
            guard byte >= low && byte <= high else { return -index }
            index += 1
        }
        return length
    }
}

/// A piece of fixed line text of at most `slotSize` bytes, laid out at the
/// start of a slot of that size (see `JSONLineBuffer.append(_:)`). Made once,
/// never freed: a table, like a literal.
struct LineFragment: @unchecked Sendable {
    // @unchecked: the slot is written once, in init, and only read after.
    static var slotSize: Int { 32 }  // a constant, so the copy's size is known when compiling

    let slot: UnsafeRawPointer
    let count: Int

    init(_ text: String) {
        let bytes = Array(text.utf8)
        precondition(bytes.count <= Self.slotSize, "a line fragment holds at most \(Self.slotSize) bytes: \(text)")
        let slot = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.slotSize, alignment: 16)
        slot.initializeMemory(as: UInt8.self, repeating: 0)
        slot.copyBytes(from: bytes)
        self.slot = UnsafeRawPointer(slot.baseAddress!)
        count = bytes.count
    }
}

/// JSON text for programs that print what the collector reports (`authrelay
/// stats`): a String quoted and escaped by the output's own rules.
package enum JSONText {
    package static func quoted(_ text: String) -> String {
        let buffer = JSONLineBuffer(capacity: text.utf8.count * 6 + 2)
        var text = text
        text.withUTF8 { buffer.appendQuoted(UnsafeRawBufferPointer($0)) }
        return String(decoding: buffer.bytes, as: UTF8.self)
    }
}
