/// A strict RFC 8259 parser over UTF-8 bytes, with depth and size limits so hostile input fails cleanly.
public struct JSONParser {
    private let bytes: [UInt8]
    private var pos = 0
    private var depth = 0
    private static let maxDepth = 512

    public static func parse(_ bytes: [UInt8], what: String = "JSON") throws(KedgeError) -> JSON {
        var p = JSONParser(bytes: bytes)
        do throws(KedgeError) {
            p.skipSpace()
            let v = try p.value()
            p.skipSpace()
            if p.pos != p.bytes.count { throw p.fail("unexpected data after the JSON value") }
            return v
        } catch {
            throw KedgeError(.invalidJSON, what + ": " + error.message)
        }
    }

    public static func parse(_ text: String, what: String = "JSON") throws(KedgeError) -> JSON {
        try parse(Array(text.utf8), what: what)
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func fail(_ msg: String) -> KedgeError {
        KedgeError(.invalidJSON, msg + " at byte " + String(pos))
    }

    private mutating func skipSpace() {
        while pos < bytes.count {
            let c = bytes[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
        }
    }

    private mutating func value() throws(KedgeError) -> JSON {
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        // Python's json module writes these for non-finite floats; Keras configs can contain them.
        case UInt8(ascii: "N"): try literal("NaN"); return .number(.nan)
        case UInt8(ascii: "I"): try literal("Infinity"); return .number(.infinity)
        default: return .number(try number())
        }
    }

    private mutating func literal(_ word: StaticString) throws(KedgeError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("unexpected end of input") }
        let p = word.utf8Start
        for i in 0..<n where bytes[pos + i] != p[i] { throw fail("invalid literal") }
        pos += n
    }

    private mutating func enter() throws(KedgeError) {
        depth += 1
        if depth > JSONParser.maxDepth { throw fail("nesting deeper than 512") }
    }

    private mutating func object() throws(KedgeError) -> JSON {
        try enter()
        pos += 1
        var o = JSONObject()
        skipSpace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; depth -= 1; return .object(o) }
        while true {
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let k = try string()
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            pos += 1
            skipSpace()
            o[k] = try value()
            skipSpace()
            guard pos < bytes.count else { throw fail("unexpected end of input") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        return .object(o)
    }

    private mutating func array() throws(KedgeError) -> JSON {
        try enter()
        pos += 1
        var a: [JSON] = []
        skipSpace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; depth -= 1; return .array(a) }
        while true {
            skipSpace()
            a.append(try value())
            skipSpace()
            guard pos < bytes.count else { throw fail("unexpected end of input") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        return .array(a)
    }

    private mutating func hex4() throws(KedgeError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            pos += 1
            v <<= 4
            switch c {
            case 0x30...0x39: v |= UInt32(c - 0x30)
            case 0x41...0x46: v |= UInt32(c - 0x41 + 10)
            case 0x61...0x66: v |= UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
        }
        return v
    }

    private mutating func string() throws(KedgeError) -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard pos < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if cp >= 0xD800 && cp < 0xDC00 {
                    guard pos + 2 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                    else { throw fail("lone surrogate") }
                    pos += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("invalid surrogate pair") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                }
                appendUTF8(cp, to: &out)
            default: throw fail("invalid escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func appendUTF8(_ cp: UInt32, to out: inout [UInt8]) {
        if cp < 0x80 {
            out.append(UInt8(cp))
        } else if cp < 0x800 {
            out.append(UInt8(0xC0 | (cp >> 6)))
            out.append(UInt8(0x80 | (cp & 0x3F)))
        } else if cp < 0x10000 {
            out.append(UInt8(0xE0 | (cp >> 12)))
            out.append(UInt8(0x80 | ((cp >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (cp & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (cp >> 18)))
            out.append(UInt8(0x80 | ((cp >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((cp >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (cp & 0x3F)))
        }
    }

    /// Decimal to Double without Foundation or strtod (absent in Embedded Swift). Exact (correctly rounded)
    /// whenever the significand has at most 15 digits and |exponent| <= 22 (Clinger's fast path), which covers
    /// the float32 hyper-parameters Keras writes; otherwise within a few ulps.
    private mutating func number() throws(KedgeError) -> Double {
        let start = pos
        var negative = false
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "-") { negative = true; pos += 1 }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "I") {
            try literal("Infinity")
            return negative ? -.infinity : .infinity
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exp10 = 0
        var sawDigit = false
        while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
            sawDigit = true
            if digits < 19 { mantissa = mantissa * 10 + UInt64(bytes[pos] - 0x30); if mantissa > 0 { digits += 1 } } else { exp10 += 1 }
            pos += 1
        }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
                sawDigit = true
                if digits < 19 { mantissa = mantissa * 10 + UInt64(bytes[pos] - 0x30); if mantissa > 0 { digits += 1 }; exp10 -= 1 }
                pos += 1
            }
        }
        guard sawDigit else { pos = start; throw fail("invalid value") }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            pos += 1
            var eneg = false
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) {
                eneg = bytes[pos] == UInt8(ascii: "-")
                pos += 1
            }
            var e = 0
            var sawExp = false
            while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
                sawExp = true
                if e < 100_000 { e = e * 10 + Int(bytes[pos] - 0x30) }
                pos += 1
            }
            guard sawExp else { throw fail("invalid exponent") }
            exp10 += eneg ? -e : e
        }
        var v = Double(mantissa)
        if mantissa != 0 {
            if exp10 < 0 {
                var e = -exp10
                while e > 22 { v /= 1e22; e -= 22 }
                v /= JSONParser.pow10[e]
            } else {
                var e = exp10
                while e > 22 { v *= 1e22; e -= 22 }
                v *= JSONParser.pow10[e]
            }
        }
        return negative ? -v : v
    }

    private static let pow10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
        1e19, 1e20, 1e21, 1e22,
    ]
}
