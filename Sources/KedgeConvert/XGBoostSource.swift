import Foundation
import KedgeCore

/// xgboost models (`.json` / `.ubj` from `save_model`) become ordinary bundles through the core's
/// `XGBoostImport`. Their tensors are always stored as float32: split thresholds and leaf values must stay
/// bit-exact for the margin to match xgboost's, so `--quantize` does not apply to them.
enum XGBoostSource {
    /// The bundle, or nil when `input` is not an xgboost model (then the Keras readers take it).
    static func bundle(input: String, options: ConvertOptions) throws -> ConvertedBundle? {
        let ext = (input as NSString).pathExtension.lowercased()
        guard ext == "json" || ext == "ubj" else { return nil }
        guard let data = FileManager.default.contents(atPath: input) else {
            throw KedgeError(.invalidFile, "\(input): cannot read the file")
        }
        let bytes = [UInt8](data)
        guard XGBoostImport.looksLikeXGBoost(bytes) else {
            if ext == "ubj" { throw KedgeError(.invalidFile, "\(input): not an xgboost UBJSON model (no 'learner')") }
            return nil
        }
        let imported: XGBoostImport.Result
        do {
            imported = try XGBoostImport.convert(bytes)
        } catch {
            throw KedgeError(error.kind, "\(input): \(error.message)")
        }
        var buffer = BufferBuilder()
        for (layer, weight, t) in imported.tensors {
            let encoded = try TensorEncoder.encode(t.data, as: .float32, what: "\(input): layer '\(layer)' weight '\(weight)'")
            buffer.append(layer: layer, weight: weight, shape: t.shape, encoded)
        }
        let modelJSON = Array(imported.modelJSON.utf8)
        let header0 = MetadataWriter.Header(
            producer: options.producer, source: (input as NSString).lastPathComponent, sourceFormat: .xgboost,
            kerasVersion: nil, backend: nil, inputs: [], outputs: [])
        var metadata = MetadataWriter.write(header0, entries: buffer.entries)
        // Always validated: the shapes in the metadata come from the loaded model.
        let model: Model
        do {
            model = try Model(modelJSON: modelJSON, weights: buffer.bytes, metadata: metadata)
        } catch {
            throw KedgeError(error.kind, "\(input): \(error.message)")
        }
        var header = header0
        header.inputs = model.inputs.map { PortInfo(name: $0.name, shape: $0.shape) }
        header.outputs = model.outputs.map { PortInfo(name: $0.name, shape: $0.shape) }
        metadata = MetadataWriter.write(header, entries: buffer.entries)
        return ConvertedBundle(
            modelJSON: modelJSON, weights: buffer.bytes, metadata: metadata, source: input, sourceFormat: .xgboost,
            kerasVersion: nil, backend: nil, inputs: header.inputs, outputs: header.outputs, entries: buffer.entries,
            validated: true)
    }
}
