import Foundation
import KedgeCore

/// TensorFlow.js layers models (`tensorflowjs_converter --input_format keras`, or `model.save()` in TF.js):
/// `model.json` = {format: "layers-model", modelTopology, weightsManifest: [{paths, weights: [{name, shape,
/// dtype, quantization?}]}]}. Each manifest group's tensors are concatenated in order and cut into shard files at
/// arbitrary byte boundaries, so a tensor may span shards. Quantized tensors hold uint8 or uint16 values
/// (v * scale + min) or float16.
enum TFJSSource {
    static func looksLikeTFJS(_ json: JSON) -> Bool {
        json["weightsManifest"] != nil || json["format"]?.string == "layers-model"
    }

    static func read(_ path: String, json: JSON, text: [UInt8]) throws -> LegacyModel {
        if let f = json["format"]?.string, f != "layers-model" {
            throw KedgeError(
                .invalidFile,
                "\(path) is a TensorFlow.js '\(f)'; Kedge reads TF.js layers models (format 'layers-model', made from Keras models), not graph models"
            )
        }
        guard let topology = json["modelTopology"], !topology.isNull else {
            throw KedgeError(.invalidFile, "\(path) is a TF.js model without modelTopology (weights only)")
        }
        let root = try LegacyBundle.kerasConfig(topology, what: "\(path): modelTopology")
        var version = topology["keras_version"]?.string ?? root["keras_version"]?.string
        // TF.js's own `model.save()` writes "tfjs-layers x.y.z"; its configs follow Keras 2, and the core reads the
        // generation from the first digit of keras_version.
        if let v = version, v.hasPrefix("tfjs") { version = "2 (\(v))" }
        let config = try LegacyBundle.parseConfig(root, kerasVersion: version, what: "\(path): modelTopology")
        guard let manifest = json["weightsManifest"]?.array else {
            throw KedgeError(.invalidFile, "\(path) has no weightsManifest")
        }

        // Which top-level layer a weight belongs to: Keras names weights `<layer>/...`; inside a nested model
        // tf-keras names them by the inner layer alone.
        var owner: [String: String] = [:]
        func addInner(_ m: ModelConfig, top: String) {
            for l in m.layers {
                if owner[l.name] == nil { owner[l.name] = top }
                if let inner = l.inner { addInner(inner, top: top) }
            }
        }
        for l in config.layers { owner[l.name] = l.name }
        for l in config.layers { if let inner = l.inner { addInner(inner, top: l.name) } }
        let topNames = Set(config.layers.map(\.name))

        let dir = (path as NSString).deletingLastPathComponent
        var groups: [String: [NamedTensor]] = [:]
        var order: [String] = []
        for (g, group) in manifest.enumerated() {
            guard let paths = group["paths"]?.array, let weights = group["weights"]?.array else {
                throw KedgeError(.invalidFile, "\(path): weightsManifest group #\(g) lacks 'paths' or 'weights'")
            }
            var bytes: [UInt8] = []
            for p in paths {
                guard let name = p.string else {
                    throw KedgeError(.invalidFile, "\(path): group #\(g) has a non-string path")
                }
                let shard = dir.isEmpty ? name : dir + "/" + name
                guard let d = FileManager.default.contents(atPath: shard) else {
                    throw KedgeError(
                        .invalidFile,
                        "\(path): weight shard '\(name)' (group #\(g)) is missing; keep the shard files beside model.json"
                    )
                }
                bytes += d
            }
            var offset = 0
            for w in weights {
                guard let name = w["name"]?.string, let shapeJSON = w["shape"]?.array else {
                    throw KedgeError(.invalidFile, "\(path): a weight of group #\(g) lacks 'name' or 'shape'")
                }
                let shape = shapeJSON.map { $0.int ?? -1 }
                let what = "\(path): weight '\(name)'"
                guard shape.allSatisfy({ $0 >= 0 }) else {
                    throw KedgeError(.invalidFile, "\(what) has shape \(describeShape(shape)), not a list of sizes")
                }
                let n = shape.reduce(1, *)
                let dtype = w["dtype"]?.string ?? "float32"
                let q = w["quantization"]
                let stored = q?["dtype"]?.string ?? dtype
                let size: Int
                switch stored {
                case "float32", "int32": size = 4
                case "uint16", "float16": size = 2
                case "uint8": size = 1
                default:
                    throw KedgeError(
                        .invalidFile,
                        "\(what) is stored as '\(stored)'; Kedge reads float32, int32, float16, uint16 and uint8")
                }
                guard offset + n * size <= bytes.count else {
                    throw KedgeError(
                        .invalidFile,
                        "\(what) needs bytes \(offset)..<\(offset + n * size) of group #\(g), but its shards \(paths.compactMap(\.string).joined(separator: ", ")) hold \(bytes.count) bytes (a shard is truncated or missing)"
                    )
                }
                let raw = bytes[offset..<(offset + n * size)]
                offset += n * size
                let values = try decode(raw, stored: stored, quantization: q, count: n, what: what)
                guard let top = layer(of: name, owner: owner, topNames: topNames) else {
                    throw KedgeError(
                        .invalidFile,
                        "\(what) belongs to no layer of the model config (expected a name like '<layer>/kernel')")
                }
                if groups[top] == nil { order.append(top) }
                groups[top, default: []].append(NamedTensor(name: name, shape: shape, data: values))
            }
        }
        let modelJSON = Array(root.serialized().utf8)
        return LegacyModel(
            source: path, format: .tfjsLayers, modelJSON: modelJSON, config: config, kerasVersion: version,
            backend: topology["backend"]?.string, groups: groups, groupOrder: order)
    }

    static func layer(of name: String, owner: [String: String], topNames: Set<String>) -> String? {
        let comps = name.split(separator: "/").map(String.init)
        for c in comps where topNames.contains(c) { return c }
        for c in comps { if let o = owner[c] { return o } }
        return nil
    }

    static func decode(_ raw: ArraySlice<UInt8>, stored: String, quantization q: JSON?, count n: Int, what: String)
        throws -> [Float]
    {
        var out = [Float](repeating: 0, count: n)
        let base = raw.startIndex
        switch stored {
        case "float32":
            return LegacyBundle.floats(raw)
        case "int32":
            for i in 0..<n {
                let p = base + 4 * i
                let bits =
                    UInt32(raw[p]) | UInt32(raw[p + 1]) << 8 | UInt32(raw[p + 2]) << 16 | UInt32(raw[p + 3]) << 24
                out[i] = Float(Int32(bitPattern: bits))
            }
        case "float16":
            for i in 0..<n { out[i] = halfToFloat(UInt16(raw[base + 2 * i]) | UInt16(raw[base + 2 * i + 1]) << 8) }
        default:  // uint8, uint16: affine
            guard let scale = q?["scale"]?.double, let min = q?["min"]?.double else {
                throw KedgeError(.invalidFile, "\(what) is quantized to \(stored) without 'scale' and 'min'")
            }
            let s = Float(scale)
            let m = Float(min)
            if stored == "uint8" {
                for i in 0..<n { out[i] = Float(raw[base + i]) * s + m }
            } else {
                for i in 0..<n {
                    out[i] = Float(UInt16(raw[base + 2 * i]) | UInt16(raw[base + 2 * i + 1]) << 8) * s + m
                }
            }
        }
        return out
    }
}
