import ArgumentParser
import Foundation
import KedgeConvert

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Keras model file (.h5, .keras, weights-only .h5 with --config) into a Kedge bundle.")

    @Argument(help: "The model file.")
    var input: String

    @Option(name: .shortAndLong, help: "The bundle folder to write (replaced atomically).")
    var output: String

    @Option(help: "Architecture JSON for a weights-only .h5 file (model.to_json()).")
    var config: String?

    @Option(help: "Store weights as float16 or uint8 (per-tensor affine) instead of float32.")
    var quantize: String?

    func run() throws {
        // Filled in when the converter API lands.
        throw ValidationError("convert is not wired yet")
    }
}
