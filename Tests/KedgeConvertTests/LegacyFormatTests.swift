import Foundation
import KedgeCore
import Testing

@testable import KedgeConvert

/// Tests/Fixtures/legacy, made by tools/fixtures/legacy_formats.py: Keras 1 models (numpy references of Keras 1.2.2's
/// formulas), and tf-keras models in Keras.js (.bin, v0) and TF.js layers-model form with Keras's predictions.
enum LegacyFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/legacy")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func npy(_ relative: String) throws -> Tensor {
        try NPY.parse([UInt8](try Data(contentsOf: root.appendingPathComponent(relative))))
    }

    struct Variant: CustomTestStringConvertible, Sendable {
        var folder: String
        var file: String
        var format: String
        var kerasVersion: String
        var inputs: [String]
        var outputs: [String]
        var quantized: Bool
        /// Layer classes beyond `needed` that the case uses (pooling, padding), for cases waiting on a family.
        var requires: [String]
        var testDescription: String { folder + "/" + file }
        var runnable: Bool { requires.allSatisfy(LayerCatalog.isSupported) }
    }

    static func variants() -> [Variant] {
        guard let folders = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return [] }
        var out: [Variant] = []
        for folder in folders.sorted() {
            guard let data = try? Data(contentsOf: root.appendingPathComponent(folder + "/case.json")),
                let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { continue }
            let inputs = obj["inputs"] as! [String]
            let requires = obj["requires"] as? [String] ?? []
            for v in obj["variants"] as! [[String: Any]] {
                out.append(
                    Variant(
                        folder: folder, file: v["file"] as! String, format: v["format"] as! String,
                        kerasVersion: v["keras_version"] as! String, inputs: inputs, outputs: v["outputs"] as! [String],
                        quantized: v["quantized"] as? Bool ?? false, requires: requires))
            }
        }
        return out
    }

    /// Classes of Keras 2 that the Keras 1 convolutions run on, and the layers of the tf-keras models.
    static let needed = [
        "Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "SeparableConv2D", "Flatten", "BatchNormalization", "LSTM",
        "GRU", "Embedding", "Concatenate", "Dot",
    ]
}

@Suite struct LegacyFormatTests {
    static let all = LegacyFixtures.variants()
    /// Cases whose layers this build has (the Keras 1 pooling cases wait for the pooling family).
    static let variants = all.filter(\.runnable)

    @Test func fixturesArePresent() {
        #expect(LegacyFormatTests.all.count >= 50)
        let formats = Set(LegacyFormatTests.all.map(\.format))
        #expect(formats == ["keras-h5", "kerasjs-bin", "kerasjs-v0", "tfjs-layers-model"])
    }

    /// Each file converts, loads in the core and reproduces the expected outputs: Keras's predictions, or for
    /// Keras 1 the numpy formulas; for quantized files, Keras's predictions with the dequantized weights.
    @Test(.enabled(if: LegacyFixtures.needed.allSatisfy(LayerCatalog.isSupported)), arguments: variants)
    func convertsAndReproducesKeras(_ v: LegacyFixtures.Variant) throws {
        let input = LegacyFixtures.path(v.folder + "/" + v.file)
        let b = try Converter.makeBundle(input: input)
        #expect(b.sourceFormat.rawValue == v.format)
        #expect(b.kerasVersion == v.kerasVersion)
        #expect(b.validated)
        for e in b.entries { #expect(e.offset % 16 == 0 && e.dtype == .float32) }
        let model = try Model(modelJSON: b.modelJSON, weights: b.weights, metadata: b.metadata)
        let xs = try v.inputs.map { try LegacyFixtures.npy(v.folder + "/" + $0) }
        let ys = try model.predict(xs)
        #expect(ys.count == v.outputs.count)
        for (y, name) in zip(ys, v.outputs) {
            let want = try LegacyFixtures.npy(v.folder + "/" + name)
            #expect(y.shape == want.shape, "\(name)")
            guard y.shape == want.shape else { continue }
            var worst: Float = 0
            for i in 0..<y.count {
                let excess = abs(y.data[i] - want.data[i]) - (1e-4 + 1e-4 * abs(want.data[i]))
                worst = max(worst, excess)
            }
            #expect(worst <= 0, "\(v.folder)/\(v.file) \(name): |a-b| exceeds 1e-4 + 1e-4|b| by \(worst)")
        }
    }

    /// The same model reaches the same bundle from every format that holds float32 weights.
    @Test(.enabled(if: LegacyFixtures.needed.allSatisfy(LayerCatalog.isSupported)))
    func float32FormatsAgreeTensorForTensor() throws {
        for folder in Set(LegacyFormatTests.variants.map(\.folder)).sorted() {
            let plain = LegacyFormatTests.variants.filter { $0.folder == folder && !$0.quantized }
            let bundles = try plain.map { try Converter.makeBundle(input: LegacyFixtures.path(folder + "/" + $0.file)) }
            guard let first = bundles.first else { continue }
            for (v, b) in zip(plain, bundles).dropFirst() {
                #expect(
                    b.entries.map { "\($0.layerName)/\($0.weightName)\($0.shape)" }
                        == first.entries.map { "\($0.layerName)/\($0.weightName)\($0.shape)" }, "\(folder)/\(v.file)")
                // A Theano file holds flipped kernels; once flipped back they are the same numbers.
                #expect(b.weights == first.weights, "\(folder)/\(v.file) differs from \(plain[0].file)")
            }
        }
    }

