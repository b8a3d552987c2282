/// Serialises `JSON` values. Numbers are written with 17 significant digits (integers exactly), which
/// round-trips every float32 and is within a few ulps for doubles, without the Foundation/printf formatting
/// that Embedded Swift lacks.
extension JSON {
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(&out, indent: pretty ? 0 : -1)
        return out
    }

    private func write(_ out: inout String, indent: Int) {
        let nl = indent >= 0
        func pad(_ n: Int) { if nl { out += "\n" + String(repeating: " ", count: n) } }
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let d): out += JSON.format(d)
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += nl ? "," : ", " }
                pad(indent + 1)
                v.write(&out, indent: nl ? indent + 1 : -1)
            }
            pad(indent)
            out += "]"
        case .object(let o):
            if o.count == 0 { out += "{}"; return }
            out += "{"
            for i in 0..<o.count {
                if i > 0 { out += nl ? "," : ", " }
                pad(indent + 1)
                JSON.quote(o.keys[i], into: &out)
                out += ": "
                o.values[i].write(&out, indent: nl ? indent + 1 : -1)
            }
            pad(indent)
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
                    out += "\\u00"
                    out.append(hex[Int(u.value >> 4)])
                    out.append(hex[Int(u.value & 15)])
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    static let pow10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
        1e19, 1e20, 1e21, 1e22,
    ]

    /// Decimal text for a double: integers exactly, others as d.dddddddddddddddde±x (17 significant digits);
    /// non-finite values as null (JSON has no NaN).
    public static func format(_ v: Double) -> String {
        if !v.isFinite { return "null" }
        if v == v.rounded(.towardZero) && abs(v) < 1e15 { return String(Int64(v)) }
        // Scale |v| into [1e16, 1e17) so its integer part holds 17 digits, with one multiplication or
        // division by an exact power of ten where possible (one rounding).
        let a = abs(v)
        var e = 0
        var probe = a
        while probe >= 10 { probe /= 10; e += 1 }
        while probe < 1 { probe *= 10; e -= 1 }
        let shift = 16 - e
        var x: Double
        if shift >= 0 && shift <= 22 {
            x = a * JSON.pow10[shift]
        } else if shift < 0 && -shift <= 22 {
            x = a / JSON.pow10[-shift]
        } else {
            x = a
            var k = shift
            while k > 0 { x *= 10; k -= 1 }
            while k < 0 { x /= 10; k += 1 }
        }
        if x < 1e16 { x *= 10; e -= 1 }
        if x >= 1e17 { x /= 10; e += 1 }
        e -= 16
        var digits = UInt64(x.rounded(.toNearestOrEven))
        if digits >= 100_000_000_000_000_000 { digits /= 10; e += 1 }
        // The digits as ASCII bytes (not Characters: see Support/UTF8Text.swift).
        var text = Array(String(digits).utf8)
        // Trim trailing zeros of the mantissa.
        var exp10 = e + 16
        while text.count > 1 && text[text.count - 1] == UInt8(ascii: "0") { text.removeLast() }
        var s = v < 0 ? "-" : ""
        s += String(decoding: text[0..<1], as: UTF8.self)
        if text.count > 1 { s += "." + String(decoding: text[1...], as: UTF8.self) }
        if exp10 != 0 {
            s += "e"
            if exp10 < 0 { s += "-"; exp10 = -exp10 }
            s += String(exp10)
        }
        return s
    }
}
