import Foundation
import KedgeCore

/// Keras.js, the predecessor, stored models in two ways; `kedge convert` reads both, so that an existing
/// Keras.js deployment moves over with one command.
///
/// - 1.0 (`encoder.py`, Keras 2.1 era): one protobuf file, `message Model {string id = 1; string name = 2;
///   string keras_version = 3; string backend = 4; string model_config = 5; repeated Weights model_weights = 6;}`
///   with `message Weights {string layer_name = 1; string weight_name = 2; repeated uint32 shape = 3;
///   string type = 4; bytes data = 5; float quantize_min = 6; float quantize_max = 7;}`. `type` is "float32"
///   (little-endian) or "uint8", which dequantizes as q * (max - min) / 255 + min.
/// - 0.x (Keras 1 / 2.0 era): `model.json` (the `to_json()` text), `<name>_weights.buf` (float32 tensors back to
///   back) and `<name>_metadata.json`, an array of {layer_name, weight_name, offset (bytes), length (elements),
///   shape, type}.
/// The weights are listed per layer in `weight_names` order, as in the .h5 file they came from.
enum KerasJSSource {
    // MARK: 1.0 protobuf

    static func readBin(_ path: String) throws -> LegacyModel {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KedgeError(.invalidFile, "\(path): cannot read the file")
        }
        let bytes = [UInt8](data)
        guard !bytes.isEmpty else { throw KedgeError(.invalidFile, "\(path): the file is empty") }
        var r = ProtobufReader(bytes[...], what: path)
        var kerasVersion: String? = nil
        var backend: String? = nil
        var configText: String? = nil
        var groups: [String: [NamedTensor]] = [:]
        var order: [String] = []
        var index = 0
        while let f = try r.next() {
            switch (f.number, f.wireType) {
            case (3, .lengthDelimited): kerasVersion = ProtobufReader.string(f)
            case (4, .lengthDelimited): backend = ProtobufReader.string(f)
            case (5, .lengthDelimited): configText = ProtobufReader.string(f)
            case (6, .lengthDelimited):
                let (layer, t) = try weights(f.payload, index: index, path: path)
                index += 1
                if groups[layer] == nil { order.append(layer) }
                groups[layer, default: []].append(t)
            default:
                break
            }
        }
        guard let text = configText, !text.isEmpty else {
            throw KedgeError(
                .invalidFile,
                "\(path) has no model_config (field 5): not a Keras.js .bin model (Keras.js 1.0 protobuf)")
        }
        let what = "\(path): model_config"
        let parsed: JSON
        do throws(KedgeError) { parsed = try JSONParser.parse(text, what: what) } catch {
            throw KedgeError(error.kind, error.message.hasPrefix(path) ? error.message : "\(what): \(error.message)")
        }
        let root = try LegacyBundle.kerasConfig(parsed, what: what)
        let version = kerasVersion.flatMap { $0.isEmpty ? nil : $0 } ?? root["keras_version"]?.string
        let config = try LegacyBundle.parseConfig(root, kerasVersion: version, what: what)
        return LegacyModel(
            source: path, format: .kerasJS,
            modelJSON: parsed["class_name"] != nil ? Array(text.utf8) : Array(root.serialized().utf8), config: config,
            kerasVersion: version, backend: backend.flatMap { $0.isEmpty ? nil : $0 }, groups: groups, groupOrder: order
        )
    }

    static func weights(_ payload: ArraySlice<UInt8>, index: Int, path: String) throws -> (String, NamedTensor) {
        var r = ProtobufReader(payload, what: "\(path): weights entry #\(index)")
        var layer = ""
        var name = ""
        var shape: [Int] = []
        var type = "float32"
        var data: ArraySlice<UInt8> = []
        var qmin: Float = 0
        var qmax: Float = 0
        while let f = try r.next() {
            switch (f.number, f.wireType) {
            case (1, .lengthDelimited): layer = ProtobufReader.string(f)
            case (2, .lengthDelimited): name = ProtobufReader.string(f)
            case (3, _): try ProtobufReader.appendUInt32s(f, to: &shape, what: r.what)
            case (4, .lengthDelimited): type = ProtobufReader.string(f)
            case (5, .lengthDelimited): data = f.payload
            case (6, .fixed32): qmin = ProtobufReader.float(f)
            case (7, .fixed32): qmax = ProtobufReader.float(f)
            default: break
            }
        }
        let what = "\(path): layer '\(layer)' weight '\(name)'"
        guard !layer.isEmpty else {
            throw KedgeError(.invalidFile, "\(path): weights entry #\(index) has no layer_name")
        }
        let n = shape.reduce(1, *)
        let values: [Float]
        switch type {
        case "float32", "":
            guard data.count == 4 * n else {
                throw KedgeError(
                    .invalidFile,
                    "\(what): shape \(describeShape(shape)) needs \(4 * n) bytes of float32, the file has \(data.count)"
                )
            }
            values = LegacyBundle.floats(data)
        case "uint8":
            guard data.count == n else {
                throw KedgeError(
                    .invalidFile,
                    "\(what): shape \(describeShape(shape)) needs \(n) bytes of uint8, the file has \(data.count)")
            }
            let step = (qmax - qmin) / 255
            values = data.map { Float($0) * step + qmin }
        default:
            throw KedgeError(.invalidFile, "\(what) has type '\(type)'; Keras.js files hold float32 or uint8")
        }
        return (layer, NamedTensor(name: name, shape: shape, data: values))
    }

    // MARK: 0.x three files

    /// Nil when `model.json` has no Keras.js weights beside it. `text` is the file's bytes.
    static func readV0(_ path: String, json: JSON, text: [UInt8]) throws -> LegacyModel? {
        let dir = (path as NSString).deletingLastPathComponent
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let fm = FileManager.default
        func beside(_ name: String) -> String { dir.isEmpty ? name : dir + "/" + name }
        // `model.json` comes with `model_weights.buf` / `model_metadata.json`; else any single pair in the folder.
        var weightsPath = beside(stem + "_weights.buf")
        var metaPath = beside(stem + "_metadata.json")
        if !fm.fileExists(atPath: weightsPath) || !fm.fileExists(atPath: metaPath) {
            let files = (try? fm.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
            let bufs = files.filter { $0.hasSuffix("_weights.buf") }
            let metas = files.filter { $0.hasSuffix("_metadata.json") }
            guard bufs.count == 1, metas.count == 1 else { return try notFound(path, json: json, files: files) }
            weightsPath = beside(bufs[0])
            metaPath = beside(metas[0])
        }
        guard let metaData = fm.contents(atPath: metaPath), let bufData = fm.contents(atPath: weightsPath) else {
            throw KedgeError(.invalidFile, "\(path): cannot read \(metaPath) or \(weightsPath)")
        }
        let meta: JSON
        do throws(KedgeError) { meta = try JSONParser.parse([UInt8](metaData), what: metaPath) } catch {
            throw KedgeError(
                error.kind, error.message.hasPrefix(metaPath) ? error.message : "\(metaPath): \(error.message)")
        }
        guard let entries = meta.array else {
            if meta["format"]?.string == "kedge-bundle" {
                throw KedgeError(
                    .invalidFile,
                    "\(path) is already a Kedge bundle (\(metaPath) says format kedge-bundle); load it as it is")
            }
            throw KedgeError(.invalidFile, "\(metaPath) is not a Keras.js metadata file (a list of weight entries)")
        }
        let buffer = [UInt8](bufData)
        var groups: [String: [NamedTensor]] = [:]
        var order: [String] = []
        for (i, e) in entries.enumerated() {
            guard let layer = e["layer_name"]?.string, let name = e["weight_name"]?.string,
                let offset = e["offset"]?.int, let length = e["length"]?.int, let shapeJSON = e["shape"]?.array
            else {
                throw KedgeError(
                    .invalidFile,
                    "\(metaPath): entry #\(i) lacks one of layer_name, weight_name, offset, length, shape")
            }
            let what = "\(metaPath): layer '\(layer)' weight '\(name)'"
            let shape = shapeJSON.map { $0.int ?? -1 }
            let type = e["type"]?.string ?? "float32"
            guard type == "float32" else {
                throw KedgeError(.invalidFile, "\(what) has type '\(type)'; Keras.js 0.x buffers hold float32")
            }
            guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == length else {
                throw KedgeError(
                    .invalidFile, "\(what): shape \(describeShape(shape)) does not hold \(length) elements")
            }
            guard offset >= 0, offset + 4 * length <= buffer.count else {
                throw KedgeError(
                    .invalidFile,
                    "\(what): bytes \(offset)..<\(offset + 4 * length) lie beyond the end of \(weightsPath) (\(buffer.count) bytes)"
                )
            }
            if groups[layer] == nil { order.append(layer) }
            groups[layer, default: []].append(
                NamedTensor(name: name, shape: shape, data: LegacyBundle.floats(buffer[offset..<(offset + 4 * length)]))
            )
        }
        let root = try LegacyBundle.kerasConfig(json, what: path)
        let version =
            root["keras_version"]?.string ?? json["keras_version"]?.string ?? LegacyBundle.guessKerasVersion(root)
        let config = try LegacyBundle.parseConfig(root, kerasVersion: version, what: path)
        return LegacyModel(
            source: path, format: .kerasJSv0, modelJSON: text, config: config, kerasVersion: version,
            backend: root["backend"]?.string, groups: groups, groupOrder: order)
    }

    /// A `model.json` with no weights beside it: say what would be needed.
    static func notFound(_ path: String, json: JSON, files: [String]) throws -> LegacyModel? {
        guard json["class_name"] != nil || json["model_config"] != nil else { return nil }
        throw KedgeError(
            .invalidFile,
            "\(path) is a Keras architecture without weights: give the .h5/.keras model, or the weights file with this architecture (kedge convert weights.h5 --config \((path as NSString).lastPathComponent)), or keep the Keras.js files <name>_weights.buf and <name>_metadata.json beside it"
        )
    }
}
