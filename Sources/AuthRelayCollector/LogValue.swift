import Logging

/// Client-supplied text (agent and boot ids, reported_by) made safe for a log
/// line: it goes into a line only as metadata built here, never interpolated
/// into the message.
///
/// Text made only of letters, digits and `-._:/@+` stays bare; anything else
/// is quoted, with `"` and `\` escaped, control characters (C0, DEL, C1), the
/// Unicode line and paragraph separators and the bidirectional controls as
/// `\u{XXXX}` (or `\n`, `\r`, `\t`), and each byte of invalid UTF-8 as `\xHH`.
/// So a newline in an agent id cannot start a line of its own, nor can a
/// right-to-left override make one id read as another.
package enum LogValue {
    package static func escaped(_ bytes: UnsafeRawBufferPointer) -> Logger.MetadataValue {
        .string(text(bytes))
    }

    package static func escaped(_ text: String) -> Logger.MetadataValue {
        var text = text
        return .string(text.withUTF8 { Self.text(UnsafeRawBufferPointer($0)) })
    }

    /// The escaped text of a String (already valid Unicode: its controls are what is escaped).
    package static func text(_ string: String) -> String {
        var string = string
        return string.withUTF8 { text(UnsafeRawBufferPointer($0)) }
    }

    /// The escaped text itself.
    package static func text(_ bytes: UnsafeRawBufferPointer) -> String {
        if !bytes.isEmpty, bytes.allSatisfy(isBare) { return String(decoding: bytes, as: UTF8.self) }
        var out = "\""
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte < 0x80 {
                switch byte {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
                default: out += "\\u{" + hex(UInt32(byte), digits: 4) + "}"
                }
                index += 1
                continue
            }
            let length = bytes.baseAddress.map {
                JSONLineBuffer.validSequenceLength($0.assumingMemoryBound(to: UInt8.self) + index, available: bytes.count - index)
            } ?? -1
            guard length > 0 else {
                for offset in 0..<(-length) { out += "\\x" + hex(UInt32(bytes[index + offset]), digits: 2) }
                index += -length
                continue
            }
            let scalar = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + length)]), as: UTF8.self)
                .unicodeScalars.first!
            if isInvisibleControl(scalar.value) {
                out += "\\u{" + hex(scalar.value, digits: 4) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            index += length
        }
        return out + "\""
    }

    private static func isBare(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "@"),
             UInt8(ascii: "+"): true
        default: false
        }
    }

    /// C1 controls (NEL among them), the line and paragraph separators, and the bidirectional controls.
    private static func isInvisibleControl(_ value: UInt32) -> Bool {
        (0x80...0x9F).contains(value) || value == 0x2028 || value == 0x2029 || (0x202A...0x202E).contains(value)
            || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F || value == 0x061C
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
