/// Universal Binary JSON (the format of xgboost's `.ubj` models) into `JSON` values. Typed, counted
/// containers (`[$d#L...`) are read in bulk; big-endian numbers; limits guard against hostile counts.
public struct UBJSONParser {
    private let b: [UInt8]
    private var pos = 0
    private var depth = 0

    public static func parse(_ bytes: [UInt8]) throws(KedgeError) -> JSON {
        var p = UBJSONParser(b: bytes)
        let v = try p.value()
        return v
    }

    private init(b: [UInt8]) { self.b = b }

    private func fail(_ m: String) -> KedgeError { KedgeError(.invalidFile, "UBJSON: \(m) at byte \(pos)") }

    private mutating func byte() throws(KedgeError) -> UInt8 {
        guard pos < b.count else { throw fail("unexpected end of data") }
        pos += 1
        return b[pos - 1]
    }

    private mutating func bigEndian(_ n: Int) throws(KedgeError) -> UInt64 {
        guard pos + n <= b.count else { throw fail("unexpected end of data") }
        var v: UInt64 = 0
        for i in 0..<n { v = v << 8 | UInt64(b[pos + i]) }
        pos += n
        return v
    }

    private mutating func number(_ t: UInt8) throws(KedgeError) -> Double {
        switch t {
        case UInt8(ascii: "i"): return Double(Int8(bitPattern: try byte()))
        case UInt8(ascii: "U"): return Double(try byte())
        case UInt8(ascii: "I"): return Double(Int16(bitPattern: UInt16(try bigEndian(2))))
        case UInt8(ascii: "l"): return Double(Int32(bitPattern: UInt32(try bigEndian(4))))
        case UInt8(ascii: "L"): return Double(Int64(bitPattern: try bigEndian(8)))
        case UInt8(ascii: "d"): return Double(Float(bitPattern: UInt32(try bigEndian(4))))
        case UInt8(ascii: "D"): return Double(bitPattern: try bigEndian(8))
        default: throw fail("expected a number type, found byte \(t)")
        }
    }

    private mutating func count() throws(KedgeError) -> Int {
        let n = try number(try byte())
        guard n >= 0, n <= Double(b.count - pos) * 8 + 16 else { throw fail("implausible count") }
        return Int(n)
    }

    private mutating func string() throws(KedgeError) -> String {
        let n = try count()
        guard pos + n <= b.count else { throw fail("string runs past the end") }
        let s = String(decoding: b[pos..<(pos + n)], as: UTF8.self)
        pos += n
        return s
    }

    private mutating func value() throws(KedgeError) -> JSON {
        try typed(try byte())
    }

    private mutating func typed(_ t: UInt8) throws(KedgeError) -> JSON {
        switch t {
        case UInt8(ascii: "Z"): return .null
        case UInt8(ascii: "T"): return .bool(true)
        case UInt8(ascii: "F"): return .bool(false)
        case UInt8(ascii: "S"), UInt8(ascii: "H"): return .string(try string())
        case UInt8(ascii: "C"): return .string(String(decoding: [try byte()], as: UTF8.self))
        case UInt8(ascii: "["): return try container(array: true)
        case UInt8(ascii: "{"): return try container(array: false)
        default: return .number(try number(t))
        }
    }

    private mutating func container(array: Bool) throws(KedgeError) -> JSON {
        depth += 1
        if depth > 512 { throw fail("nesting deeper than 512") }
        defer { depth -= 1 }
        var elementType: UInt8? = nil
        var n = -1
        if pos < b.count && b[pos] == UInt8(ascii: "$") {
            pos += 1
            elementType = try byte()
            guard pos < b.count && b[pos] == UInt8(ascii: "#") else { throw fail("typed container without a count") }
        }
        if pos < b.count && b[pos] == UInt8(ascii: "#") {
            pos += 1
            n = try count()
        }
        var items: [JSON] = []
        var obj = JSONObject()
        var i = 0
        while true {
            if n >= 0 {
                if i == n { break }
            } else {
                guard pos < b.count else { throw fail("unterminated container") }
                if b[pos] == (array ? UInt8(ascii: "]") : UInt8(ascii: "}")) { pos += 1; break }
                if b[pos] == UInt8(ascii: "N") { pos += 1; continue }
            }
            var key = ""
            if !array { key = try string() }
            let v: JSON
            if let t = elementType { v = try typed(t) } else { v = try value() }
            if array { items.append(v) } else { obj[key] = v }
            i += 1
        }
        return array ? .array(items) : .object(obj)
    }
}
