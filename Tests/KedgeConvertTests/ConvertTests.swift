import Foundation
import KedgeCore
import Testing

@testable import KedgeConvert

struct Source: CustomTestStringConvertible, Sendable {
    var folder: String
    var file: String
    var config: String? = nil
    var format: SourceFormat
    var testDescription: String { folder + "/" + file + (config.map { " + " + $0 } ?? "") }
}

/// Every file format over models of Dense/Reshape/Flatten layers (which the core has).
let denseSources: [Source] = [
    Source(folder: "k3_dense", file: "model.h5", format: .kerasH5),
    Source(folder: "k3_dense", file: "model.keras", format: .keras),
    Source(folder: "k3_dense", file: "model_noname.keras", format: .keras),
    Source(folder: "k3_dense", file: "model.weights.h5", config: "model.json", format: .weightsV3),
    Source(folder: "k3_nested", file: "model.h5", format: .kerasH5),
    Source(folder: "k3_nested", file: "model.keras", format: .keras),
    Source(folder: "k3_nested", file: "model_noname.keras", format: .keras),
    Source(folder: "k2_dense", file: "model.h5", format: .kerasH5),
    Source(folder: "k2_dense", file: "weights.h5", config: "model.json", format: .weightsH5),
    Source(folder: "k2_dense", file: "split_fixed.h5", format: .kerasH5),
    Source(folder: "k2_dense", file: "vlen_bytes.h5", format: .kerasH5),
    Source(folder: "k2_nested", file: "model.h5", format: .kerasH5),
]

/// BatchNormalization: four weights, trainable ones first; inside a tf-keras nested model the file lists all
/// trainable weights of the nested model before all non-trainable ones, so only names can order them.
let batchNormSources: [Source] = [
    Source(folder: "k3_bn", file: "model.h5", format: .kerasH5),
    Source(folder: "k3_bn", file: "model.keras", format: .keras),
    Source(folder: "k2_nested_bn", file: "model.h5", format: .kerasH5),
    Source(folder: "k2_nested_bn", file: "weights.h5", config: "model.json", format: .weightsH5),
]

/// Weights below the layer: RNN cells, Bidirectional, TimeDistributed, MultiHeadAttention sublayers, stacked
/// cells. A .keras file visits sublayers alphabetically (backward before forward, key before query).
let recurrentSources: [Source] = [
    Source(folder: "k3_rnn", file: "model.h5", format: .kerasH5),
    Source(folder: "k3_rnn", file: "model.keras", format: .keras),
    Source(folder: "k2_rnn", file: "model.h5", format: .kerasH5),
    Source(folder: "k2_rnn", file: "model.keras", format: .keras),
]

let recurrentClasses = ["Bidirectional", "MultiHeadAttention", "TimeDistributed", "LSTM", "GRU", "SimpleRNN", "RNN"]

@Suite struct ConvertTests {
    @Test(arguments: denseSources)
    func convertsDenseModels(_ s: Source) throws { try check(s) }

    @Test(.enabled(if: LayerCatalog.isSupported("BatchNormalization")), arguments: batchNormSources)
    func convertsBatchNormModels(_ s: Source) throws { try check(s) }

    @Test(.enabled(if: recurrentClasses.allSatisfy(LayerCatalog.isSupported)), arguments: recurrentSources)
    func convertsRecurrentAndWrapperModels(_ s: Source) throws { try check(s, tolerance: 1e-4) }

    /// Names and order: ignoring the file's (alphabetical or trainable-first) order, the bundle follows the config.
    @Test(.enabled(if: LayerCatalog.isSupported("BatchNormalization")), arguments: batchNormSources)
    func plansBatchNormWeightsByName(_ s: Source) throws {
        let expected = try Fixtures.expected(s.folder)
        let src = try SourceModel.open(
            Fixtures.path(s.folder + "/" + s.file), configPath: s.config.map { Fixtures.path(s.folder + "/" + $0) })
        let plan = try src.planner.plan(src.config)
        #expect(plan.map { "\($0.layerPath)/\($0.weightName)" } == expected.weights.map { "\($0.layer)/\($0.weight)" })
        for (p, w) in zip(plan, expected.weights) {
            let t = try src.weights.readFloats(p.datasetPath, context: "test")
            #expect(t.data == (try Fixtures.npy(w.file)).data, "\(p.layerPath)/\(p.weightName) from \(p.storedName)")
        }
    }

