import Foundation

/// Maps request paths onto files below a root without ever leaving it.
///
/// Two independent fences: the URL path is decoded exactly once and refused if it still looks encoded or names
/// a parent, a hidden entry, a backslash or a control byte; then the file's real path (symlinks resolved) must
/// lie below the root's real path. The second fence alone would suffice; the first gives clear 400s.
enum PathSafety {
    enum Verdict: Equatable {
        case file(String)
        case badRequest(String)
        case notFound
    }

    /// Decodes `%XX` once. Returns nil for a malformed escape or a result that is not UTF-8.
    static func percentDecode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let b = it.next() {
            if b == UInt8(ascii: "%") {
                guard let h = it.next(), let l = it.next(), let hv = hexValue(h), let lv = hexValue(l) else { return nil }
                bytes.append(hv << 4 | lv)
            } else {
                bytes.append(b)
            }
        }
        return String(bytes: bytes, encoding: .utf8)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The decoded, checked segments of a raw URL path (`/a/b.js` -> ["a", "b.js"]).
    static func segments(ofRawPath raw: String) -> Result<[String], PathError> {
        guard raw.first == "/" else { return .failure(.init("path must start with /")) }
        guard let decoded = percentDecode(raw[...]) else { return .failure(.init("malformed percent-encoding")) }
        if decoded.contains("%") { return .failure(.init("encoded characters after decoding (double encoding)")) }
        for scalar in decoded.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7f { return .failure(.init("control character in path")) }
            if scalar == "\\" { return .failure(.init("backslash in path")) }
        }
        var out: [String] = []
        for part in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." || part == ".." { return .failure(.init("relative segment in path")) }
            if part.hasPrefix(".") { return .failure(.init("hidden path segment")) }
            out.append(String(part))
        }
        return .success(out)
    }

    struct PathError: Error, Equatable {
        let message: String
        init(_ m: String) { message = m }
    }

    /// The real path of `path`, symlinks resolved; nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Whether `candidate` (a real path) is `root` or lies below it (`root` is a real path too).
    static func isInside(_ candidate: String, root: String) -> Bool {
        if candidate == root { return true }
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return candidate.hasPrefix(prefix)
    }

    /// Resolves a raw URL path to a regular file below `realRoot` (already a real path). A folder resolves
    /// to its `index.html`.
    static func resolve(rawPath: String, realRoot: String) -> Verdict {
        let segments: [String]
        switch self.segments(ofRawPath: rawPath) {
        case .success(let s): segments = s
        case .failure(let e): return .badRequest(e.message)
        }
        var joined = realRoot
        for s in segments { joined += "/" + s }
        guard var real = realPath(joined) else { return .notFound }
        guard isInside(real, root: realRoot) else { return .notFound }
        var st = stat()
        guard stat(real, &st) == 0 else { return .notFound }
        if st.st_mode & S_IFMT == S_IFDIR {
            guard let index = realPath(real + "/index.html"), isInside(index, root: realRoot) else { return .notFound }
            real = index
            guard stat(real, &st) == 0 else { return .notFound }
        }
        guard st.st_mode & S_IFMT == S_IFREG else { return .notFound }
        return .file(real)
    }
}
