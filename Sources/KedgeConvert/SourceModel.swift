import Foundation
import KedgeCore
import ZIPFoundation

/// The input formats the converter reads; the raw value is `source_format` in `model_metadata.json`.
public enum SourceFormat: String, Sendable {
    /// `model.save("m.h5")` of Keras 3 or Keras 1/2 (tf-keras): config and weights in one HDF5 file.
    case kerasH5 = "keras-h5"
    /// `model.save("m.keras")`: a zip of config.json, metadata.json and model.weights.h5.
    case keras = "keras-v3"
    /// `save_weights("w.h5")` of Keras 1/2 (tf-keras), with the architecture given separately.
    case weightsH5 = "keras-h5-weights"
    /// Keras 3's `save_weights("w.weights.h5")`, with the architecture given separately.
    case weightsV3 = "keras-v3-weights"
    /// An xgboost `save_model` file, JSON or UBJSON (see XGBoostSource.swift).
    case xgboost = "xgboost"
    /// Keras.js 1.0 (Keras 2.1 era): one protobuf `.bin` (see KerasJSSource.swift).
    case kerasJS = "kerasjs-bin"
    /// Keras.js 0.x (Keras 1 / 2.0 era): `model.json` with `*_weights.buf` and `*_metadata.json` beside it.
    case kerasJSv0 = "kerasjs-v0"
    /// A TensorFlow.js layers model: `model.json` with a weights manifest and binary shards (see TFJSSource.swift).
    case tfjsLayers = "tfjs-layers-model"
}

/// A Keras model file opened for conversion: its architecture (as text and parsed) and its weights file.
final class SourceModel {
    /// The path the user gave; every message starts with it.
    let source: String
    let format: SourceFormat
    /// `model.json` of the bundle: the config text exactly as found.
    let modelJSON: [UInt8]
    let kerasVersion: String?
    let backend: String?
    let config: ModelConfig
    let weights: HDF5File
    let layout: WeightLayout

    private init(
        source: String, format: SourceFormat, modelJSON: [UInt8], kerasVersion: String?, backend: String?,
        config: ModelConfig, weights: HDF5File, layout: WeightLayout
    ) {
        self.source = source
        self.format = format
        self.modelJSON = modelJSON
        self.kerasVersion = kerasVersion
        self.backend = backend
        self.config = config
        self.weights = weights
        self.layout = layout
    }

    var planner: WeightPlanner { WeightPlanner(file: weights, source: source, layout: layout) }

