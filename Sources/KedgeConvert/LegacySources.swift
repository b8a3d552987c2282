import Foundation
import KedgeCore

/// The formats of Keras's predecessors and neighbours: Keras.js (`.bin`, and the v0 `model.json` +
/// `*_weights.buf` + `*_metadata.json`), TensorFlow.js layers models, and Keras .h5 files trained on the Theano
/// backend. A `model.json` is told apart by its content, not its name.
enum LegacySources {
    /// The bundle, or nil when `input` is none of these formats (then the Keras readers take it).
    static func bundle(input: String, options: ConvertOptions) throws -> ConvertedBundle? {
        let ext = (input as NSString).pathExtension.lowercased()
        if ext == "bin" {
            return try LegacyBundle.make(KerasJSSource.readBin(input), options: options)
        }
        if ext == "json" {
            guard let data = FileManager.default.contents(atPath: input) else {
                throw KedgeError(.invalidFile, "\(input): cannot read the file")
            }
            let json: JSON
            do throws(KedgeError) {
                json = try JSONParser.parse([UInt8](data), what: input)
            } catch {
                throw KedgeError(
                    error.kind, error.message.hasPrefix(input) ? error.message : "\(input): \(error.message)")
            }
            if TFJSSource.looksLikeTFJS(json) {
                return try LegacyBundle.make(TFJSSource.read(input, json: json, text: [UInt8](data)), options: options)
            }
            if let model = try KerasJSSource.readV0(input, json: json, text: [UInt8](data)) {
                return try LegacyBundle.make(model, options: options)
            }
            return nil
        }
        return try LegacyH5.bundle(input: input, options: options)
    }
}

/// One stored tensor of a legacy file, as found.
struct NamedTensor {
    /// The name the file gives it (`dense_1/kernel`, `convolution2d_1_W`), for matching and messages.
    var name: String
    var shape: [Int]
    var data: [Float]
}

/// A model read from one of the legacy formats: its architecture and its tensors grouped per top-level layer
/// (the grouping of Keras's `model_weights/<layer>` groups, which Keras.js and TF.js keep in some form).
struct LegacyModel {
    var source: String
    var format: SourceFormat
    /// `model.json` of the bundle: the Keras `{"class_name", "config"}` text.
    var modelJSON: [UInt8]
    var config: ModelConfig
    var kerasVersion: String?
    var backend: String?
    var groups: [String: [NamedTensor]]
    /// Group names in file order, for messages.
    var groupOrder: [String]
}

/// A tensor of the bundle.
struct PlannedTensor {
    var layerPath: String
    var className: String
    var config: LayerConfig
    var weightName: String
    var tensor: NamedTensor
}

/// Matches the stored tensors of a `LegacyModel` to the `(layer, weight)` names the core asks for, the way
/// `WeightPlanner` does for .h5 groups: by name when every wanted weight finds exactly one stored name ending in
/// it, else by position; the counts must agree.
enum LegacyPlanner {
    struct Wanted {
        var layerPath: String
        var layerName: String
        var className: String
        var config: LayerConfig
        var weightName: String
    }

    static func plan(_ m: LegacyModel) throws -> [PlannedTensor] {
        var out: [PlannedTensor] = []
        for e in m.config.layers where e.className != "InputLayer" {
            let want = try wanted(e, path: e.name, source: m.source)
            guard var stored = m.groups[e.name] else {
                if want.isEmpty { continue }
                let have = m.groupOrder.isEmpty ? "none" : m.groupOrder.joined(separator: ", ")
                throw KedgeError(
                    .missingWeight,
                    "\(m.source): layer '\(e.name)' (\(e.className)) needs weights \(want.map(\.weightName).joined(separator: ", ")), but the file has none for it; the file has weights for layers \(have)"
                )
            }
            if let merged = try Keras1Recurrent.merged(e, stored, source: m.source) { stored = merged }
            guard stored.count == want.count else {
                throw KedgeError(
                    stored.count < want.count ? .missingWeight : .invalidFile,
                    "\(m.source): layer '\(e.name)' (\(e.className)) has \(stored.count) weight\(stored.count == 1 ? "" : "s") in the file (\(stored.map(\.name).joined(separator: ", "))) but its config needs \(want.count) (\(want.map(\.weightName).joined(separator: ", "))); the file and the config do not describe the same layer"
                )
            }
            let order = match(stored: stored.map(\.name), want: want, nested: e.inner != nil)
            for (i, w) in want.enumerated() {
                out.append(
                    PlannedTensor(
                        layerPath: w.layerPath, className: w.className, config: w.config, weightName: w.weightName,
                        tensor: stored[order[i]]))
            }
        }
        return out
    }

