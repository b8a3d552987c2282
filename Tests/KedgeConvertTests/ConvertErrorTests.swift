import Foundation
import KedgeCore
import Testing

@testable import KedgeConvert

struct BadInput: CustomTestStringConvertible, Sendable {
    var file: String
    var config: String? = nil
    /// Each must appear in the message (the file, the layer, the weight, the reason).
    var mentions: [String]
    var testDescription: String { file }
}

let badInputs: [BadInput] = [
    BadInput(file: "bad/not_hdf5.h5", mentions: ["not_hdf5.h5", "neither an HDF5 file"]),
    BadInput(file: "bad/truncated.h5", mentions: ["truncated.h5", "truncated"]),
    BadInput(file: "bad/truncated.keras", mentions: ["truncated.keras", "zip"]),
    BadInput(file: "bad/missing_weight.h5", mentions: ["missing_weight.h5", "'hidden_a'", "'bias'", "hidden_a/bias"]),
    BadInput(file: "bad/missing_layer.h5", mentions: ["missing_layer.h5", "'logits'", "kernel, bias"]),
    BadInput(file: "bad/count_mismatch.h5", mentions: ["count_mismatch.h5", "'hidden_a'", "kernel, bias", "1 weight"]),
    BadInput(file: "bad/bad_shape.h5", mentions: ["bad_shape.h5", "'hidden_a'", "kernel", "(6, 4)"]),
    BadInput(file: "bad/unknown_layer.h5", mentions: ["unknown_layer.h5", "'scale'", "Scale", "not support"]),
    BadInput(file: "bad/unknown_layer.keras", mentions: ["unknown_layer.keras", "'scale'", "Scale", "not support"]),
    BadInput(file: "bad/weights_only.weights.h5", mentions: ["weights_only.weights.h5", "weights only", "--config"]),
    BadInput(file: "bad/does_not_exist.h5", mentions: ["does_not_exist.h5", "no such file"]),
    BadInput(file: "bad", mentions: ["is a folder"]),
    // A config that does not describe the weights: k3_dense's architecture over k2_dense's weights.
    BadInput(
        file: "k2_dense/weights.h5", config: "k3_dense/model.json",
        mentions: ["weights.h5", "'hidden_a'", "kernel, bias", "the file has layers fc1, fc2, out"]),
    BadInput(file: "k2_dense/weights.h5", config: "npy/values.json", mentions: ["architecture JSON", "class_name"]),
]

@Suite struct ConvertErrorTests {
    @Test(arguments: badInputs)
    func rejectsWithAMessageAndWritesNothing(_ bad: BadInput) throws {
        let dir = try Fixtures.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("bundle").path
        let options = ConvertOptions(configPath: bad.config.map(Fixtures.path))
        let error = #expect(throws: KedgeError.self) {
            try Converter.convert(input: Fixtures.path(bad.file), outputDirectory: out, options: options)
        }
        let message = error?.message ?? ""
        for m in bad.mentions { #expect(message.contains(m), "'\(m)' is not in: \(message)") }
        // Nothing written, not even a staging folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [])
    }

    @Test func inspectReportsProblemsPerLayer() throws {
        let r = try Converter.inspect(input: Fixtures.path("bad/unknown_layer.h5"))
        #expect(r.layers.map(\.path) == ["fc", "scale"])
        #expect(r.layers[0].problem == nil && r.layers[0].supported)
        #expect(r.layers[0].weights.map(\.name) == ["kernel", "bias"])
        #expect(r.layers[1].supported == false)
        #expect(r.layers[1].problem?.contains("Scale") == true)
        #expect(r.layers[1].weights.map(\.shape) == [[3]])
        #expect(r.problems.count == 1)
    }
}
