import ArgumentParser
import Foundation
import KedgeConvert
import KedgeCore

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Keras model file (.h5, .keras, weights-only .h5 with --config) into a Kedge bundle.")

    @Argument(help: "The model file.")
    var input: String

    @Option(name: .shortAndLong, help: "The bundle folder to write (replaced atomically).")
    var output: String

    @Option(help: "Architecture JSON for a weights-only .h5 file (model.to_json()).")
    var config: String?

    @Option(help: "Store weights as float16 or uint8 (per-tensor affine, zero exact) instead of float32.")
    var quantize: WeightStorage = .float32

    func run() throws {
        isolateHDF5Reading()
        let bundle: ConvertedBundle
        do {
            bundle = try Converter.convert(
                input: input, outputDirectory: output, options: ConvertOptions(quantize: quantize, configPath: config))
        } catch {
            throw RuntimeFailure(describe(error))
        }
        let ins = bundle.inputs.map { "\($0.name) \(describeShape($0.shape ?? []))" }.joined(separator: ", ")
        let outs = bundle.outputs.map { "\($0.name) \(describeShape($0.shape ?? []))" }.joined(separator: ", ")
        print("\(output): \(bundle.entries.count) tensors, \(bundle.weights.count) weight bytes (\(quantize.rawValue))")
        print("  inputs:  \(ins)")
        print("  outputs: \(outs)")
    }
}

extension WeightStorage: ExpressibleByArgument {}
