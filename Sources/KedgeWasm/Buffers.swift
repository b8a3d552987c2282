#if !KEDGE_WASM_SINGLE_MODULE
    import KedgeCore
#endif

// Byte buffers JS fills before a call and the strings/arrays it reads back. Everything handed to JS is a
// separately allocated copy, never a pointer into a Swift array, so it stays valid until the owner frees it.

/// Memory JS allocates for the bundle bytes and input data; freed with `kedge_free`. 16-byte aligned so a
/// Float32Array (and SIMD loads) can view it directly.
@_cdecl("kedge_alloc")
public func kedge_alloc(_ size: Int32) -> UnsafeMutableRawPointer? {
    guard size >= 0 else { return nil }
    return UnsafeMutableRawPointer.allocate(byteCount: max(Int(size), 1), alignment: 16)
}

@_cdecl("kedge_free")
public func kedge_free(_ p: UnsafeMutableRawPointer?) {
    p?.deallocate()
}

/// A NUL-terminated UTF-8 copy of a Swift string.
struct CString {
    let base: UnsafeMutablePointer<UInt8>
    let count: Int

    init(_ s: String) {
        var bytes: [UInt8] = Array(s.utf8)
        bytes.append(0)
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        base.initialize(from: bytes, count: bytes.count)
        count = bytes.count - 1
    }

    func free() { base.deallocate() }
}

/// A tensor copied out for JS: name, shape (Int32, -1 unknown) and float32 data.
struct Exported {
    let name: CString
    let shape: UnsafeMutablePointer<Int32>
    let rank: Int
    let data: UnsafeMutablePointer<Float>?
    let count: Int

    init(name: String, shape: [Int], data: [Float]?) {
        self.name = CString(name)
        rank = shape.count
        self.shape = UnsafeMutablePointer<Int32>.allocate(capacity: max(shape.count, 1))
        for (i, d) in shape.enumerated() { self.shape[i] = Int32(truncatingIfNeeded: d) }
        if let data {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(data.count, 1))
            data.withUnsafeBufferPointer { src in
                if let b = src.baseAddress { p.initialize(from: b, count: src.count) }
            }
            self.data = p
            count = data.count
        } else {
            self.data = nil
            count = 0
        }
    }

    func free() {
        name.free()
        shape.deallocate()
        data?.deallocate()
    }
}

// The last error, kept until the next failing call; `kind` 0 means none.
var lastErrorKind: Int32 = 0
var lastErrorMessage: CString? = nil

func fail(_ kind: Int32, _ message: String) -> Int32 {
    lastErrorMessage?.free()
    lastErrorMessage = CString(message)
    lastErrorKind = kind
    return -kind
}

func fail(_ e: KedgeError) -> Int32 { fail(e.kind.rawValue, e.message) }

/// What `kedge_*` calls return for a wrong handle or index (beyond KedgeError's kinds).
let badHandleKind: Int32 = 100

@_cdecl("kedge_last_error_kind")
public func kedge_last_error_kind() -> Int32 { lastErrorKind }

@_cdecl("kedge_last_error_ptr")
public func kedge_last_error_ptr() -> UnsafeMutablePointer<UInt8>? { lastErrorMessage?.base }

@_cdecl("kedge_last_error_len")
public func kedge_last_error_len() -> Int32 { Int32(lastErrorMessage?.count ?? 0) }