    /// Opens `path`, telling .keras zips and HDF5 files apart by their first bytes, not their extension.
    /// `configPath` supplies the architecture of a weights-only file (and overrides one stored in the file).
    static func open(_ path: String, configPath: String?) throws -> SourceModel {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw KedgeError(.invalidFile, "\(path): no such file")
        }
        guard !isDir.boolValue else {
            throw KedgeError(
                .invalidFile,
                "\(path) is a folder; give the model file (.h5 or .keras); a TensorFlow SavedModel folder is not supported"
            )
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw KedgeError(.invalidFile, "\(path): cannot be read (permissions?)")
        }
        let head = [UInt8](handle.readData(ofLength: 4096))
        handle.closeFile()
        let given = try configPath.map { try readConfigFile($0, for: path) }

        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
            return try openKerasZip(path, config: given)
        }
        if HDF5File.hasSignature(head) {
            return try openH5(path, config: given)
        }
        if head.isEmpty { throw KedgeError(.invalidFile, "\(path): the file is empty") }
        throw KedgeError(
            .invalidFile,
            "\(path) is neither an HDF5 file (Keras .h5) nor a zip (Keras .keras): its first bytes match neither")
    }

    static func readConfigFile(_ configPath: String, for path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: configPath) else {
            throw KedgeError(.invalidFile, "\(configPath): cannot read the architecture JSON given for \(path)")
        }
        return [UInt8](d)
    }

    static func parseConfig(_ text: [UInt8], kerasVersion: String?, what: String) throws -> (ModelConfig, String?) {
        do throws(KedgeError) {
            let json = try JSONParser.parse(text, what: what)
            var root = json
            if let s = json.string { root = try JSONParser.parse(s, what: what) }
            let version = kerasVersion ?? root["keras_version"]?.string
            return (try ModelConfig.parse(json, kerasVersion: version), version)
        } catch {
            throw error.message.hasPrefix(what) ? error : KedgeError(error.kind, "\(what): \(error.message)")
        }
    }

    static func openH5(_ path: String, config given: [UInt8]?) throws -> SourceModel {
        let file = try HDF5Isolation.open(path: path, name: path)
        let stored = try file.stringAttribute("", "model_config")
        let version =
            try file.stringAttribute("", "keras_version") ?? file.stringAttribute("model_weights", "keras_version")
        let backend = try file.stringAttribute("", "backend") ?? file.stringAttribute("model_weights", "backend")

        let layout: WeightLayout
        let format: SourceFormat
        if file.isGroup("model_weights") {
            layout = .legacy(root: "model_weights")
            format = .kerasH5
        } else if file.hasAttribute("", "layer_names") || file.hasAttribute("", "layer_names0") {
            layout = .legacy(root: "")
            format = .weightsH5
        } else if file.isGroup("layers") {
            layout = .v3
            format = .weightsV3
        } else {
            throw KedgeError(
                .invalidFile,
                "\(path) is an HDF5 file but holds no Keras weights (no 'model_weights' group, no 'layer_names' attribute, no 'layers' group)"
            )
        }

        let text: [UInt8]
        let what: String
        if let g = given {
            text = g
            what = "the architecture JSON given for \(path)"
        } else if let s = stored {
            text = Array(s.utf8)
            what = "\(path): attribute 'model_config'"
        } else {
            throw KedgeError(
                .invalidConfig,
                "\(path) holds weights only (saved with save_weights, no 'model_config'); give the architecture too: the model.to_json() text as a file (kedge convert --config model.json)"
            )
        }
        let (config, parsedVersion) = try parseConfig(text, kerasVersion: version, what: what)
        return SourceModel(
            source: path, format: format, modelJSON: text, kerasVersion: version ?? parsedVersion, backend: backend,
            config: config, weights: file, layout: layout)
    }

    static func openKerasZip(_ path: String, config given: [UInt8]?) throws -> SourceModel {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw KedgeError(
                .invalidFile, "\(path) is not a readable zip archive (a truncated or damaged .keras file?)")
        }
        func read(_ name: String) throws -> [UInt8]? {
            guard let entry = archive[name] else { return nil }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(entry.uncompressedSize))
            do {
                _ = try archive.extract(entry) { bytes += $0 }
            } catch {
                throw KedgeError(
                    .invalidFile, "\(path): entry '\(name)' of the zip cannot be read (truncated or damaged)")
            }
            return bytes
        }
        guard let configText = try given ?? read("config.json") else {
            throw KedgeError(.invalidFile, "\(path) is a zip without config.json: not a Keras .keras file")
        }
        var version: String? = nil
        var backend: String? = nil
        if let meta = try read("metadata.json"), let j = try? JSONParser.parse(meta, what: "metadata.json") {
            version = j["keras_version"]?.string
            backend = j["backend"]?.string
        }
        guard let h5 = try read("model.weights.h5") else {
            if archive["model.weights.json"] != nil {
                throw KedgeError(
                    .invalidFile,
                    "\(path) stores its weights in shards (model.weights.json); Kedge reads .keras files with one model.weights.h5"
                )
            }
            throw KedgeError(.invalidFile, "\(path) is a zip without model.weights.h5: not a Keras .keras file")
        }
        let file = try HDF5Isolation.open(image: h5, name: "\(path) (model.weights.h5)")
        let what = given != nil ? "the architecture JSON given for \(path)" : "\(path): config.json"
        let (config, parsedVersion) = try parseConfig(configText, kerasVersion: version, what: what)
        return SourceModel(
            source: path, format: .keras, modelJSON: configText, kerasVersion: version ?? parsedVersion,
            backend: backend,
            config: config, weights: file, layout: .v3)
    }
}
