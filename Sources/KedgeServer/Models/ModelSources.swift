import Foundation

/// Names a model may have: they become URL segments and file names, so only [A-Za-z0-9_.-], no leading dot,
/// at most 128 characters.
public enum ModelName {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 128, !name.hasPrefix("."), name != "..", name != "." else {
            return false
        }
        return name.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
        }
    }

    /// File extensions of the formats the converter reads (Keras HDF5 / .keras, Keras.js, TF.js, XGBoost).
    static let modelExtensions: Set<String> = ["h5", "hdf5", "keras", "json", "ubj", "bin"]

    /// Splits `sex.h5` into ("sex", "h5") when the extension is a model format.
    static func split(_ fileName: String) -> (base: String, ext: String)? {
        guard let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex else { return nil }
        let ext = fileName[fileName.index(after: dot)...].lowercased()
        guard modelExtensions.contains(ext) else { return nil }
        return (String(fileName[..<dot]), ext)
    }
}

/// One thing found in the models folder.
struct SourceItem: Sendable, Equatable {
    enum Kind: String, Sendable, Codable {
        /// A model file or a Keras.js / TF.js folder: converted into the bundle cache.
        case converted
        /// A folder that already is a Kedge bundle: served as it is.
        case bundle
    }

    var name: String
    var kind: Kind
    /// File or folder name inside the models folder.
    var source: String
    /// Real path.
    var path: String
    /// Changes whenever the source changes (sizes, mtimes, inodes of its files).
    var signature: String
    /// Newest modification time among its files.
    var newestModification: Date
}

/// A cascade description (`cascade.json`, `NAME.cascade.json`) found beside the models.
/// Its sample volume, if any, is `demo_volume.npy` beside `cascade.json` (`NAME.demo_volume.npy` beside
/// `NAME.cascade.json`): the viewer's one-click sample.
struct CascadeItem: Sendable, Equatable {
    var name: String
    var file: String
    var path: String
    var sampleFile: String? = nil
    var samplePath: String? = nil
}

/// A file that looks like a model but cannot be one (its name is not a valid model name).
struct RejectedItem: Sendable, Equatable {
    var source: String
    var reason: String
}

enum ModelSources {
    /// Partial downloads and editor droppings are not models yet.
    private static let transientSuffixes = ["~", ".tmp", ".part", ".partial", ".crdownload", ".download", ".swp"]

    static func scan(realRoot: String) -> (items: [SourceItem], cascades: [CascadeItem], rejected: [RejectedItem]) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: realRoot)) ?? []).sorted()
        var items: [SourceItem] = []
        var cascades: [CascadeItem] = []
        var rejected: [RejectedItem] = []
        for entry in names {
            if entry.hasPrefix(".") || transientSuffixes.contains(where: { entry.hasSuffix($0) }) { continue }
            let path = realRoot + "/" + entry
            // A symlink is followed only when it stays inside the models folder.
            guard let real = PathSafety.realPath(path), PathSafety.isInside(real, root: realRoot), real != realRoot else {
                continue
            }
            var st = stat()
            guard stat(real, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                let kind: SourceItem.Kind
                if BundleInfo.looksLikeKedgeBundle(real) {
                    kind = .bundle
                } else if FileManager.default.fileExists(atPath: real + "/model.json") {
                    kind = .converted
                } else {
                    continue
                }
                guard ModelName.isValid(entry) else {
                    rejected.append(RejectedItem(source: entry, reason: "\(entry) is not a valid model name"))
                    continue
                }
                let (sig, newest) = signature(ofFolder: real)
                items.append(
                    SourceItem(
                        name: entry, kind: kind, source: entry, path: real, signature: sig, newestModification: newest))
            } else if st.st_mode & S_IFMT == S_IFREG {
                if entry == "cascade.json" || entry.hasSuffix(".cascade.json") {
                    let name = entry == "cascade.json" ? "cascade" : String(entry.dropLast(".cascade.json".count))
                    var item = CascadeItem(name: name, file: entry, path: real)
                    let sample = name == "cascade" ? "demo_volume.npy" : name + ".demo_volume.npy"
                    if let s = PathSafety.realPath(realRoot + "/" + sample), PathSafety.isInside(s, root: realRoot),
                        FileManager.default.fileExists(atPath: s)
                    {
                        item.sampleFile = sample
                        item.samplePath = s
                    }
                    cascades.append(item)
                    continue
                }
                guard let (base, _) = ModelName.split(entry) else { continue }
                guard ModelName.isValid(base) else {
                    rejected.append(
                        RejectedItem(
                            source: entry,
                            reason: "\(base) is not a valid model name (letters, digits, _ . - and no leading dot)"))
                    continue
                }
                guard let fp = FileFingerprint.of(real) else { continue }
                items.append(
                    SourceItem(
                        name: base, kind: .converted, source: entry, path: real, signature: fp.signature,
                        newestModification: fp.modified))
            }
        }
        return (items, cascades, rejected)
    }

    static func signature(ofFolder path: String) -> (String, Date) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        var sig = ""
        var newest = Date.distantPast
        for n in names where !n.hasPrefix(".") {
            guard let fp = FileFingerprint.of(path + "/" + n) else { continue }
            sig += "\(n)=\(fp.signature);"
            newest = max(newest, fp.modified)
        }
        return (sig, newest)
    }

    /// Content hash of a source: the file's SHA-256, or for a folder the hash of its files' names and hashes.
    static func contentHash(_ path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ConversionError("\(path) disappeared")
        }
        if !isDir.boolValue { return try SHA256.hexDigest(ofFile: path) }
        var joined = ""
        for n in try FileManager.default.contentsOfDirectory(atPath: path).sorted() where !n.hasPrefix(".") {
            var sub: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path + "/" + n, isDirectory: &sub), !sub.boolValue else {
                continue
            }
            joined += "\(n):\(try SHA256.hexDigest(ofFile: path + "/" + n))\n"
        }
        return SHA256.hexDigest(Array(joined.utf8))
    }
}

extension FileFingerprint {
    var signature: String { "\(size):\(modifiedNanoseconds):\(inode)" }
    var modified: Date { Date(timeIntervalSince1970: Double(modifiedNanoseconds) / 1e9) }
}
