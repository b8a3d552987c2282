// Byte-level (UTF-8) text helpers for the few places the core cuts or case-folds ASCII keywords. String's own
// hasPrefix/dropFirst/lowercased work on Characters and Unicode scalar properties, and in Embedded Swift they link
// the grapheme-break and case-mapping tables (~25 KB of kedge.wasm); these do not. They agree with String's methods
// on ASCII text, which is all Keras writes in these places (wasm/ABI.md, "Module size").

extension String {
    /// `hasPrefix` on UTF-8 bytes.
    func utf8HasPrefix(_ prefix: StaticString) -> Bool {
        let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        return utf8.starts(with: p)
    }

    /// `hasSuffix` on UTF-8 bytes.
    func utf8HasSuffix(_ suffix: StaticString) -> Bool {
        let n = suffix.utf8CodeUnitCount
        guard utf8.count >= n else { return false }
        let p = UnsafeBufferPointer(start: suffix.utf8Start, count: n)
        return utf8.dropFirst(utf8.count - n).elementsEqual(p)
    }

    /// The text after the first `n` UTF-8 bytes, or before the last `n` bytes when `fromEnd` (the cut must fall on a
    /// scalar boundary: callers cut off an ASCII prefix or suffix they matched).
    func utf8Dropping(_ n: Int, fromEnd: Bool = false) -> String {
        let bytes = Array(utf8)
        let kept = fromEnd ? bytes[0..<(bytes.count - n)] : bytes[n...]
        return String(decoding: kept, as: UTF8.self)
    }

    /// `lowercased()` for ASCII letters; other bytes are kept as they are.
    func asciiLowercased() -> String {
        var bytes = Array(utf8)
        for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A { bytes[i] += 0x20 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