    static func wanted(_ e: LayerEntry, path: String, source: String) throws -> [Wanted] {
        if let inner = e.inner {
            var out: [Wanted] = []
            for l in inner.layers where l.className != "InputLayer" {
                out += try wanted(l, path: path + "/" + l.name, source: source)
            }
            return out
        }
        let names: [String]
        do throws(KedgeError) { names = try LayerCatalog.weightNames(e.config) } catch {
            throw KedgeError(error.kind, "\(source): \(error.message)")
        }
        return names.map {
            Wanted(layerPath: path, layerName: e.name, className: e.className, config: e.config, weightName: $0)
        }
    }

    static func match(stored: [String], want: [Wanted], nested: Bool) -> [Int] {
        let comps = stored.map(KerasNaming.components(ofStoredName:))
        var taken = Set<Int>()
        var order: [Int] = []
        for w in want {
            let suffix = w.weightName.split(separator: "/").map(String.init)
            let candidates = comps.indices.filter { i in
                let c = comps[i]
                return c.count >= suffix.count && Array(c.suffix(suffix.count)) == suffix && !taken.contains(i)
                    && (!nested || c.dropLast(suffix.count).contains(w.layerName))
            }
            guard candidates.count == 1 else { return Array(want.indices) }
            taken.insert(candidates[0])
            order.append(candidates[0])
        }
        return order
    }
}

/// Keras 1's LSTM and GRU keep one kernel, recurrent kernel and bias per gate, in the order Keras 1 built them
/// (LSTM i, c, f, o; GRU z, r, h). Keras 2 joins them along the last axis in the order i, f, c, o and z, r, h, as
/// Keras 2's own loader does (`preprocess_weights_for_loading`). Files of Keras 1's `consume_less="gpu"` already
/// hold the joined form.
enum Keras1Recurrent {
    static func merged(_ e: LayerEntry, _ stored: [NamedTensor], source: String) throws -> [NamedTensor]? {
        let order: [Int]
        switch (e.className, stored.count) {
        case ("LSTM", 12): order = [0, 6, 3, 9]
        case ("GRU", 9): order = [0, 3, 6]
        default: return nil
        }
        guard e.config.has("output_dim") else { return nil }
        var out: [NamedTensor] = []
        for (part, name) in ["kernel", "recurrent_kernel", "bias"].enumerated() {
            let pieces = order.map { stored[$0 + part] }
            let rows = pieces[0].shape.count == 2 ? pieces[0].shape[0] : 1
            for p in pieces where p.shape.count != pieces[0].shape.count || (p.shape.count == 2 && p.shape[0] != rows) {
                throw KedgeError(
                    .shapeMismatch,
                    "\(source): layer '\(e.name)' (\(e.className)): Keras 1 weight '\(p.name)' has shape \(describeShape(p.shape)), which does not fit \(describeShape(pieces[0].shape)) of '\(pieces[0].name)'"
                )
            }
            var data: [Float] = []
            var cols = 0
            for p in pieces { cols += p.shape.last ?? 0 }
            data.reserveCapacity(rows * cols)
            for r in 0..<rows {
                for p in pieces {
                    let w = p.shape.last ?? 0
                    data += p.data[(r * w)..<((r + 1) * w)]
                }
            }
            let shape = pieces[0].shape.count == 2 ? [rows, cols] : [cols]
            out.append(NamedTensor(name: e.name + "/" + name, shape: shape, data: data))
        }
        return out
    }
}

/// Theano computed a true convolution (the kernel flipped in space) where TensorFlow, and Kedge, compute a
/// cross-correlation. Keras flips such kernels when it loads a Theano file on TensorFlow
/// (`preprocess_weights_for_loading` and `convert_kernel`): for the same classes, the converter does the same, so
/// every bundle holds cross-correlation kernels.
enum TheanoKernels {
    /// Classes and the weights Keras flips.
    static let flipped: [String: [String]] = [
        "Convolution1D": ["W"], "AtrousConvolution1D": ["W"], "Convolution2D": ["W"], "AtrousConvolution2D": ["W"],
        "Convolution3D": ["W"], "Deconvolution2D": ["W"],
        "Conv1D": ["kernel"], "Conv2D": ["kernel"], "Conv3D": ["kernel"], "Conv2DTranspose": ["kernel"],
        "Convolution1DTranspose": ["kernel"], "Conv3DTranspose": ["kernel"],
        "ConvLSTM2D": ["kernel", "recurrent_kernel"],
    ]

    static func isTheano(_ backend: String?) -> Bool { backend?.lowercased() == "theano" }

