/// Choices read off the front of a fuzz input (how to cut it, which option);
/// past its end every choice is zero, so any input is a valid one.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Two bytes, big-endian.
    public mutating func uint16() -> UInt16 {
        UInt16(byte()) << 8 | UInt16(byte())
    }

    /// The next `count` bytes, or fewer at the end.
    public mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let taken = min(max(count, 0), remaining)
        defer { offset += taken }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)])
    }

    /// Everything not yet taken.
    public mutating func rest() -> UnsafeRawBufferPointer {
        take(remaining)
    }

    /// Piece sizes for cutting bytes that arrive as a stream: a count byte, then
    /// that many sizes (one byte each, 1...256); none means one piece.
    public mutating func pieces() -> Pieces {
        let count = Int(byte() % 32)
        return Pieces(sizes: (0..<count).map { _ in Int(byte()) + 1 })
    }
}

/// How bytes are cut into pieces: the sizes in turn, over and over.
public struct Pieces {
    public let sizes: [Int]

    public init(sizes: [Int]) {
        self.sizes = sizes
    }

    /// The ranges that cut `0..<count`, in order; one range when there are no sizes.
    public func cut(_ count: Int) -> [Range<Int>] {
        guard !sizes.isEmpty else { return [0..<count] }
        var ranges: [Range<Int>] = []
        var start = 0
        var index = 0
        while start < count {
            let end = min(start + sizes[index % sizes.count], count)
            ranges.append(start..<end)
            start = end
            index += 1
        }
        return ranges
    }

    /// The bytes the choices were read from, for a seed: the count byte and the sizes.
    public var encoded: [UInt8] { [UInt8(sizes.count)] + sizes.map { UInt8($0 - 1) } }
}
