/// NumPy's .npy format (versions 1-3), read into and written from `Tensor`. Pure bytes, no files, so the
/// CLI, the tests, the cascade runner and the wasm module share one reader.
public enum NPY {
    /// Parses little-endian float32/float64/float16, int8/16/32/64, uint8/16 and bool arrays in C order.
    public static func parse(_ b: [UInt8]) throws(KedgeError) -> Tensor {
        func fail(_ m: String) -> KedgeError { KedgeError(.invalidFile, "not a readable .npy file: " + m) }
        guard b.count >= 10, b[0] == 0x93, b[1] == 0x4E, b[2] == 0x55, b[3] == 0x4D, b[4] == 0x50, b[5] == 0x59 else {
            throw fail("missing the \\x93NUMPY magic")
        }
        let major = b[6]
        var headerLen: Int
        var start: Int
        switch major {
        case 1:
            headerLen = Int(b[8]) | Int(b[9]) << 8
            start = 10
        case 2, 3:
            guard b.count >= 12 else { throw fail("truncated header") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            start = 12
        default:
            throw fail("format version \(major) is unknown")
        }
        guard headerLen >= 0, start + headerLen <= b.count else { throw fail("truncated header") }
        let header = String(decoding: b[start..<(start + headerLen)], as: UTF8.self)
        let dataStart = start + headerLen

        guard let descr = value(of: "descr", in: header), let order = value(of: "fortran_order", in: header),
            let shapeText = value(of: "shape", in: header)
        else { throw fail("header lacks descr, fortran_order or shape") }
        if order.hasPrefix("True") { throw fail("Fortran-order arrays are not supported; save with C order") }
        let dtype = descr.filter { $0 != "'" && $0 != "\"" && $0 != " " }
        var shape: [Int] = []
        var cur = -1
        for c in shapeText.utf8 {
            if c >= 0x30 && c <= 0x39 {
                cur = (cur < 0 ? 0 : cur) * 10 + Int(c - 0x30)
                if cur > 1 << 40 { throw fail("shape is too large") }
            } else if c == UInt8(ascii: ",") || c == UInt8(ascii: ")") {
                if cur >= 0 { shape.append(cur) }
                cur = -1
                if c == UInt8(ascii: ")") { break }
            }
        }
        var count = 1
        for d in shape {
            count *= d
            if count > 1 << 34 { throw fail("shape is too large") }
        }
        // The element kind is decided once; the loop below runs per element.
        let kind: Element
        switch dtype {
        case "<f4": kind = .f32
        case "<f8": kind = .f64
        case "<f2": kind = .f16
        case "<i4": kind = .i32
        case "<i8": kind = .i64
        case "<i2": kind = .i16
        case "|i1", "<i1": kind = .i8
        case "<u4": kind = .unsigned(4)
        case "<u8": kind = .unsigned(8)
        case "<u2": kind = .unsigned(2)
        case "|u1", "<u1", "|b1": kind = .unsigned(1)
        default: throw fail("dtype '\(dtype)' is not supported (use float32, float64, float16 or an integer type)")
        }
        let size = kind.size
        guard b.count - dataStart >= count * size else {
            throw fail("data is truncated: \(b.count - dataStart) bytes for \(count) elements of \(size) bytes")
        }
        let data = b.withUnsafeBufferPointer { buf -> [Float] in
            let p = buf.baseAddress! + dataStart
            return [Float](unsafeUninitializedCapacity: count) { out, n in
                for i in 0..<count {
                    let q = p + i * size
                    var bits: UInt64 = 0
                    for k in 0..<size { bits |= UInt64(q[k]) << (8 * UInt64(k)) }
                    switch kind {
                    case .f32: out[i] = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
                    case .f64: out[i] = Float(Double(bitPattern: bits))
                    case .f16: out[i] = halfToFloat(UInt16(truncatingIfNeeded: bits))
                    case .i32: out[i] = Float(Int32(bitPattern: UInt32(truncatingIfNeeded: bits)))
                    case .i64: out[i] = Float(Int64(bitPattern: bits))
                    case .i16: out[i] = Float(Int16(bitPattern: UInt16(truncatingIfNeeded: bits)))
                    case .i8: out[i] = Float(Int8(bitPattern: UInt8(truncatingIfNeeded: bits)))
                    case .unsigned: out[i] = Float(bits)
                    }
                }
                n = count
            }
        }
        return Tensor(shape: shape, data: data)
    }

    enum Element {
        case f32, f64, f16, i32, i64, i16, i8
        case unsigned(Int)

        var size: Int {
            switch self {
            case .f32, .i32: return 4
            case .f64, .i64: return 8
            case .f16, .i16: return 2
            case .i8: return 1
            case .unsigned(let n): return n
            }
        }
    }

    /// Serializes as version 1.0, '<f4', C order, header padded to 64 bytes as NumPy does.
    public static func serialize(_ t: Tensor) -> [UInt8] {
        var shape = "("
        for (i, d) in t.shape.enumerated() { shape += (i > 0 ? ", " : "") + String(d) }
        if t.shape.count == 1 { shape += "," }
        shape += ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let hl = header.utf8.count
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(hl & 0xFF), UInt8(hl >> 8)]
        out.reserveCapacity(out.count + hl + 4 * t.count)
        out += Array(header.utf8)
        for v in t.data {
            let bits = v.bitPattern
            out.append(UInt8(bits & 0xFF))
            out.append(UInt8((bits >> 8) & 0xFF))
            out.append(UInt8((bits >> 16) & 0xFF))
            out.append(UInt8(bits >> 24))
        }
        return out
    }

    /// The text after `'key':` in a Python dict literal, up to the next top-level comma.
    static func value(of key: String, in header: String) -> String? {
        let u = Array(header.utf8)
        let k = Array(("'" + key + "'").utf8)
        guard u.count >= k.count else { return nil }
        var i = 0
        while i + k.count <= u.count {
            if Array(u[i..<(i + k.count)]) == k {
                var j = i + k.count
                while j < u.count && (u[j] == UInt8(ascii: ":") || u[j] == UInt8(ascii: " ")) { j += 1 }
                var depth = 0
                var e = j
                while e < u.count {
                    let c = u[e]
                    if c == UInt8(ascii: "(") { depth += 1 }
                    if c == UInt8(ascii: ")") { depth -= 1; if depth == 0 { e += 1; break } }
                    if c == UInt8(ascii: ",") && depth == 0 { break }
                    e += 1
                }
                return String(decoding: u[j..<e], as: UTF8.self)
            }
            i += 1
        }
        return nil
    }
}
