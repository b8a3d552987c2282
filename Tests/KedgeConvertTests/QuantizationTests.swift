import Foundation
import KedgeCore
import Testing

@testable import KedgeConvert

@Suite struct QuantizationTests {
    @Test(arguments: [WeightStorage.float16, .uint8])
    func quantizedBundlesDequantizeWithinAStep(_ storage: WeightStorage) throws {
        let expected = try Fixtures.expected("k3_dense")
        let b = try Converter.makeBundle(
            input: Fixtures.path("k3_dense/model.keras"), options: ConvertOptions(quantize: storage))
        let size = storage == .float16 ? 2 : 1
        for (e, w) in zip(b.entries, expected.weights) {
            #expect(e.dtype == storage)
            #expect(e.offset % 16 == 0)
            #expect(e.length == size * w.shape.reduce(1, *))
            let want = try Fixtures.npy(w.file).data
            let got = decode(e, in: b.weights)
            for (x, y) in zip(want, got) {
                switch storage {
                case .float16:
                    // Round to nearest: half a unit in the last of 11 significant bits.
                    #expect(abs(x - y) <= abs(x) * 0x1p-11, "\(e.layerName)/\(e.weightName): \(x) -> \(y)")
                default:
                    let q = e.quantization!
                    #expect(abs(x - y) <= q.scale * 0.5001, "\(e.layerName)/\(e.weightName): \(x) -> \(y)")
                }
            }
        }
        // The metadata the core reads gives the same dequantized values.
        let meta = try BundleMetadata.parse(b.metadata)
        let store = try WeightStore(metadata: meta, buffer: b.weights)
        for e in b.entries {
            #expect(store.weights(ofLayer: e.layerName)[e.weightName]?.data == decode(e, in: b.weights))
        }
        // And the model still runs.
        let model = try Model(modelJSON: b.modelJSON, weights: b.weights, metadata: b.metadata)
        let y = try model.predict([try Fixtures.npy("k3_dense/in.npy")])
        #expect(maxAbsDiff(y[0].data, try Fixtures.npy("k3_dense/out.npy").data) < 0.1)
    }

    @Test func uint8KeepsZeroExactAndSpansTheRange() throws {
        for data: [Float] in [
            [0, 0.5, 1, 2], [-3, -1, 0, 0.25], [-1, -0.5], [0.3, 0.7], [0, 0, 0], [5, 5], [-2, 7.5, 0, 1e-3],
        ] {
            let t = try TensorEncoder.encode(data + [0], as: .uint8, what: "t")
            let s = t.quantScale
            let m = t.quantMin
            let z = (-m / s).rounded()
            #expect(z >= 0 && z <= 255 && (z == 0 ? m == 0 : -z * s == m), "zero point \(-m / s) for \(data)")
            #expect(Float(t.bytes.last!) * s + m == 0, "0 is not exact for \(data)")
            for (x, q) in zip(data, t.bytes) {
                #expect(abs(Float(q) * s + m - x) <= s * 0.5001, "\(x) -> \(q) (min \(m), scale \(s))")
            }
            if data.contains(where: { $0 != 0 }) { #expect(t.bytes.contains(0) || t.bytes.contains(255)) }
        }
    }

    @Test func rejectsWhatCannotBeStored() {
        #expect(throws: KedgeError.self) {
            try TensorEncoder.encode([1, .nan], as: .uint8, what: "layer 'd' weight 'kernel'")
        }
        let e = #expect(throws: KedgeError.self) {
            try TensorEncoder.encode([70000], as: .float16, what: "layer 'd' weight 'kernel'")
        }
        #expect(e?.message.contains("layer 'd' weight 'kernel'") == true)
        #expect((try? TensorEncoder.encode([.infinity, -.infinity, .nan], as: .float16, what: "t")) != nil)
    }

    @Test func halfConversionMatchesFloat16() {
        #if !(os(macOS) && arch(x86_64))
            var values: [Float] = [
                0, -0, 1, -1, 0.1, 65504, 65519.99, 65520, 1e-8, 2.98e-8, 2.99e-8, 5.96e-8, 6.1e-5, 6.1035156e-05,
                6.09e-5, 3.0517578e-05, 1e-3, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
            ]
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<20000 {
                values.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)))
            }
            // Every float between the half-subnormal and half-overflow ranges at their rounding boundaries.
            for h in UInt16(0)..<0x7C00 {
                let f = Float(Float16(bitPattern: h))
                values.append(f)
                values.append(f.nextUp)
                values.append(f.nextDown)
                values.append((f + Float(Float16(bitPattern: h + 1))) / 2)
            }
            for v in values {
                let want = Float16(v).bitPattern
                let got = floatToHalfBits(v)
                if v.isNaN {
                    #expect(got & 0x7C00 == 0x7C00 && got & 0x3FF != 0)
                } else {
                    #expect(got == want, "\(v): \(got) != \(want)")
                }
            }
        #endif
    }
}

@Suite struct NamingTests {
    @Test func snakeCaseIsKeras() {
        // Expected values printed by keras.src.utils.naming.to_snake_case.
        let cases = [
            ("Conv2D", "conv2d"), ("BatchNormalization", "batch_normalization"), ("PReLU", "p_re_lu"),
            ("DepthwiseConv2D", "depthwise_conv2d"), ("LSTM", "lstm"), ("GRU", "gru"),
            ("Conv2DTranspose", "conv2d_transpose"), ("ReLU", "re_lu"), ("Dense", "dense"),
            ("InputLayer", "input_layer"),
            ("SeparableConv1D", "separable_conv1d"), ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("ELU", "elu"),
            ("LayerNormalization", "layer_normalization"), ("UpSampling2D", "up_sampling2d"),
            ("ZeroPadding3D", "zero_padding3d"),
            ("SimpleRNN", "simple_rnn"), ("TimeDistributed", "time_distributed"), ("Sequential", "sequential"),
            ("Functional", "functional"), ("kedge_test>Scale", "kedge_test_scale"),
        ]
        for (cls, snake) in cases { #expect(KerasNaming.snakeCase(cls) == snake) }
    }

    @Test func uniqueNamesCountPerBase() {
        var used: [String: Int] = [:]
        let names = ["dense", "dense", "conv2d", "dense", "conv2d"].map { KerasNaming.unique($0, &used) }
        #expect(names == ["dense", "dense_1", "conv2d", "dense_2", "conv2d_1"])
    }

    @Test func storedNamesLoseTheirOutputIndex() {
        #expect(KerasNaming.components(ofStoredName: "conv2d_a/kernel:0") == ["conv2d_a", "kernel"])
        #expect(
            KerasNaming.components(ofStoredName: "lstm/lstm_cell/recurrent_kernel:0") == [
                "lstm", "lstm_cell", "recurrent_kernel",
            ])
        #expect(KerasNaming.components(ofStoredName: "model/dense/bias") == ["model", "dense", "bias"])
        #expect(KerasNaming.components(ofStoredName: "odd:name") == ["odd:name"])
    }

    @Test func childObjectsSortAsKerasVisitsThem() {
        let sorted = ["_private", "forward_layer", "dense_10", "backward_layer", "dense_2", "dense", "cell"]
            .sorted(by: KerasNaming.saveableOrder)
        #expect(sorted == ["backward_layer", "cell", "dense", "dense_2", "dense_10", "forward_layer", "_private"])
    }
}
