import ArgumentParser
import Foundation
import KedgeCore

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a bundle on .npy inputs and write each output as OUT/<output name>.npy (float32, C order).")

    @Argument(help: "The bundle folder (model.json, model_weights.buf, model_metadata.json).")
    var bundle: String

    @Option(name: .customLong("input"), help: "NAME=FILE.npy, once per model input; NAME is the InputLayer's name.")
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Folder for the outputs (created if needed).")
    var outputDir: String

    @Flag(name: .customLong("all-layers"), help: "Also write every layer's output (no fusion, so each Keras layer is seen).")
    var allLayers = false

    func run() throws {
        let model = try BundleDirectory.load(bundle, fuse: !allLayers)
        var named: [(String, Tensor)] = []
        for spec in inputs {
            guard let eq = spec.firstIndex(of: "=") else {
                throw ValidationError("--input '\(spec)' must be NAME=FILE.npy; the model expects \(model.expectedInputs)")
            }
            let name = String(spec[..<eq])
            let file = String(spec[spec.index(after: eq)...])
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file) (input '\(name)')")
            }
            do {
                named.append((name, try NPY.parse([UInt8](data))))
            } catch {
                throw ValidationError("\(file): \(describe(error))")
            }
        }
        try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        var layerOutputs: [(String, Tensor)] = []
        let outs: [Tensor]
        do {
            let x = try model.order(named)
            if allLayers {
                outs = try model.predict(x) { name, t in layerOutputs.append((name, t)) }
            } else {
                outs = try model.predict(x)
            }
        } catch {
            throw ValidationError(describe(error))
        }
        func write(_ name: String, _ t: Tensor) throws {
            let url = URL(fileURLWithPath: outputDir).appendingPathComponent(safeFileName(name) + ".npy")
            try Data(NPY.serialize(t)).write(to: url, options: .atomic)
        }
        if allLayers {
            let layersDir = (outputDir as NSString).appendingPathComponent("layers")
            try FileManager.default.createDirectory(atPath: layersDir, withIntermediateDirectories: true)
            for (n, t) in layerOutputs {
                let url = URL(fileURLWithPath: layersDir).appendingPathComponent(safeFileName(n) + ".npy")
                try Data(NPY.serialize(t)).write(to: url, options: .atomic)
            }
        }
        for (i, info) in model.outputs.enumerated() {
            try write(info.name, outs[i])
            print("\(info.name) \(describeShape(outs[i].shape)) -> \(safeFileName(info.name)).npy")
        }
    }
}

/// Layer names are user text; keep file names inside the output folder.
func safeFileName(_ name: String) -> String {
    String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "@" || $0 == "." ? $0 : "_" })
        .replacingOccurrences(of: "..", with: "__")
}
