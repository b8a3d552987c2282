import ArgumentParser
import Foundation
import KedgeConvert
import KedgeCore

struct CascadeRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cascade",
        abstract: "Run a model cascade (cascade.json and its models) on a CT volume (.npy, z/y/x in HU).")

    @Argument(help: "Folder with cascade.json and the model files it names (Keras .h5, xgboost .json) or bundles.")
    var directory: String

    @Option(help: "The volume: a (z, y, x) .npy of Hounsfield units, int16 or float32.")
    var volume: String

    @Flag(help: "Print every stage's output as JSON (the format of tools/cascade/reference.py --json).")
    var json = false

    func run() throws {
        let cascade = try CascadeLoader.load(directory)
        guard let bytes = FileManager.default.contents(atPath: volume) else { throw ValidationError("cannot read \(volume)") }
        var timings: [(String, Double)] = []
        var current: (String, UInt64)? = nil
        func mark(_ next: String?) {
            let now = DispatchTime.now().uptimeNanoseconds
            if let (name, t0) = current { timings.append((name, Double(now - t0) / 1e6)) }
            current = next.map { ($0, now) }
        }
        let result: Cascade.Result
        do {
            let t = try NPY.parse([UInt8](bytes))
            result = try cascade.run(volume: t) { mark($0) }
            mark(nil)
        } catch {
            throw ValidationError("\(volume): \(describe(error))")
        }
        if json {
            print(result.report(timings: timings).serialized(pretty: true))
        } else {
            print(String(format: "sex P(male) %.4f, %d candidates, %d nodules, cancer probability %.6f",
                         result.sexMaleProb, result.candidates.count, result.nodules.count, result.probability))
            for n in result.nodules {
                if let b = n.box {
                    print(String(format: "  nodule at z %d y %.1f x %.1f, %.1f mm, FP logit %.3f, malignancy %.4f",
                                 b.z, b.cy, b.cx, b.diameterMM, n.fpLogit, n.malignancy))
                }
            }
            print(timings.map { String(format: "%@ %.1f ms", $0.0, $0.1) }.joined(separator: ", "))
        }
    }
}

/// Loads a cascade folder: each model from a bundle folder named after it if present, else converted in memory
/// from the file cascade.json names.
enum CascadeLoader {
    static func load(_ directory: String) throws -> Cascade {
        let dir = URL(fileURLWithPath: directory)
        guard let cfgBytes = FileManager.default.contents(atPath: dir.appendingPathComponent("cascade.json").path) else {
            throw ValidationError("\(directory) has no cascade.json")
        }
        do {
            let config = try CascadeConfig.parse([UInt8](cfgBytes))
            var models: [String: Model] = [:]
            for (name, file) in try CascadeConfig.modelFiles([UInt8](cfgBytes)) {
                let bundleDir = dir.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: bundleDir.appendingPathComponent("model.json").path) {
                    models[name] = try BundleDirectory.load(bundleDir.path)
                    continue
                }
                let path = dir.appendingPathComponent(file).path
                if file.hasSuffix(".json") || file.hasSuffix(".ubj") {
                    guard let bytes = FileManager.default.contents(atPath: path) else {
                        throw ValidationError("cannot read \(path)")
                    }
                    let x = try XGBoostImport.convert([UInt8](bytes))
                    var w = WeightStore()
                    for (l, n, t) in x.tensors { w.set(layer: l, weight: n, t) }
                    models[name] = try Model(config: try ModelConfig.parse(try JSONParser.parse(x.modelJSON), kerasVersion: nil), weights: w)
                    continue
                }
                let b = try Converter.makeBundle(input: path, options: ConvertOptions(validate: false))
                models[name] = try Model(modelJSON: b.modelJSON, weights: b.weights, metadata: b.metadata)
            }
            return try Cascade(config: config, models: models)
        } catch let e as ValidationError {
            throw e
        } catch {
            throw ValidationError("\(directory): \(describe(error))")
        }
    }
}
