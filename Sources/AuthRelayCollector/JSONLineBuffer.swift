import Glibc

/// A reusable byte buffer that JSON lines are written into, straight from C
/// strings: no Swift `String` per field, no allocation once it has grown to the
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

    func append(bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Appends a decimal number.
    func append(_ value: UInt64) {
        reserve(20)
        if value < 10 {
            base[count] = 0x30 &+ UInt8(value)
            count += 1
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch on the stack
        let length = withUnsafeMutableBytes(of: &digits) { scratch -> Int in
            var remaining = value
            var position = scratch.count
            while remaining > 0 {
                position -= 1
                scratch[position] = 0x30 &+ UInt8(remaining % 10)
                remaining /= 10
            }
            let length = scratch.count - position
            (base + count).update(from: scratch.baseAddress!.assumingMemoryBound(to: UInt8.self) + position, count: length)
            return length
        }
        count += length
    }

    func append(_ value: Int64) {
        if value < 0 {
            append("-")
            append(UInt64(bitPattern: 0 &- value))
        } else {
            append(UInt64(value))
        }
    }

    /// Appends a C string (NULL reads as "") as a quoted, escaped JSON string.
    func appendQuoted(cString: UnsafePointer<CChar>?) {
        guard let cString else {
            append("\"\"")
            return
        }
        let length = strlen(cString)
        cString.withMemoryRebound(to: UInt8.self, capacity: length) { appendQuoted($0, count: length) }
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
    func appendQuotedHex(_ source: UnsafeRawPointer?, count length: Int) {
        reserve(length * 2 + 2)
        var out = base + count
        out.pointee = 0x22
        out += 1
        if let bytes = source?.assumingMemoryBound(to: UInt8.self) {
            for index in 0..<length {
                out[0] = Self.hexDigits[Int(bytes[index] >> 4)]
                out[1] = Self.hexDigits[Int(bytes[index] & 0x0F)]
                out += 2
            }
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
