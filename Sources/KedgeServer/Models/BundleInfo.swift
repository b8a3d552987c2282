import Foundation

/// The three files of a bundle (docs/FORMAT.md), in the order a client fetches them.
enum BundleFiles {
    static let model = "model.json"
    static let weights = "model_weights.buf"
    static let metadata = "model_metadata.json"
    static let all = [model, weights, metadata]
}

struct BundleFileInfo: Codable, Sendable, Equatable {
    var name: String
    var size: Int
    var sha256: String
}

/// A checked, hashed bundle folder: what /api/models lists and /bundles serves.
struct BundleInfo: Codable, Sendable, Equatable {
    /// Short content hash of the three files together: the version in every bundle URL.
    var hash: String
    /// Real path of the folder holding the files.
    var directory: String
    var files: [BundleFileInfo]
    var inputs: JSONValue?
    var outputs: JSONValue?
    var formatVersion: Int?
    var kerasVersion: String?
    var sourceFormat: String?

    var totalSize: Int { files.reduce(0) { $0 + $1.size } }

    func file(named name: String) -> BundleFileInfo? { files.first { $0.name == name } }

    /// Checks that `directory` holds a complete bundle (all files, metadata readable, every tensor inside the
    /// weights buffer) and hashes it. A half-written or truncated bundle fails here and is never served.
    static func inspect(directory: String) throws -> BundleInfo {
        guard let real = PathSafety.realPath(directory) else { throw ConversionError("\(directory) does not exist") }
        var files: [BundleFileInfo] = []
        for name in BundleFiles.all {
            let path = real + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
                throw ConversionError("the bundle has no \(name) (a bundle is model.json, model_weights.buf, model_metadata.json)")
            }
            files.append(BundleFileInfo(name: name, size: Int(st.st_size), sha256: try SHA256.hexDigest(ofFile: path)))
        }
        let metadataData = try Data(contentsOf: URL(fileURLWithPath: real + "/" + BundleFiles.metadata))
        let metadata: JSONValue
        do {
            metadata = try JSONValue.parse(metadataData)
        } catch {
            throw ConversionError("model_metadata.json is not valid JSON")
        }
        guard case .object = metadata else { throw ConversionError("model_metadata.json is not a JSON object") }
        let modelData = try Data(contentsOf: URL(fileURLWithPath: real + "/" + BundleFiles.model))
        guard (try? JSONValue.parse(modelData)) != nil else { throw ConversionError("model.json is not valid JSON") }
        let weightsSize = files[1].size
        if case .array(let weights)? = metadata["weights"] {
            for w in weights {
                guard let offset = w["offset"]?.int, let length = w["length"]?.int, offset >= 0, length >= 0 else {
                    throw ConversionError("model_metadata.json: a weight entry has no integer offset/length")
                }
                if offset + length > weightsSize {
                    let layer = w["layer_name"]?.string ?? "?"
                    let weight = w["weight_name"]?.string ?? "?"
                    throw ConversionError(
                        "model_weights.buf is \(weightsSize) bytes but \(layer)/\(weight) needs bytes \(offset)..<\(offset + length)"
                    )
                }
            }
        }
        var joined = ""
        for f in files { joined += "\(f.name):\(f.sha256)\n" }
        return BundleInfo(
            hash: String(SHA256.hexDigest(Array(joined.utf8)).prefix(16)),
            directory: real,
            files: files,
            inputs: metadata["inputs"],
            outputs: metadata["outputs"],
            formatVersion: metadata["format_version"]?.int,
            kerasVersion: metadata["keras_version"]?.string,
            sourceFormat: metadata["source_format"]?.string)
    }

    /// Whether a folder is a Kedge bundle (as opposed to a Keras.js or TF.js folder that needs converting).
    static func looksLikeKedgeBundle(_ directory: String) -> Bool {
        let fm = FileManager.default
        guard BundleFiles.all.allSatisfy({ fm.fileExists(atPath: directory + "/" + $0) }) else { return false }
        guard let data = fm.contents(atPath: directory + "/" + BundleFiles.metadata),
            let meta = try? JSONValue.parse(data)
        else { return false }
        return meta["format"]?.string == "kedge-bundle"
    }
}