    static func apply(_ plan: inout [PlannedTensor], backend: String?) {
        guard isTheano(backend) else { return }
        for i in plan.indices {
            let p = plan[i]
            guard let names = flipped[p.className], names.contains(p.weightName) else { continue }
            let axes = spatialAxes(p)
            plan[i].tensor.data = reversed(p.tensor.data, shape: p.tensor.shape, axes: axes)
        }
    }

    /// The kernel's spatial axes as the file lays it out: Keras 2 (k..., in, out); Keras 1 `th` (out, in, k...);
    /// Keras 1 `tf` (k..., in, out); Keras 1.2 Convolution1D (k, 1, in, out) and Keras 1.0/1.1 (out, in, k, 1).
    static func spatialAxes(_ p: PlannedTensor) -> [Int] {
        let r = p.tensor.shape.count
        guard r >= 3 else { return r >= 1 ? [0] : [] }
        let keras1 = p.weightName == "W"
        if keras1 && (p.className == "Convolution1D" || p.className == "AtrousConvolution1D") && r == 4 {
            let filters = (try? p.config.int("nb_filter")) ?? -1
            if p.tensor.shape[3] == filters && p.tensor.shape[1] == 1 { return [0, 1] }
            return [2, 3]
        }
        if keras1, (try? p.config.string("dim_ordering", default: "tf")) == "th" { return Array(2..<r) }
        return Array(0..<(r - 2))
    }

    /// `data` (C order, `shape`) with the order of elements reversed along `axes`.
    static func reversed(_ data: [Float], shape: [Int], axes: [Int]) -> [Float] {
        guard !axes.isEmpty, !data.isEmpty else { return data }
        let r = shape.count
        var strides = [Int](repeating: 1, count: r)
        for d in stride(from: r - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        var out = data
        var idx = [Int](repeating: 0, count: r)
        for i in 0..<data.count {
            var src = 0
            for d in 0..<r { src += (axes.contains(d) ? shape[d] - 1 - idx[d] : idx[d]) * strides[d] }
            out[i] = data[src]
            var d = r - 1
            while d >= 0 {
                idx[d] += 1
                if idx[d] < shape[d] { break }
                idx[d] = 0
                d -= 1
            }
        }
        return out
    }
}

/// Keras .h5 files of Keras 1 (any backend) and of the Theano backend (Keras 1 and 2.0-2.2): their layer groups
/// are read as Keras wrote them, then planned like the Keras.js files (Keras 1 recurrent weights joined,
/// Theano kernels flipped, see `TheanoKernels`). Other .h5 files are left to the usual reader.
enum LegacyH5 {
    static func bundle(input: String, options: ConvertOptions) throws -> ConvertedBundle? {
        // Folders, missing and unreadable files are the usual reader's to report.
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir), !isDir.boolValue,
            let handle = FileHandle(forReadingAtPath: input)
        else { return nil }
        let head = [UInt8](handle.readData(ofLength: 8))
        handle.closeFile()
        guard HDF5File.hasSignature(head) else { return nil }
        let src = try SourceModel.open(input, configPath: options.configPath)
        guard case .legacy(let root) = src.layout,
            TheanoKernels.isTheano(src.backend) || ModelConfig.kerasMajor(src.kerasVersion) == 1
        else { return nil }
        var groups: [String: [NamedTensor]] = [:]
        var order: [String] = []
        for e in src.config.layers where e.className != "InputLayer" {
            let g = join(root, e.name)
            guard src.weights.isGroup(g), let names = try src.weights.stringListAttribute(g, "weight_names") else {
                continue
            }
            order.append(e.name)
            var ts: [NamedTensor] = []
            for n in names {
                let path = join(g, n)
                guard src.weights.isDataset(path) else {
                    throw KedgeError(
                        .missingWeight,
                        "\(input): layer '\(e.name)' (\(e.className)) lists weight '\(n)' but the file has no dataset '\(path)'"
                    )
                }
                let t = try src.weights.readFloats(path, context: "layer '\(e.name)' weight '\(n)'")
                ts.append(NamedTensor(name: n, shape: t.shape, data: t.data))
            }
            groups[e.name] = ts
        }
        let model = LegacyModel(
            source: input, format: src.format, modelJSON: src.modelJSON, config: src.config,
            kerasVersion: src.kerasVersion, backend: src.backend, groups: groups, groupOrder: order)
        return try LegacyBundle.make(model, options: options)
    }
}

