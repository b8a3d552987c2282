import CHDF5
import Foundation
import KedgeCore

/// Read-only access to the parts of an HDF5 file Keras uses: groups, string-list attributes and float datasets.
///
/// Debian's libhdf5 is built without thread safety, and Swift Testing (or a server) may convert several files at
/// once, so every call into the library holds one process-wide lock.
final class HDF5File {
    /// The name errors use for this file (the path the user gave, or `model.keras:model.weights.h5`).
    let name: String
    /// The open file, or -1 when this reads a snapshot taken in a reader process (`HDF5Isolation`).
    private let id: hid_t
    private let snapshot: HDF5Snapshot?

    static let lock = NSRecursiveLock()

    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// True when the file starts with the HDF5 signature (at 0, 512, 1024, ... as the spec allows a user block).
    static func hasSignature(_ head: [UInt8]) -> Bool {
        let sig: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        var offset = 0
        while offset + 8 <= head.count {
            if Array(head[offset..<(offset + 8)]) == sig { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    /// A file read through a snapshot: no libhdf5 call on its bytes in this process.
    init(snapshot: HDF5Snapshot, name: String) {
        self.name = name
        self.snapshot = snapshot
        id = -1
    }

    init(path: String, name: String) throws {
        self.name = name
        snapshot = nil
        id = try HDF5File.locked {
            _ = kedge_H5_silence_errors()
            let f = H5Fopen(path, kedge_H5F_ACC_RDONLY(), hid_t(H5P_DEFAULT))
            guard f >= 0 else {
                throw KedgeError(
                    .invalidFile, "\(name): libhdf5 cannot open it (the file is truncated, damaged or not an HDF5 file)"
                )
            }
            return f
        }
    }

    /// Opens an HDF5 image held in memory (the weights inside a .keras zip), without a temporary file.
    init(image: [UInt8], name: String) throws {
        self.name = name
        snapshot = nil
        id = try HDF5File.locked {
            _ = kedge_H5_silence_errors()
            let fapl = H5Pcreate(kedge_H5P_FILE_ACCESS())
            guard fapl >= 0 else {
                throw KedgeError(.internalError, "\(name): libhdf5 cannot create a file-access list")
            }
            defer { H5Pclose(fapl) }
            // The core driver without a backing store keeps the (copied) image in memory and never writes.
            guard H5Pset_fapl_core(fapl, 1 << 16, false) >= 0,
                image.withUnsafeBytes({
                    H5Pset_file_image(fapl, UnsafeMutableRawPointer(mutating: $0.baseAddress), $0.count)
                }) >= 0
            else { throw KedgeError(.internalError, "\(name): libhdf5 cannot take the file image") }
            let f = H5Fopen(name, kedge_H5F_ACC_RDONLY(), fapl)
            guard f >= 0 else {
                throw KedgeError(
                    .invalidFile, "\(name): libhdf5 cannot open it (the file is truncated, damaged or not HDF5)")
            }
            return f
        }
    }

    deinit {
        if snapshot == nil { HDF5File.locked { _ = H5Fclose(id) } }
    }

    // MARK: structure

    /// True when every component of `path` exists (H5Lexists fails, rather than says no, for a missing parent).
    func exists(_ path: String) -> Bool {
        if let snapshot { return path.isEmpty || snapshot.objects[path] != nil }
        return HDF5File.locked {
            var prefix = ""
            for part in path.split(separator: "/", omittingEmptySubsequences: true) {
                prefix += (prefix.isEmpty ? "" : "/") + part
                if H5Lexists(id, prefix, hid_t(H5P_DEFAULT)) <= 0 { return false }
            }
            return true
        }
    }

    private func objectType(_ path: String) -> H5I_type_t? {
        guard exists(path) else { return nil }
        return HDF5File.locked {
            let o = H5Oopen(id, path.isEmpty ? "/" : path, hid_t(H5P_DEFAULT))
            guard o >= 0 else { return nil }
            defer { H5Oclose(o) }
            return H5Iget_type(o)
        }
    }

    func isGroup(_ path: String) -> Bool {
        if let snapshot { return path.isEmpty || snapshot.objects[path]?.kind == .group }
        return path.isEmpty || objectType(path) == H5I_GROUP
    }
    func isDataset(_ path: String) -> Bool {
        if let snapshot { return snapshot.objects[path]?.kind == .dataset }
        return objectType(path) == H5I_DATASET
    }

    /// The names of a group's members, in the file's (alphabetical) order: callers decide the order they need.
    func children(_ path: String) throws -> [String] {
        if let snapshot {
            guard let o = snapshot.objects[path], o.kind == .group else {
                throw KedgeError(.invalidFile, "\(name): group '\(path)' cannot be opened")
            }
            return try o.children.get()
        }
        return try HDF5File.locked {
            let g = H5Gopen2(id, path.isEmpty ? "/" : path, hid_t(H5P_DEFAULT))
            guard g >= 0 else { throw KedgeError(.invalidFile, "\(name): group '\(path)' cannot be opened") }
            defer { H5Gclose(g) }
            var info = H5G_info_t()
            guard H5Gget_info(g, &info) >= 0 else {
                throw KedgeError(.invalidFile, "\(name): group '\(path)' is unreadable")
            }
            var out: [String] = []
            for i in 0..<info.nlinks {
                let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
                guard n >= 0 else {
                    throw KedgeError(.invalidFile, "\(name): group '\(path)' has an unreadable member")
                }
                var buf = [CChar](repeating: 0, count: Int(n) + 1)
                _ = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, hid_t(H5P_DEFAULT))
                out.append(String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return out
        }
    }

    // MARK: attributes

    func hasAttribute(_ object: String, _ attr: String) -> Bool {
        if let snapshot { return snapshot.objects[object]?.attributes.contains { $0.name == attr } ?? false }
        return HDF5File.locked { H5Aexists_by_name(id, object.isEmpty ? "/" : object, attr, hid_t(H5P_DEFAULT)) > 0 }
    }

    /// A string attribute (scalar or a one-element list), or nil when absent.
    func stringAttribute(_ object: String, _ attr: String) throws -> String? {
        guard hasAttribute(object, attr) else { return nil }
        let list = try readStrings(object, attr)
        guard list.count == 1 else {
            throw KedgeError(.invalidFile, "\(name): attribute '\(attr)' of '\(where_(object))' is not a single string")
        }
        return list[0]
    }

    /// A list-of-strings attribute as Keras writes it: under `attr`, or split into `attr0`, `attr1`, ... when
    /// it is longer than an HDF5 object header holds. Nil when neither exists. An empty list may be stored as
    /// an empty float64 array.
    func stringListAttribute(_ object: String, _ attr: String) throws -> [String]? {
        if hasAttribute(object, attr) { return try readStrings(object, attr) }
        guard hasAttribute(object, attr + "0") else { return nil }
        var out: [String] = []
        var k = 0
        while hasAttribute(object, attr + String(k)) {
            out += try readStrings(object, attr + String(k))
            k += 1
        }
        return out
    }

    private func where_(_ object: String) -> String { object.isEmpty ? "/" : object }

    /// The names of an object's attributes (for the snapshot walk).
    func attributeNames(_ object: String) throws -> [String] {
        if let snapshot { return snapshot.objects[object]?.attributes.map { $0.name } ?? [] }
        return try HDF5File.locked {
            final class Names { var list: [String] = [] }
            let names = Names()
            var index: hsize_t = 0
            let status = H5Aiterate_by_name(
                id, where_(object), H5_INDEX_NAME, H5_ITER_INC, &index,
                { _, name, _, context in
                    guard let name, let context else { return -1 }
                    Unmanaged<Names>.fromOpaque(context).takeUnretainedValue().list.append(String(cString: name))
                    return 0
                }, Unmanaged.passUnretained(names).toOpaque(), hid_t(H5P_DEFAULT))
            guard status >= 0 else { throw KedgeError(.invalidFile, "\(name): the attributes of '\(where_(object))' are unreadable") }
            return names.list
        }
    }

    func readStrings(_ object: String, _ attr: String) throws -> [String] {
        if let snapshot {
            guard let a = snapshot.objects[object]?.attributes.first(where: { $0.name == attr }) else {
                throw KedgeError(.invalidFile, "\(name): attribute '\(attr)' of '\(where_(object))' cannot be opened")
            }
            switch a.value {
            case .success(let list): return list
            case .failure(let f): throw f.error()
            }
        }
        return try HDF5File.locked {
            let what = "attribute '\(attr)' of '\(where_(object))'"
            let a = H5Aopen_by_name(id, object.isEmpty ? "/" : object, attr, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
            guard a >= 0 else { throw KedgeError(.invalidFile, "\(name): \(what) cannot be opened") }
            defer { H5Aclose(a) }
            let type = H5Aget_type(a)
            let space = H5Aget_space(a)
            defer {
                H5Tclose(type)
                H5Sclose(space)
            }
            guard type >= 0, space >= 0 else { throw KedgeError(.invalidFile, "\(name): \(what) is unreadable") }
            let n = Int(H5Sget_simple_extent_npoints(space))
            guard n >= 0 else { throw KedgeError(.invalidFile, "\(name): \(what) has an unreadable size") }
            let cls = H5Tget_class(type)
            if cls != H5T_STRING {
                // Keras writes an empty list as a float64 array of shape (0,).
                if n == 0 { return [] }
                throw KedgeError(.invalidFile, "\(name): \(what) should hold strings but holds numbers")
            }
            if n == 0 { return [] }
            if H5Tis_variable_str(type) > 0 {
                let mem = H5Tcopy(kedge_H5T_C_S1())
                defer { H5Tclose(mem) }
                H5Tset_size(mem, kedge_H5T_VARIABLE())
                H5Tset_cset(mem, H5Tget_cset(type))
                var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
                guard H5Aread(a, mem, &ptrs) >= 0 else {
                    throw KedgeError(.invalidFile, "\(name): \(what) is unreadable")
                }
                let out = ptrs.map { $0.map { String(cString: $0) } ?? "" }
                _ = H5Dvlen_reclaim(mem, space, hid_t(H5P_DEFAULT), &ptrs)
                return out
            }
            let size = H5Tget_size(type)
            guard size > 0, size < 1 << 26 else {
                throw KedgeError(.invalidFile, "\(name): \(what) has a bad string size")
            }
            var buf = [UInt8](repeating: 0, count: n * size)
            guard H5Aread(a, type, &buf) >= 0 else { throw KedgeError(.invalidFile, "\(name): \(what) is unreadable") }
            var out: [String] = []
            for i in 0..<n {
                var chunk = buf[(i * size)..<((i + 1) * size)]
                if let z = chunk.firstIndex(of: 0) { chunk = chunk[..<z] }
                while let last = chunk.last, last == 0x20 { chunk = chunk.dropLast() }  // space-padded strings
                out.append(String(decoding: chunk, as: UTF8.self))
            }
            return out
        }
    }

    // MARK: datasets

    func datasetShape(_ path: String) throws -> [Int] {
        if let snapshot {
            guard let o = snapshot.objects[path], o.kind == .dataset, let t = o.tensor else {
                throw KedgeError(.missingWeight, "\(name): dataset '\(path)' is missing")
            }
            switch t {
            case .success(let tensor): return tensor.shape
            case .failure(let f): throw f.error()
            }
        }
        return try HDF5File.locked {
            let d = H5Dopen2(id, path, hid_t(H5P_DEFAULT))
            guard d >= 0 else { throw KedgeError(.missingWeight, "\(name): dataset '\(path)' is missing") }
            defer { H5Dclose(d) }
            let space = H5Dget_space(d)
            guard space >= 0 else { throw KedgeError(.invalidFile, "\(name): dataset '\(path)' is unreadable") }
            defer { H5Sclose(space) }
            return try shape(of: space, path)
        }
    }

    private func shape(of space: hid_t, _ path: String) throws -> [Int] {
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0, rank <= 32 else { throw KedgeError(.invalidFile, "\(name): dataset '\(path)' has a bad rank") }
        if rank == 0 { return [] }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    /// A numeric dataset converted to float32 by libhdf5 (float16/float64/integer sources included).
    /// `context` (`layer 'd' weight 'kernel'`) goes into every message.
    func readFloats(_ path: String, context: String) throws -> Tensor {
        if let snapshot {
            guard let o = snapshot.objects[path], o.kind == .dataset, let t = o.tensor else {
                throw KedgeError(.missingWeight, "\(name): \(context): dataset '\(path)' is missing")
            }
            switch t {
            case .success(let tensor): return tensor
            case .failure(let f): throw f.error(context: context)
            }
        }
        return try HDF5File.locked {
            let d = H5Dopen2(id, path, hid_t(H5P_DEFAULT))
            guard d >= 0 else { throw KedgeError(.missingWeight, "\(name): \(context): dataset '\(path)' is missing") }
            defer { H5Dclose(d) }
            let type = H5Dget_type(d)
            let space = H5Dget_space(d)
            defer {
                H5Tclose(type)
                H5Sclose(space)
            }
            guard type >= 0, space >= 0 else {
                throw KedgeError(.invalidFile, "\(name): \(context): dataset '\(path)' is unreadable")
            }
            let cls = H5Tget_class(type)
            guard cls == H5T_FLOAT || cls == H5T_INTEGER else {
                throw KedgeError(.invalidFile, "\(name): \(context): dataset '\(path)' is not a float or integer array")
            }
            let shape = try self.shape(of: space, path)
            var count = 1
            for s in shape {
                count *= s
                guard count <= 1 << 33 else {
                    throw KedgeError(.invalidFile, "\(name): \(context): dataset '\(path)' is too large")
                }
            }
            var data = [Float](repeating: 0, count: count)
            if count > 0 {
                let status = data.withUnsafeMutableBytes {
                    H5Dread(
                        d, kedge_H5T_NATIVE_FLOAT(), hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), $0.baseAddress)
                }
                guard status >= 0 else {
                    throw KedgeError(
                        .invalidFile,
                        "\(name): \(context): dataset '\(path)' cannot be read (the file is truncated or damaged)")
                }
            }
            return Tensor(shape: shape, data: data)
        }
    }
}