    func check(_ s: Source, tolerance: Float = 1e-5) throws {
        let expected = try Fixtures.expected(s.folder)
        let input = Fixtures.path(s.folder + "/" + s.file)
        var options = ConvertOptions(configPath: s.config.map { Fixtures.path(s.folder + "/" + $0) }, validate: false)
        // First without the core's validation, so that a core failure does not hide what the converter did.
        let b = try Converter.makeBundle(input: input, options: options)

        #expect(b.sourceFormat == s.format)
        #expect(!b.validated)
        if s.format != .weightsV3 { #expect(b.kerasVersion == expected.kerasVersion) }
        #expect(b.inputs.map(\.name) == expected.inputs)

        // Entries: exactly the Keras weights, in layer order, aligned, tightly described.
        #expect(
            b.entries.map { "\($0.layerName)/\($0.weightName)" } == expected.weights.map { "\($0.layer)/\($0.weight)" })
        var end = 0
        for (e, w) in zip(b.entries, expected.weights) {
            #expect(e.offset % 16 == 0, "\(e.layerName)/\(e.weightName) at \(e.offset)")
            #expect(e.offset >= end && e.offset - end < 16)
            #expect(e.dtype == .float32 && e.quantization == nil)
            #expect(e.shape == w.shape)
            #expect(e.length == 4 * w.shape.reduce(1, *))
            end = e.offset + e.length
            let want = try Fixtures.npy(w.file)
            #expect(decode(e, in: b.weights) == want.data, "\(e.layerName)/\(e.weightName)")
        }
        #expect(b.weights.count == end)
        for i in 0..<b.weights.count where !b.entries.contains(where: { i >= $0.offset && i < $0.offset + $0.length }) {
            #expect(b.weights[i] == 0, "gap byte \(i) is not zero")
        }

        // model.json is the config as found; for a weights-only file, the given file byte for byte.
        if let c = s.config { #expect(b.modelJSON == (try Fixtures.bytes(s.folder + "/" + c))) }
        let mj = try JSONSerialization.jsonObject(with: Data(b.modelJSON)) as! [String: Any]
        #expect(mj["class_name"] != nil && mj["config"] != nil)

        try checkMetadata(b, source: s, expected: expected, validated: false)

        // Validated: the core loads it, and the metadata gains the output shapes; the bundle reproduces Keras.
        options.validate = true
        let v = try Converter.makeBundle(input: input, options: options)
        #expect(v.validated && v.weights == b.weights && v.entries == b.entries)
        try checkMetadata(v, source: s, expected: expected, validated: true)
        let model = try Model(modelJSON: v.modelJSON, weights: v.weights, metadata: v.metadata)
        let x = try Fixtures.npy(s.folder + "/in.npy")
        let y = try model.predict([x])
        let want = try Fixtures.npy(s.folder + "/out.npy")
        #expect(y[0].shape == want.shape)
        #expect(maxAbsDiff(y[0].data, want.data) < tolerance)
    }

    func checkMetadata(_ b: ConvertedBundle, source s: Source, expected: Fixtures.Case, validated: Bool) throws {
        let m = try JSONSerialization.jsonObject(with: Data(b.metadata)) as! [String: Any]
        #expect(m["format"] as? String == "kedge-bundle")
        #expect(m["format_version"] as? Int == 1)
        #expect((m["producer"] as? String)?.hasPrefix("kedge ") == true)
        #expect(m["source"] as? String == s.file)
        #expect(m["source_format"] as? String == s.format.rawValue)
        if s.format != .weightsV3 { #expect(m["keras_version"] as? String == expected.kerasVersion) }
        let ins = m["inputs"] as! [[String: Any]]
        #expect(ins.map { $0["name"] as! String } == expected.inputs)
        #expect((ins[0]["shape"] as! [Any]).first is NSNull)
        let outs = m["outputs"] as! [[String: Any]]
        #expect(outs.count == 1)
        if validated {
            #expect((outs[0]["shape"] as? [Any])?.count ?? 0 >= 2)
        } else {
            #expect(outs[0]["shape"] is NSNull)
        }
        let ws = m["weights"] as! [[String: Any]]
        #expect(ws.count == b.entries.count)
        for (w, e) in zip(ws, b.entries) {
            #expect(w["layer_name"] as? String == e.layerName)
            #expect(w["weight_name"] as? String == e.weightName)
            #expect(w["dtype"] as? String == "float32")
            #expect(w["shape"] as? [Int] == e.shape)
            #expect(w["offset"] as? Int == e.offset)
            #expect(w["length"] as? Int == e.length)
            #expect(w["quantization"] is NSNull)
        }
        // The core's own reader agrees.
        let core = try BundleMetadata.parse(b.metadata)
        #expect(core.entries.map(\.offset) == b.entries.map(\.offset))
        #expect(core.inputNames == expected.inputs)
    }

    @Test func writesTheBundleFolder() throws {
        let dir = try Fixtures.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("nested/deeper/bundle").path
        let b = try Converter.convert(input: Fixtures.path("k3_dense/model.keras"), outputDirectory: out)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == BundleFolder.fileNames.sorted())
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/model.json"))) == b.modelJSON)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/model_weights.buf"))) == b.weights)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/model_metadata.json"))) == b.metadata)
        // Nothing but the bundle next to it (no staging folders left).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/nested/deeper") == ["bundle"])
    }

    @Test func replacesAPreviousBundleAtomically() throws {
        let dir = try Fixtures.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("b").path
        try Converter.convert(input: Fixtures.path("k3_dense/model.h5"), outputDirectory: out)
        let first = try Data(contentsOf: URL(fileURLWithPath: out + "/model_metadata.json"))
        try Converter.convert(
            input: Fixtures.path("k3_dense/model.h5"), outputDirectory: out, options: ConvertOptions(quantize: .uint8))
        let second = try Data(contentsOf: URL(fileURLWithPath: out + "/model_metadata.json"))
        #expect(first != second)
        #expect(String(decoding: second, as: UTF8.self).contains("\"uint8\""))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["b"])

        // A failed conversion leaves the previous bundle as it was.
        #expect(throws: KedgeError.self) {
            try Converter.convert(input: Fixtures.path("bad/missing_weight.h5"), outputDirectory: out)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/model_metadata.json")) == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["b"])
    }

    @Test func refusesToReplaceAFolderThatIsNotABundle() throws {
        let dir = try Fixtures.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("keep me".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        let e = #expect(throws: KedgeError.self) {
            try Converter.convert(input: Fixtures.path("k3_dense/model.h5"), outputDirectory: dir.path)
        }
        #expect(e?.message.contains("notes.txt") == true)
        #expect(try String(contentsOf: dir.appendingPathComponent("notes.txt"), encoding: .utf8) == "keep me")

        let file = dir.appendingPathComponent("notes.txt").path
        #expect(throws: KedgeError.self) {
            try Converter.convert(input: Fixtures.path("k3_dense/model.h5"), outputDirectory: file)
        }
    }

    @Test func convertsWithoutValidation() throws {
        let b = try Converter.makeBundle(
            input: Fixtures.path("k3_dense/model.h5"), options: ConvertOptions(validate: false))
        #expect(!b.validated)
        #expect(b.outputs.first?.shape == nil)
        #expect(
            String(decoding: b.metadata, as: UTF8.self).contains(
                "\"outputs\": [{\"name\": \"logits\", \"shape\": null}]"))
    }

    @Test func configOverridesTheStoredOne() throws {
        // The .keras file's weights with the architecture given explicitly: same bundle as without.
        let a = try Converter.makeBundle(input: Fixtures.path("k3_dense/model.keras"))
        let b = try Converter.makeBundle(
            input: Fixtures.path("k3_dense/model.keras"),
            options: ConvertOptions(configPath: Fixtures.path("k3_dense/model.json")))
        #expect(a.entries == b.entries && a.weights == b.weights)
        #expect(b.modelJSON == (try Fixtures.bytes("k3_dense/model.json")))
    }

    @Test func convertsConcurrently() async throws {
        // libhdf5 is not thread-safe; the converter serialises its calls.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for s in denseSources + denseSources {
                group.addTask {
                    let options = ConvertOptions(
                        configPath: s.config.map { Fixtures.path(s.folder + "/" + $0) }, validate: false)
                    return try Converter.makeBundle(input: Fixtures.path(s.folder + "/" + s.file), options: options)
                        .entries.count
                }
            }
            for try await n in group { #expect(n > 0) }
        }
    }
}
