import Foundation
import KedgeCore

/// Everything the converter reads from an HDF5 file (groups and their members, every attribute read as strings,
/// every dataset read as float32), taken in one walk and held in memory.
///
/// libhdf5 is not hardened against hostile files: a few mutated bytes crash it (SIGSEGV) before any check of
/// Kedge's runs. So the walk runs in a child process (`kedge hdf5-reader`, `HDF5Isolation`): a crash there becomes
/// a one-line error naming the object being read, and the parent only decodes the snapshot, never calling libhdf5
/// on the untrusted bytes. Failures the library reports (an unreadable attribute, a dataset of strings) are kept in
/// the snapshot and thrown when the converter asks for that object, with the same messages as a direct read.
final class HDF5Snapshot {
    enum Kind: UInt8 { case group = 1, dataset = 2, other = 3 }

    /// A failure to throw on access: the error kind and message. `{context}` in a dataset's message stands for the
    /// caller's context (`layer 'd' weight 'kernel'`).
    struct Failure: Error {
        var kind: KedgeError.Kind
        var message: String
        func error(context: String = "") -> KedgeError {
            KedgeError(kind, message.replacingOccurrences(of: HDF5Snapshot.contextMark, with: context))
        }
    }

    struct Object {
        var kind: Kind
        var children: Result<[String], Failure>
        var attributes: [(name: String, value: Result<[String], Failure>)]
        /// For a dataset: its shape and float32 data, or why they cannot be read.
        var tensor: Result<Tensor, Failure>?
    }

    static let contextMark = "{context}"
    /// Walk limits: HDF5 groups can link into cycles, and a file can claim any number of members.
    static let maxObjects = 200_000
    static let maxDepth = 64

    var objects: [String: Object] = [:]

    // MARK: the walk (in the reader process)

    /// Reads everything under the root of an open file. `progress` is told each object before it is read, so the
    /// parent can name the object a crash happened in.
    static func take(_ file: HDF5File, progress: (String) -> Void) throws -> HDF5Snapshot {
        let snap = HDF5Snapshot()
        var pending: [(path: String, depth: Int)] = [("", 0)]
        while let (path, depth) = pending.popLast() {
            if snap.objects[path] != nil { continue }
            guard snap.objects.count < maxObjects else {
                throw KedgeError(.invalidFile, "\(file.name): more than \(maxObjects) HDF5 objects; not a Keras file")
            }
            progress(path.isEmpty ? "/" : path)
            let kind: Kind = file.isGroup(path) ? .group : file.isDataset(path) ? .dataset : .other
            var object = Object(kind: kind, children: .success([]), attributes: [], tensor: nil)
            if kind != .other {
                for name in try file.attributeNames(path) {
                    progress((path.isEmpty ? "/" : path) + " attribute " + name)
                    object.attributes.append((name, capture { try file.readStrings(path, name) }))
                }
            }
            if kind == .group {
                object.children = capture { try file.children(path) }
                if case .success(let names) = object.children, depth < maxDepth {
                    for n in names.reversed() { pending.append(((path.isEmpty ? "" : path + "/") + n, depth + 1)) }
                }
            } else if kind == .dataset {
                object.tensor = capture { try file.readFloats(path, context: contextMark) }
            }
            snap.objects[path] = object
        }
        return snap
    }

    private static func capture<T>(_ body: () throws -> T) -> Result<T, Failure> {
        do { return .success(try body()) } catch let e as KedgeError {
            return .failure(Failure(kind: e.kind, message: e.message))
        } catch {
            return .failure(Failure(kind: .invalidFile, message: "\(error)"))
        }
    }

