import Foundation
import Testing

@testable import KedgeCore

/// Recurrent layers and masks against plain reference loops (the parity with real Keras is in
/// KedgeParityTests/RecurrentParityTests over tools/fixtures/sequence.py's fixtures).
@Suite struct RecurrentTests {
    /// A deterministic pseudo-random generator, so the tests need no fixtures.
    struct Rand {
        var s: UInt64
        mutating func next() -> Float {
            s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: s >> 11) % 2000 - 1000) / 1000
        }
        mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
    }

    /// A Keras 3 Functional config of one input and a chain of layers (each `(class, config JSON, weights)`).
    func model(
        input: [Int?], _ layers: [(String, String, [String: Tensor])], kwargs: String = "{}", inputDtype: String = "float32"
    ) throws -> Model {
        func tensor(_ name: String) -> String {
            #"{"class_name": "__keras_tensor__", "config": {"keras_history": ["\#(name)", 0, 0]}}"#
        }
        let shape = input.map { $0.map(String.init) ?? "null" }.joined(separator: ", ")
        var entries = [
            #"{"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, \#(shape)], "name": "x", "dtype": "\#(inputDtype)"}, "inbound_nodes": []}"#
        ]
        var previous = "x"
        var store = WeightStore()
        for (i, (cls, cfg, ws)) in layers.enumerated() {
            let name = "l\(i)"
            let kw = i == layers.count - 1 ? kwargs : "{}"
            entries.append(
                #"{"class_name": "\#(cls)", "name": "\#(name)", "config": {"name": "\#(name)", \#(cfg)}, "inbound_nodes": [{"args": [\#(tensor(previous))], "kwargs": \#(kw)}]}"#
            )
            for (k, t) in ws { store.set(layer: name, weight: k, t) }
            previous = name
        }
        let text = #"""
            {"class_name": "Functional", "config": {"name": "m", "layers": [\#(entries.joined(separator: ",\n"))],
             "input_layers": [["x", 0, 0]], "output_layers": [["\#(previous)", 0, 0]]}}
            """#
        let c = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "3.15.1")
        return try Model(config: c, weights: store)
    }

    func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation_exp(-x)) }

    // MARK: reference cells (Double)

    /// LSTM over `x` (b, t, f) with kernel (f, 4u), recurrent (u, 4u), bias (4u); gates i, f, c, o.
    func referenceLSTM(_ x: [Float], b: Int, t: Int, f: Int, u: Int, k: [Float], r: [Float], bias: [Float]) -> [[Double]] {
        var outs: [[Double]] = []
        for s in 0..<b {
            var h = [Double](repeating: 0, count: u)
            var c = [Double](repeating: 0, count: u)
            var seq: [Double] = []
            for step in 0..<t {
                var z = (0..<(4 * u)).map { Double(bias[$0]) }
                for j in 0..<(4 * u) {
                    for q in 0..<f { z[j] += Double(x[(s * t + step) * f + q]) * Double(k[q * 4 * u + j]) }
                    for q in 0..<u { z[j] += h[q] * Double(r[q * 4 * u + j]) }
                }
                for j in 0..<u {
                    let i = sigmoid(z[j])
                    let fg = sigmoid(z[u + j])
                    c[j] = fg * c[j] + i * Foundation_tanh(z[2 * u + j])
                    h[j] = sigmoid(z[3 * u + j]) * Foundation_tanh(c[j])
                }
                seq += h
            }
            outs.append(seq)
        }
        return outs
    }

    func referenceGRU(
        _ x: [Float], b: Int, t: Int, f: Int, u: Int, k: [Float], r: [Float], bias: [Float], resetAfter: Bool
    ) -> [[Double]] {
        var outs: [[Double]] = []
        for s in 0..<b {
            var h = [Double](repeating: 0, count: u)
            var seq: [Double] = []
            for step in 0..<t {
                var xz = [Double](repeating: 0, count: 3 * u)
                var hz = [Double](repeating: 0, count: 3 * u)
                for j in 0..<(3 * u) {
                    xz[j] = Double(bias[j])
                    for q in 0..<f { xz[j] += Double(x[(s * t + step) * f + q]) * Double(k[q * 3 * u + j]) }
                    if resetAfter {
                        hz[j] = Double(bias[3 * u + j])
                        for q in 0..<u { hz[j] += h[q] * Double(r[q * 3 * u + j]) }
                    } else if j < 2 * u {
                        for q in 0..<u { hz[j] += h[q] * Double(r[q * 3 * u + j]) }
                    }
                }
                var next = h
                var rg = [Double](repeating: 0, count: u)
                for j in 0..<u { rg[j] = sigmoid(xz[u + j] + hz[u + j]) }
                for j in 0..<u {
                    let z = sigmoid(xz[j] + hz[j])
                    var cand: Double
                    if resetAfter {
                        cand = xz[2 * u + j] + rg[j] * hz[2 * u + j]
                    } else {
                        cand = xz[2 * u + j]
                        for q in 0..<u { cand += rg[q] * h[q] * Double(r[q * 3 * u + 2 * u + j]) }
                    }
                    next[j] = z * h[j] + (1 - z) * Foundation_tanh(cand)
                }
                h = next
                seq += h
            }
            outs.append(seq)
        }
        return outs
    }

    func close(_ got: [Float], _ want: [Double], _ what: String) {
        #expect(got.count == want.count, "\(what): \(got.count) values, expected \(want.count)")
        var worst = 0.0
        for (a, b) in zip(got, want) { worst = max(worst, abs(Double(a) - b)) }
        #expect(worst < 2e-5, "\(what): max error \(worst)")
    }

    // MARK: tests

    @Test func lstmMatchesReferenceAndBackwardsReversesOrder() throws {
        var rng = Rand(s: 1)
        let (b, t, f, u) = (2, 5, 3, 4)
        let k = rng.floats(f * 4 * u, scale: 0.7)
        let r = rng.floats(u * 4 * u, scale: 0.5)
        let bias = rng.floats(4 * u, scale: 0.3)
        let x = rng.floats(b * t * f)
        let ws = [
            "kernel": Tensor(shape: [f, 4 * u], data: k), "recurrent_kernel": Tensor(shape: [u, 4 * u], data: r),
            "bias": Tensor(shape: [4 * u], data: bias),
        ]
        let m = try model(input: [t, f], [("LSTM", #""units": 4, "return_sequences": true"#, ws)])
        let y = try m.predict([Tensor(shape: [b, t, f], data: x)])[0]
        #expect(y.shape == [b, t, u])
        let want = referenceLSTM(x, b: b, t: t, f: f, u: u, k: k, r: r, bias: bias)
        close(y.data, want[0] + want[1], "LSTM sequences")

        // go_backwards = the forward layer on the reversed sequence, outputs in processing order.
        let back = try model(input: [t, f], [("LSTM", #""units": 4, "return_sequences": true, "go_backwards": true"#, ws)])
        let yb = try back.predict([Tensor(shape: [b, t, f], data: x)])[0]
        var reversed = x
        for s in 0..<b { for step in 0..<t { for q in 0..<f { reversed[(s * t + step) * f + q] = x[(s * t + t - 1 - step) * f + q] } } }
        let wantBack = referenceLSTM(reversed, b: b, t: t, f: f, u: u, k: k, r: r, bias: bias)
        close(yb.data, wantBack[0] + wantBack[1], "LSTM go_backwards")
    }

    @Test(arguments: [true, false]) func gruMatchesReference(resetAfter: Bool) throws {
        var rng = Rand(s: resetAfter ? 2 : 3)
        let (b, t, f, u) = (2, 4, 3, 3)
        let k = rng.floats(f * 3 * u, scale: 0.7)
        let r = rng.floats(u * 3 * u, scale: 0.5)
        let bias = rng.floats((resetAfter ? 2 : 1) * 3 * u, scale: 0.3)
        let x = rng.floats(b * t * f)
        let ws = [
            "kernel": Tensor(shape: [f, 3 * u], data: k), "recurrent_kernel": Tensor(shape: [u, 3 * u], data: r),
            "bias": Tensor(shape: resetAfter ? [2, 3 * u] : [3 * u], data: bias),
        ]
        let m = try model(
            input: [t, f], [("GRU", #""units": 3, "return_sequences": true, "reset_after": \#(resetAfter)"#, ws)])
        let y = try m.predict([Tensor(shape: [b, t, f], data: x)])[0]
        let want = referenceGRU(x, b: b, t: t, f: f, u: u, k: k, r: r, bias: bias, resetAfter: resetAfter)
        close(y.data, want[0] + want[1], "GRU reset_after=\(resetAfter)")
    }

    @Test func embeddingMaskHoldsStatesAndRepeatsOutputs() throws {
        // SimpleRNN with identity-ish weights: masked steps (token 0) must keep the state and repeat the output.
        let emb = Tensor(shape: [4, 2], data: [0, 0, 1, 0, 0, 1, 0.5, 0.5])
        let ws: [String: Tensor] = [
            "kernel": Tensor(shape: [2, 2], data: [1, 0, 0, 1]), "recurrent_kernel": Tensor(shape: [2, 2], data: [0.5, 0, 0, 0.5]),
            "bias": Tensor(shape: [2], data: [0, 0]),
        ]
        let m = try model(
            input: [4],
            [
                ("Embedding", #""input_dim": 4, "output_dim": 2, "mask_zero": true"#, ["embeddings": emb]),
                ("SimpleRNN", #""units": 2, "return_sequences": true, "activation": "linear""#, ws),
            ])
        let y = try m.predict([Tensor(shape: [1, 4], data: [1, 0, 2, 0])])[0]
        // step 0: h = (1, 0); step 1 masked: output (1, 0), state kept; step 2: h = (0, 1) + 0.5 * (1, 0); step 3 masked.
        #expect(y.data == [1, 0, 1, 0, 0.5, 1, 0.5, 1])

        // Without the mask the zero rows run through the cell.
        let plain = try model(
            input: [4],
            [
                ("Embedding", #""input_dim": 4, "output_dim": 2, "mask_zero": false"#, ["embeddings": emb]),
                ("SimpleRNN", #""units": 2, "return_sequences": true, "activation": "linear""#, ws),
            ])
        let y2 = try plain.predict([Tensor(shape: [1, 4], data: [1, 0, 2, 0])])[0]
        #expect(y2.data == [1, 0, 0.5, 0, 0.25, 1, 0.125, 0.5])
    }

    @Test func maskPassesThroughDenseButNotFlatten() throws {
        let emb = Tensor(shape: [3, 1], data: [0, 1, 2])
        let dense: [String: Tensor] = ["kernel": Tensor(shape: [1, 1], data: [1]), "bias": Tensor(shape: [1], data: [0])]
        let rnn: [String: Tensor] = [
            "kernel": Tensor(shape: [1, 1], data: [1]), "recurrent_kernel": Tensor(shape: [1, 1], data: [1]),
            "bias": Tensor(shape: [1], data: [0]),
        ]
        let m = try model(
            input: [3],
            [
                ("Embedding", #""input_dim": 3, "output_dim": 1, "mask_zero": true"#, ["embeddings": emb]),
                ("Dense", #""units": 1"#, dense),
                ("SimpleRNN", #""units": 1, "activation": "linear""#, rnn),
            ])
        // Tokens 2, 0, 1: the masked middle step is skipped, so h = 2 then 2 + 1.
        #expect(try m.predict([Tensor(shape: [1, 3], data: [2, 0, 1])])[0].data == [3])
    }

    @Test func statefulKeepsStateUntilReset() throws {
        let ws: [String: Tensor] = [
            "kernel": Tensor(shape: [1, 1], data: [1]), "recurrent_kernel": Tensor(shape: [1, 1], data: [1]),
            "bias": Tensor(shape: [1], data: [0]),
        ]
        let m = try model(input: [2, 1], [("SimpleRNN", #""units": 1, "activation": "linear", "stateful": true"#, ws)])
        let x = Tensor(shape: [1, 2, 1], data: [1, 2])
        #expect(try m.predict([x])[0].data == [3])
        #expect(try m.predict([x])[0].data == [6])
        m.resetStates()
        #expect(try m.predict([x])[0].data == [3])
        // A different batch size while holding states is an error that says what to do.
        let e = #expect(throws: KedgeError.self) { try m.predict([Tensor(shape: [2, 2, 1], data: [1, 2, 1, 2])]) }
        #expect(e?.message.contains("resetStates") == true)
    }

    @Test func unsupportedOptionNamesLayerClassOptionAndAlternatives() throws {
        let ws: [String: Tensor] = [
            "kernel": Tensor(shape: [1, 1], data: [1]), "recurrent_kernel": Tensor(shape: [1, 1], data: [1]),
            "bias": Tensor(shape: [1], data: [0]),
        ]
        let e = #expect(throws: KedgeError.self) {
            try model(input: [2, 1], [("SimpleRNN", #""units": 1, "time_major": true"#, ws)])
        }
        #expect(e?.kind == .unsupportedLayer)
        #expect(e?.message.contains("'l0' (SimpleRNN)") == true)
        #expect(e?.message.contains("time_major") == true)
        #expect(e?.message.contains("supported:") == true)
        let e2 = #expect(throws: KedgeError.self) {
            var both: [String: Tensor] = [:]
            for (k, t) in ws { both["forward_" + k] = t; both["backward_" + k] = t }
            return try model(
                input: [2, 1],
                [("Bidirectional", #""merge_mode": "max", "layer": {"class_name": "SimpleRNN", "config": {"name": "r", "units": 1}}"#, both)])
        }
        #expect(e2?.message.contains("'l0' (Bidirectional)") == true)
        #expect(e2?.message.contains("merge_mode") == true)
        #expect(e2?.message.contains("supported: concat, sum, mul, ave, None") == true)
    }

    @Test func convLSTMChannelsFirstEqualsChannelsLastOnTransposedData() throws {
        // TF has no channels_first convolution on CPU, so Keras cannot make this fixture; compare the layouts.
        var rng = Rand(s: 7)
        let (b, t, h, w, c, f) = (2, 3, 5, 4, 2, 3)
        let ws: [String: Tensor] = [
            "kernel": Tensor(shape: [3, 3, c, 4 * f], data: rng.floats(9 * c * 4 * f, scale: 0.4)),
            "recurrent_kernel": Tensor(shape: [3, 3, f, 4 * f], data: rng.floats(9 * f * 4 * f, scale: 0.3)),
            "bias": Tensor(shape: [4 * f], data: rng.floats(4 * f, scale: 0.3)),
        ]
        let opts = #""filters": 3, "kernel_size": [3, 3], "padding": "same", "return_sequences": true, "return_state": false"#
        let last = try model(input: [t, h, w, c], [("ConvLSTM2D", opts + #", "data_format": "channels_last""#, ws)])
        let first = try model(input: [t, c, h, w], [("ConvLSTM2D", opts + #", "data_format": "channels_first""#, ws)])
        let x = Tensor(shape: [b, t, h, w, c], data: rng.floats(b * t * h * w * c))
        let yl = try last.predict([x])[0]
        let yf = try first.predict([transpose(x, axes: [0, 1, 4, 2, 3])])[0]
        #expect(yf.shape == [b, t, f, h, w])
        let back = transpose(yf, axes: [0, 1, 3, 4, 2])
        var worst: Float = 0
        for i in 0..<yl.count { worst = max(worst, abs(yl.data[i] - back.data[i])) }
        #expect(worst < 1e-6)
    }

    @Test func keywordTensorsAreParsedForKeras2And3() throws {
        let k3 = #"""
            {"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}],
             "kwargs": {"initial_state": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["h", 0, 0]}},
                                          {"class_name": "__keras_tensor__", "config": {"keras_history": ["c", 0, 0]}}],
                        "mask": {"class_name": "__keras_tensor__", "config": {"keras_history": ["m", 0, 0]}},
                        "training": false}}
            """#
        let (args, kw) = try ModelConfig.parseCall(try JSONParser.parse(k3), layer: "lstm")
        #expect(args == [TensorRef(layer: "x", node: 0, tensor: 0)])
        #expect(kw.tensors.map { $0.name } == ["initial_state", "initial_state", "mask"])
        #expect(kw.tensors.map { $0.ref?.layer } == ["h", "c", "m"])
        #expect(kw.options["training"]?.bool == false)

        let k2 = #"[["q", 0, 0, {"value": ["v", 0, 0], "attention_mask": ["am", 0, 0], "use_causal_mask": true}]]"#
        let (args2, kw2) = try ModelConfig.parseCall(try JSONParser.parse(k2), layer: "mha")
        #expect(args2 == [TensorRef(layer: "q", node: 0, tensor: 0)])
        #expect(kw2.tensors.map { $0.name }.sorted() == ["attention_mask", "value"])
        #expect(kw2.options["use_causal_mask"]?.bool == true)

        let op = #"{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}, 0], "kwargs": {}}"#
        let (_, kw3) = try ModelConfig.parseCall(try JSONParser.parse(op), layer: "not_equal")
        #expect(kw3.options[CallKeywords.positionalKey]?.array?.count == 2)
    }
}

func Foundation_exp(_ x: Double) -> Double { Foundation.exp(x) }
func Foundation_tanh(_ x: Double) -> Double { Foundation.tanh(x) }

@Suite struct KerasV3StorageOrderTests {
    func config(_ cls: String, _ json: String) throws -> LayerConfig {
        LayerConfig(layerName: "l", className: cls, json: try JSONParser.parse(json).object!)
    }

    @Test func bidirectionalStoresBackwardFirst() throws {
        let c = try config("Bidirectional", #"{"layer": {"class_name": "LSTM", "config": {"name": "lstm", "units": 2}}}"#)
        let names = try LayerCatalog.weightNames(c)
        #expect(names.first == "forward_kernel")
        let order = try LayerCatalog.v3StorageOrder(c)
        #expect(order.map { names[$0] }.first == "backward_kernel")
        #expect(order.sorted() == Array(names.indices))
    }

    @Test func stackedCellsSortByAutoName() throws {
        let c = try config(
            "RNN",
            #"{"cell": {"class_name": "StackedRNNCells", "config": {"cells": [{"class_name": "SimpleRNNCell", "config": {"units": 4}}, {"class_name": "LSTMCell", "config": {"units": 3}}]}}}"#
        )
        let names = try LayerCatalog.weightNames(c)
        #expect(names == ["cell_0_kernel", "cell_0_recurrent_kernel", "cell_0_bias", "cell_1_kernel", "cell_1_recurrent_kernel", "cell_1_bias"])
        // lstm_cell sorts before simple_rnn_cell in the .keras file.
        #expect(try LayerCatalog.v3StorageOrder(c) == [3, 4, 5, 0, 1, 2])
        #expect(LayerCatalog.kerasSnakeCase("SimpleRNNCell") == "simple_rnn_cell")
        #expect(LayerCatalog.kerasSnakeCase("GlobalAveragePooling2D") == "global_average_pooling2d")
    }

    @Test func multiHeadAttentionStoresKeyOutputQueryValueThenGate() throws {
        let c = try config("MultiHeadAttention", #"{"num_heads": 2, "key_dim": 3, "use_gate": true}"#)
        let names = try LayerCatalog.weightNames(c)
        #expect(try LayerCatalog.v3StorageOrder(c).map { names[$0] } == [
            "key/kernel", "key/bias", "attention_output/kernel", "attention_output/bias", "query/kernel", "query/bias",
            "value/kernel", "value/bias", "gate/kernel", "gate/bias",
        ])
    }
}
