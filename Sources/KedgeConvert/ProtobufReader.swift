import KedgeCore

/// A reader of the protobuf wire format, enough for Keras.js's `model.proto` (two messages of strings, bytes,
/// floats and a repeated uint32). Written by hand rather than generated with swift-protobuf: the schema is
/// frozen (Keras.js is archived), has seven fields, and a generated file plus a package dependency would cost
/// more than these hundred lines. Unknown fields are skipped, as protobuf requires.
struct ProtobufReader {
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    struct Field {
        var number: Int
        var wireType: WireType
        /// The value of a varint field, or the bits of a fixed32/fixed64 one.
        var scalar: UInt64
        /// The payload of a length-delimited field (indices into the reader's bytes).
        var payload: ArraySlice<UInt8>
    }

    let bytes: ArraySlice<UInt8>
    /// Names the message in errors (`model.bin: Weights #3`).
    let what: String
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>, what: String) {
        self.bytes = bytes
        self.what = what
        self.position = bytes.startIndex
    }

    var atEnd: Bool { position >= bytes.endIndex }

    func truncated() -> KedgeError {
        KedgeError(
            .invalidFile,
            "\(what): the protobuf data ends in the middle of a field (truncated or not a Keras.js .bin file)")
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw truncated() }
            let b = bytes[position]
            position += 1
            guard shift < 64 else {
                throw KedgeError(
                    .invalidFile, "\(what): a protobuf varint is longer than 10 bytes (not a Keras.js .bin file)")
            }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func fixed(_ count: Int) throws -> UInt64 {
        guard bytes.endIndex - position >= count else { throw truncated() }
        var v: UInt64 = 0
        for i in 0..<count { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += count
        return v
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws -> Field? {
        guard !atEnd else { return nil }
        let key = try varint()
        let number = Int(key >> 3)
        guard number > 0, let wt = WireType(rawValue: key & 7) else {
            throw KedgeError(
                .invalidFile,
                "\(what): protobuf field key \(key) at byte \(position - bytes.startIndex) is not valid (wire type \(key & 7)); not a Keras.js .bin file?"
            )
        }
        switch wt {
        case .varint: return Field(number: number, wireType: wt, scalar: try varint(), payload: [])
        case .fixed64: return Field(number: number, wireType: wt, scalar: try fixed(8), payload: [])
        case .fixed32: return Field(number: number, wireType: wt, scalar: try fixed(4), payload: [])
        case .lengthDelimited:
            let n = try varint()
            guard n <= UInt64(bytes.endIndex - position) else { throw truncated() }
            let start = position
            position += Int(n)
            return Field(number: number, wireType: wt, scalar: 0, payload: bytes[start..<position])
        }
    }

    static func string(_ f: Field) -> String { String(decoding: f.payload, as: UTF8.self) }

    static func float(_ f: Field) -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: f.scalar)) }

    /// A repeated scalar field: packed (one length-delimited run of varints) or one varint per field.
    static func appendUInt32s(_ f: Field, to out: inout [Int], what: String) throws {
        if f.wireType == .varint {
            out.append(Int(truncatingIfNeeded: f.scalar))
            return
        }
        guard f.wireType == .lengthDelimited else {
            throw KedgeError(.invalidFile, "\(what): field \(f.number) should hold integers")
        }
        var r = ProtobufReader(f.payload, what: what)
        while !r.atEnd { out.append(Int(truncatingIfNeeded: try r.varint())) }
    }
}