    // MARK: the wire format (reader process -> parent): little-endian counts and lengths, UTF-8, raw float32

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(objects.count))
        for (path, o) in objects.sorted(by: { $0.key < $1.key }) {
            w.string(path)
            w.u8(o.kind.rawValue)
            w.strings(o.children)
            w.u32(UInt32(o.attributes.count))
            for a in o.attributes {
                w.string(a.name)
                w.strings(a.value)
            }
            switch o.tensor {
            case nil: w.u8(0)
            case .failure(let f)?:
                w.u8(1)
                w.failure(f)
            case .success(let t)?:
                w.u8(2)
                w.u32(UInt32(t.shape.count))
                for d in t.shape { w.u64(UInt64(d)) }
                w.u64(UInt64(t.data.count))
                t.data.withUnsafeBytes { w.bytes.append(contentsOf: $0) }
            }
        }
        return w.bytes
    }

    /// Decodes a reader's output; `name` is the file's name for errors. Every count is checked against the bytes
    /// that are there, so a short or damaged stream is an error, not a trap.
    static func decode(_ bytes: [UInt8], name: String) throws -> HDF5Snapshot {
        var r = ByteReader(bytes: bytes, name: name)
        let snap = HDF5Snapshot()
        let n = try r.count(minimumBytesEach: 8)
        for _ in 0..<n {
            let path = try r.string()
            guard let kind = Kind(rawValue: try r.u8()) else { throw r.damaged() }
            let children = try r.strings()
            var attributes: [(name: String, value: Result<[String], Failure>)] = []
            for _ in 0..<(try r.count(minimumBytesEach: 5)) { attributes.append((try r.string(), try r.strings())) }
            var tensor: Result<Tensor, Failure>? = nil
            switch try r.u8() {
            case 0: break
            case 1: tensor = .failure(try r.failure())
            case 2:
                var shape: [Int] = []
                for _ in 0..<(try r.count(minimumBytesEach: 8)) { shape.append(try r.int()) }
                let count = try r.count64(minimumBytesEach: 4)
                var product = 1
                for d in shape {
                    let (p, overflow) = product.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw r.damaged() }
                    product = p
                }
                guard product == count else { throw r.damaged() }
                let raw = try r.take(count * 4)
                var data = [Float](repeating: 0, count: count)
                data.withUnsafeMutableBytes { $0.copyBytes(from: raw) }
                tensor = .success(Tensor(shape: shape, data: data))
            default: throw r.damaged()
            }
            snap.objects[path] = Object(kind: kind, children: children, attributes: attributes, tensor: tensor)
        }
        guard r.atEnd else { throw r.damaged() }
        return snap
    }
}

private struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
    mutating func failure(_ f: HDF5Snapshot.Failure) {
        u8(UInt8(truncatingIfNeeded: f.kind.rawValue))
        string(f.message)
    }
    mutating func strings(_ r: Result<[String], HDF5Snapshot.Failure>) {
        switch r {
        case .success(let list):
            u8(0)
            u32(UInt32(list.count))
            for s in list { string(s) }
        case .failure(let f):
            u8(1)
            failure(f)
        }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    let name: String
    var at = 0

    var atEnd: Bool { at == bytes.count }

    func damaged() -> KedgeError {
        KedgeError(.internalError, "\(name): the HDF5 reader process sent a damaged snapshot (at byte \(at))")
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - at else { throw damaged() }
        defer { at += n }
        return bytes[at..<(at + n)]
    }
    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u32() throws -> UInt32 {
        var v: UInt32 = 0
        for (i, b) in try take(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
        return v
    }
    mutating func u64() throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
    mutating func int() throws -> Int {
        let v = try u64()
        guard v <= UInt64(Int.max) else { throw damaged() }
        return Int(v)
    }
    /// A count of items that take at least `minimumBytesEach` bytes: more than the remaining bytes allow is damage.
    mutating func count(minimumBytesEach: Int) throws -> Int {
        let n = Int(try u32())
        guard n <= (bytes.count - at) / max(1, minimumBytesEach) else { throw damaged() }
        return n
    }
    mutating func count64(minimumBytesEach: Int) throws -> Int {
        let n = try int()
        guard n <= (bytes.count - at) / max(1, minimumBytesEach) else { throw damaged() }
        return n
    }
    mutating func string() throws -> String {
        let n = Int(try u32())
        return String(decoding: try take(n), as: UTF8.self)
    }
    mutating func failure() throws -> HDF5Snapshot.Failure {
        guard let kind = KedgeError.Kind(rawValue: Int32(try u8())) else { throw damaged() }
        return HDF5Snapshot.Failure(kind: kind, message: try string())
    }
    mutating func strings() throws -> Result<[String], HDF5Snapshot.Failure> {
        switch try u8() {
        case 0:
            var list: [String] = []
            for _ in 0..<(try count(minimumBytesEach: 4)) { list.append(try string()) }
            return .success(list)
        case 1: return .failure(try failure())
        default: throw damaged()
        }
    }
}
