import Foundation

/// Names Keras derives rather than stores, reproduced exactly.
enum KerasNaming {
    private static let nonWord = try! NSRegularExpression(pattern: "\\W+")
    private static let capitalWord = try! NSRegularExpression(pattern: "(.)([A-Z][a-z]+)")
    private static let lowerUpper = try! NSRegularExpression(pattern: "([a-z])([A-Z])")

    /// `keras.src.utils.naming.to_snake_case`: Conv2D -> conv2d, BatchNormalization -> batch_normalization,
    /// PReLU -> p_re_lu. The .keras format names a layer's group after it.
    static func snakeCase(_ name: String) -> String {
        func sub(_ re: NSRegularExpression, _ s: String, _ template: String) -> String {
            re.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
        }
        var s = sub(nonWord, name, "")
        s = sub(capitalWord, s, "$1_$2")
        s = sub(lowerUpper, s, "$1_$2")
        return s.lowercased()
    }

    /// `saving_lib._get_unique_name`: the first `dense`, then `dense_1`, `dense_2`, ... within one container.
    static func unique(_ base: String, _ used: inout [String: Int]) -> String {
        if let n = used[base] {
            used[base] = n + 1
            return base + "_" + String(n + 1)
        }
        used[base] = 0
        return base
    }

    /// A weight name as Keras writes it (`model/dense/kernel:0`) reduced to its path components without the
    /// `:0` output index: `["model", "dense", "kernel"]`.
    static func components(ofStoredName stored: String) -> [String] {
        var s = Substring(stored)
        if let colon = s.lastIndex(of: ":"), s[s.index(after: colon)...].allSatisfy(\.isNumber),
            s.index(after: colon) < s.endIndex
        {
            s = s[..<colon]
        }
        return s.split(separator: "/").map(String.init)
    }

    /// Order of the child objects of a saveable in a .keras weights file: `_walk_saveable` visits attributes
    /// in sorted order with private ones last. Auto-named members of a list (`dense`, `dense_1`, `dense_10`)
    /// sort by their number, which is their list order.
    static func saveableOrder(_ a: String, _ b: String) -> Bool {
        func key(_ s: String) -> (Bool, String, Int) {
            var base = s
            var n = -1
            if let u = s.lastIndex(of: "_"), s.index(after: u) < s.endIndex,
                s[s.index(after: u)...].allSatisfy(\.isNumber),
                let v = Int(s[s.index(after: u)...])
            {
                base = String(s[..<u])
                n = v
            }
            return (s.hasPrefix("_"), base, n)
        }
        let ka = key(a)
        let kb = key(b)
        if ka.0 != kb.0 { return !ka.0 }
        if ka.1 != kb.1 { return ka.1 < kb.1 }
        return ka.2 < kb.2
    }
}
