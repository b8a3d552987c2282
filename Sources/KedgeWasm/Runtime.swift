// C runtime symbols the Embedded stdlib needs that the module defines itself, to keep it import-free.

/// The stdlib seeds `Hasher` (Dictionary/Set of String) from `arc4random_buf`. wasi-libc's version reaches WASI
/// `random_get` and, through its assert, stdio: four imports the module would need glue for. Hash-flooding is
/// no threat to a model loader running on the user's own data, so a fixed pseudo-random stream is enough (and
/// keeps iteration order reproducible between runs).
@_cdecl("arc4random_buf")
public func arc4random_buf(_ buf: UnsafeMutableRawPointer?, _ count: Int) {
    guard let buf else { return }
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for i in 0..<count {
        // splitmix64
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        buf.storeBytes(of: UInt8(truncatingIfNeeded: z), toByteOffset: i, as: UInt8.self)
    }
}
