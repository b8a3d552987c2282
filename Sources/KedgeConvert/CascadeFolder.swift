import Foundation
import KedgeCore

/// Loads a cascade folder (cascade.json and the models it names): each model from a bundle folder named after it
/// when there is one, else converted in memory from the file cascade.json names (Keras .h5, xgboost .json/.ubj).
public enum CascadeFolder {
    public static func load(_ directory: String) throws -> Cascade {
        let dir = URL(fileURLWithPath: directory)
        let cfgPath = dir.appendingPathComponent("cascade.json").path
        guard let cfgBytes = FileManager.default.contents(atPath: cfgPath) else {
            throw KedgeError(.invalidFile, "\(directory) has no cascade.json")
        }
        do {
            let config = try CascadeConfig.parse([UInt8](cfgBytes))
            var models: [String: Model] = [:]
            for (name, file) in try CascadeConfig.modelFiles([UInt8](cfgBytes)) {
                let bundleDir = dir.appendingPathComponent(name)
                let source: ConvertedBundle
                if FileManager.default.fileExists(atPath: bundleDir.appendingPathComponent("model.json").path) {
                    func read(_ f: String) throws -> [UInt8] {
                        let p = bundleDir.appendingPathComponent(f).path
                        guard let d = FileManager.default.contents(atPath: p) else {
                            throw KedgeError(.invalidBundle, "\(p) is missing")
                        }
                        return [UInt8](d)
                    }
                    models[name] = try Model(
                        modelJSON: read("model.json"), weights: read("model_weights.buf"),
                        metadata: read("model_metadata.json"))
                    continue
                }
                source = try Converter.makeBundle(
                    input: dir.appendingPathComponent(file).path, options: ConvertOptions(validate: false))
                models[name] = try Model(modelJSON: source.modelJSON, weights: source.weights, metadata: source.metadata)
            }
            return try Cascade(config: config, models: models)
        } catch let e as KedgeError {
            throw KedgeError(e.kind, "\(directory): \(e.message)")
        }
    }
}