    @Test func keras1WeightNamesAndLayouts() throws {
        let b = try Converter.makeBundle(
            input: LegacyFixtures.path("k1_dense/model.h5"), options: ConvertOptions(validate: false))
        let names = b.entries.map { "\($0.layerName)/\($0.weightName)" }
        #expect(
            names == [
                "dense_1/kernel", "dense_1/bias", "highway_1/W", "highway_1/W_carry", "highway_1/b",
                "highway_1/b_carry",
                "maxoutdense_1/W", "maxoutdense_1/b", "parametricsoftplus_1/alphas", "parametricsoftplus_1/betas",
                "srelu_1/t_left", "srelu_1/a_left", "srelu_1/t_right", "srelu_1/a_right", "prelu_1/alpha",
                "dense_2/kernel",
            ])
        #expect(b.kerasVersion == "1.2.2" && b.backend == "tensorflow")
        #expect(b.inputs.map(\.name) == ["dense_1_input"])
    }

    /// Keras 1 spellings of classes that kept their name reach the builders in Keras 2 spelling; Keras 2 and 3
    /// configs pass unchanged.
    @Test func keras1ConfigKeysAreTranslated() throws {
        func translated(_ cls: String, _ text: String) throws -> JSONObject {
            let j = try JSONParser.parse(text)
            return Keras1Config.translated(LayerConfig(layerName: "l", className: cls, json: j.object!)).json
        }
        let dense = try translated("Dense", #"{"output_dim": 3, "bias": false}"#)
        #expect(dense["units"]?.int == 3 && dense["use_bias"]?.bool == false && dense["bias"] == nil)
        let pool = try translated("MaxPooling1D", #"{"pool_length": 3, "stride": null, "border_mode": "same"}"#)
        #expect(pool["pool_size"]?.int == 3 && pool["strides"]?.int == 3 && pool["padding"]?.string == "same")
        let pool2 = try translated(
            "AveragePooling2D", #"{"pool_size": [2, 2], "border_mode": "valid", "dim_ordering": "th"}"#)
        #expect(pool2["padding"]?.string == "valid" && pool2["data_format"]?.string == "channels_first")
        let pad = try translated("ZeroPadding2D", #"{"padding": [1, 2, 3, 4], "dim_ordering": "tf"}"#)
        #expect(pad["padding"]?.serialized() == "[[1, 2], [3, 4]]" && pad["data_format"]?.string == "channels_last")
        let padDict = try translated("ZeroPadding2D", #"{"padding": {"top_pad": 1, "right_pad": 2}}"#)
        #expect(padDict["padding"]?.serialized() == "[[1, 0], [0, 2]]")
        #expect(try translated("UpSampling1D", #"{"length": 2}"#)["size"]?.int == 2)
        #expect(try translated("Dropout", #"{"p": 0.5}"#)["rate"]?.double == 0.5)
        let keras2 = try translated("Dense", #"{"units": 3, "use_bias": true, "output_dim": 9}"#)
        #expect(keras2["units"]?.int == 3 && keras2["output_dim"]?.int == 9)
    }

    @Test func theanoKernelsAreFlippedOnTheirSpatialAxes() throws {
        let b = try Converter.makeBundle(
            input: LegacyFixtures.path("k1_conv2d_th_theano/model.h5"), options: ConvertOptions(validate: false))
        let file = try HDF5File(path: LegacyFixtures.path("k1_conv2d_th_theano/model.h5"), name: "t")
        let stored = try file.readFloats("model_weights/convolution2d_1/convolution2d_1_W", context: "test")
        let e = b.entries.first { $0.layerName == "convolution2d_1" && $0.weightName == "W" }!
        #expect(e.shape == stored.shape)
        let s = stored.shape  // (out, in, rows, cols)
        let got = decode(e, in: b.weights)
        for o in 0..<s[0] {
            for i in 0..<s[1] {
                for r in 0..<s[2] {
                    for c in 0..<s[3] {
                        let a = ((o * s[1] + i) * s[2] + r) * s[3] + c
                        let f = ((o * s[1] + i) * s[2] + (s[2] - 1 - r)) * s[3] + (s[3] - 1 - c)
                        #expect(got[a] == stored.data[f])
                    }
                }
            }
        }
        #expect(
            TheanoKernels.reversed([0, 1, 2, 3, 4, 5], shape: [2, 3], axes: [1]) == [2, 1, 0, 5, 4, 3])
    }

    @Test func tfjsTensorsSpanShards() throws {
        let text = try Data(contentsOf: URL(fileURLWithPath: LegacyFixtures.path("k2_cnn/tfjs/model.json")))
        let obj = try JSONSerialization.jsonObject(with: text) as! [String: Any]
        let group = (obj["weightsManifest"] as! [[String: Any]])[0]
        #expect((group["paths"] as! [String]).count > 10)
        let q =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: LegacyFixtures.path("k2_cnn/tfjs_uint8/model.json"))))
            as! [String: Any]
        let w = ((q["weightsManifest"] as! [[String: Any]])[0]["weights"] as! [[String: Any]])[0]
        #expect((w["quantization"] as? [String: Any])?["dtype"] as? String == "uint8")
    }

    @Test func protobufReaderReadsPackedAndUnpackedFields() throws {
        // Weights {layer_name: "d", weight_name: "w", shape: [2, 3] (packed), type: "float32", data: 24 bytes}
        var msg: [UInt8] = [0x0A, 1, 0x64, 0x12, 1, 0x77, 0x1A, 2, 2, 3, 0x22, 7] + Array("float32".utf8)
        msg += [0x2A, 24] + [UInt8](repeating: 0, count: 24)
        let (layer, t) = try KerasJSSource.weights(msg[...], index: 0, path: "x.bin")
        #expect(layer == "d" && t.name == "w" && t.shape == [2, 3] && t.data == [Float](repeating: 0, count: 6))
        // The same with the shape as two varint fields, and an unknown field 9 (fixed64) skipped.
        var unpacked: [UInt8] =
            [0x0A, 1, 0x64, 0x12, 1, 0x77, 0x18, 2, 0x18, 3, 0x49] + [UInt8](repeating: 0, count: 8)
        unpacked += [0x2A, 24] + [UInt8](repeating: 0, count: 24)
        #expect(try KerasJSSource.weights(unpacked[...], index: 0, path: "x.bin").1.shape == [2, 3])
        // uint8: q * (max - min) / 255 + min
        var q: [UInt8] =
            [0x0A, 1, 0x64, 0x12, 1, 0x77, 0x1A, 1, 3, 0x22, 5] + Array("uint8".utf8) + [0x2A, 3, 0, 51, 255]
        q += [0x35] + withUnsafeBytes(of: Float(-1).bitPattern.littleEndian, Array.init)
        q += [0x3D] + withUnsafeBytes(of: Float(4).bitPattern.littleEndian, Array.init)
        #expect(try KerasJSSource.weights(q[...], index: 0, path: "x.bin").1.data == [-1, 0, 4])
    }

    // MARK: errors name the file, the layer and the weight

    func scratch() throws -> URL { try Fixtures.scratch() }

    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
        } catch let e as KedgeError {
            return e.message
        } catch {
            return "\(error)"
        }
        return ""
    }

    @Test func truncatedBinIsRejected() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Data(contentsOf: URL(fileURLWithPath: LegacyFixtures.path("k2_mlp/model.bin")))
        let cut = dir.appendingPathComponent("cut.bin")
        try data.prefix(data.count - 100).write(to: cut)
        let m = message { _ = try Converter.makeBundle(input: cut.path) }
        #expect(m.hasPrefix(cut.path) && m.contains("truncated"), "\(m)")
    }

    @Test func binWithWrongDataLengthNamesTheWeight() throws {
        var msg: [UInt8] = [0x0A, 2] + Array("fc".utf8) + [0x12, 6] + Array("fc/W:0".utf8) + [0x1A, 2, 2, 3]
        msg += [0x22, 7] + Array("float32".utf8) + [0x2A, 8] + [UInt8](repeating: 0, count: 8)
        let m = message { _ = try KerasJSSource.weights(msg[...], index: 0, path: "m.bin") }
        #expect(
            m.contains("m.bin") && m.contains("layer 'fc'") && m.contains("weight 'fc/W:0'") && m.contains("24"), "\(m)"
        )
    }

    @Test func missingShardIsNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = LegacyFixtures.path("k2_mlp/tfjs")
        let dst = dir.appendingPathComponent("tfjs")
        try FileManager.default.copyItem(atPath: src, toPath: dst.path)
        let shard = try FileManager.default.contentsOfDirectory(atPath: dst.path).filter { $0.hasSuffix(".bin") }
            .sorted()
            .last!
        try FileManager.default.removeItem(at: dst.appendingPathComponent(shard))
        let m = message { _ = try Converter.makeBundle(input: dst.appendingPathComponent("model.json").path) }
        #expect(m.contains("model.json") && m.contains(shard) && m.contains("missing"), "\(m)")
    }

    @Test func v0MetadataBeyondTheBufferNamesTheWeight() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = LegacyFixtures.path("k1_dense")
        for f in ["model.json", "model_metadata.json"] {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir.appendingPathComponent(f).path)
        }
        let buf = try Data(contentsOf: URL(fileURLWithPath: src + "/model_weights.buf"))
        try buf.prefix(buf.count - 8).write(to: dir.appendingPathComponent("model_weights.buf"))
        let m = message { _ = try Converter.makeBundle(input: dir.appendingPathComponent("model.json").path) }
        #expect(
            m.contains("model_metadata.json") && m.contains("layer 'dense_2'") && m.contains("beyond the end"), "\(m)")
    }

    @Test func architectureWithoutWeightsSaysWhatIsMissing() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(
            atPath: LegacyFixtures.path("k1_dense/model.json"), toPath: dir.appendingPathComponent("model.json").path)
        let m = message { _ = try Converter.makeBundle(input: dir.appendingPathComponent("model.json").path) }
        #expect(m.contains("without weights") && m.contains("--config"), "\(m)")
    }

    @Test func aKedgeBundleIsNotReconverted() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("b").path
        try Converter.convert(input: LegacyFixtures.path("k1_dense/model.h5"), outputDirectory: out)
        let m = message { _ = try Converter.makeBundle(input: out + "/model.json") }
        #expect(m.contains("already a Kedge bundle"), "\(m)")
    }

    @Test func tfjsGraphModelIsRefused() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("model.json")
        try Data(#"{"format": "graph-model", "modelTopology": {}, "weightsManifest": []}"#.utf8).write(to: p)
        let m = message { _ = try Converter.makeBundle(input: p.path) }
        #expect(m.contains("graph-model") && m.contains("layers"), "\(m)")
    }

    @Test func weightCountMismatchNamesLayerAndWeights() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = LegacyFixtures.path("k1_dense")
        try FileManager.default.copyItem(
            atPath: src + "/model_weights.buf", toPath: dir.appendingPathComponent("model_weights.buf").path)
        try FileManager.default.copyItem(
            atPath: src + "/model.json", toPath: dir.appendingPathComponent("model.json").path)
        let meta =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/model_metadata.json")))
            as! [[String: Any]]
        let fewer = meta.filter { ($0["weight_name"] as! String) != "highway_1_b_carry:0" }
        try JSONSerialization.data(withJSONObject: fewer).write(to: dir.appendingPathComponent("model_metadata.json"))
        let m = message { _ = try Converter.makeBundle(input: dir.appendingPathComponent("model.json").path) }
        #expect(m.contains("layer 'highway_1' (Highway)") && m.contains("b_carry") && m.contains("3 weights"), "\(m)")
    }

    @Test func kerasJSQuantizedBinIsDequantized() throws {
        let f = try Converter.makeBundle(
            input: LegacyFixtures.path("k2_mlp/model.bin"), options: ConvertOptions(validate: false))
        let q = try Converter.makeBundle(
            input: LegacyFixtures.path("k2_mlp/model_uint8.bin"), options: ConvertOptions(validate: false))
        #expect(f.entries.map(\.shape) == q.entries.map(\.shape))
        for (a, b) in zip(f.entries, q.entries) {
            let x = decode(a, in: f.weights)
            let y = decode(b, in: q.weights)
            let lo = x.min() ?? 0
            let hi = x.max() ?? 0
            // Within half a quantization step (plus float rounding).
            #expect(maxAbsDiff(x, y) <= (hi - lo) / 255 * 0.5 + 1e-6, "\(a.layerName)/\(a.weightName)")
        }
    }
}