/// Writes a `LegacyModel` as a bundle, as `Converter.makeBundle` does for Keras files.
enum LegacyBundle {
    static func make(_ m: LegacyModel, options: ConvertOptions) throws -> ConvertedBundle {
        var plan = try LegacyPlanner.plan(m)
        TheanoKernels.apply(&plan, backend: m.backend)
        var buffer = BufferBuilder()
        for p in plan {
            let what = "\(m.source): layer '\(p.layerPath)' weight '\(p.weightName)'"
            let encoded = try TensorEncoder.encode(p.tensor.data, as: options.quantize, what: what)
            buffer.append(layer: p.layerPath, weight: p.weightName, shape: p.tensor.shape, encoded)
        }
        var inputs: [PortInfo] = []
        for (i, n) in m.config.inputNames.enumerated() {
            inputs.append(PortInfo(name: n, shape: i < m.config.inputShapes.count ? m.config.inputShapes[i] : nil))
        }
        var outputs = m.config.outputNames.map { PortInfo(name: $0, shape: nil) }
        var header = MetadataWriter.Header(
            producer: options.producer, source: (m.source as NSString).lastPathComponent, sourceFormat: m.format,
            kerasVersion: m.kerasVersion, backend: m.backend, inputs: inputs, outputs: outputs)
        var metadata = MetadataWriter.write(header, entries: buffer.entries)
        if options.validate {
            do throws(KedgeError) {
                let model = try Model(
                    modelJSON: m.modelJSON, weights: buffer.bytes, metadata: metadata,
                    options: Model.Options(fuse: false))
                inputs = model.inputs.map { PortInfo(name: $0.name, shape: $0.shape) }
                outputs = model.outputs.map { PortInfo(name: $0.name, shape: $0.shape) }
            } catch {
                throw KedgeError(error.kind, "\(m.source): \(error.message)")
            }
            header.inputs = inputs
            header.outputs = outputs
            metadata = MetadataWriter.write(header, entries: buffer.entries)
        }
        return ConvertedBundle(
            modelJSON: m.modelJSON, weights: buffer.bytes, metadata: metadata, source: m.source, sourceFormat: m.format,
            kerasVersion: m.kerasVersion, backend: m.backend, inputs: inputs, outputs: outputs, entries: buffer.entries,
            validated: options.validate)
    }

    /// The Keras `{"class_name", "config"}` object inside a wrapper (`modelTopology`, `model_config`, a JSON string).
    static func kerasConfig(_ json: JSON, what: String) throws -> JSON {
        var root = json
        do throws(KedgeError) {
            if let t = root["modelTopology"] { root = t }
            if let mc = root["model_config"] { root = mc }
            if let s = root.string { root = try JSONParser.parse(s, what: what) }
        } catch {
            throw KedgeError(error.kind, "\(what): \(error.message)")
        }
        guard root["class_name"]?.string != nil, root["config"] != nil else {
            throw KedgeError(.invalidConfig, "\(what) holds no Keras model config (no 'class_name' and 'config')")
        }
        return root
    }

    static func parseConfig(_ root: JSON, kerasVersion: String?, what: String) throws -> ModelConfig {
        do throws(KedgeError) {
            return try ModelConfig.parse(root, kerasVersion: kerasVersion)
        } catch {
            throw KedgeError(error.kind, "\(what): \(error.message)")
        }
    }

    /// Little-endian float32 values.
    static func floats(_ bytes: ArraySlice<UInt8>) -> [Float] {
        let n = bytes.count / 4
        var out = [Float](repeating: 0, count: n)
        var p = bytes.startIndex
        for i in 0..<n {
            out[i] = Float(
                bitPattern: UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16
                    | UInt32(bytes[p + 3]) << 24)
            p += 4
        }
        return out
    }

    /// A Keras generation for files that do not say: Keras 1 configs use keys and classes Keras 2 renamed.
    static func guessKerasVersion(_ root: JSON) -> String {
        let keras1Keys = ["output_dim", "nb_filter", "border_mode", "dim_ordering", "subsample", "pool_length"]
        var keras1 = false
        func visit(_ j: JSON) {
            guard !keras1 else { return }
            switch j {
            case .object(let o):
                if let c = o["class_name"]?.string,
                    ["Merge", "Convolution2D", "Convolution1D", "MaxoutDense"].contains(c)
                {
                    keras1 = true
                }
                if let cfg = o["config"]?.object, o["class_name"]?.string != nil,
                    keras1Keys.contains(where: { cfg[$0] != nil }) && cfg["units"] == nil && cfg["filters"] == nil
                {
                    keras1 = true
                }
                for v in o.values { visit(v) }
            case .array(let a):
                for v in a { visit(v) }
            default:
                break
            }
        }
        visit(root)
        return keras1 ? "1" : "2"
    }
}
