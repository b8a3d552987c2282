import Testing

@testable import KedgeCore

/// Options Keras saves with a default Kedge implements: any other value is refused with a message naming the
/// layer, its class and the option, never computed differently from Keras.
@Suite struct RefusedOptionTests {
    let build = RecurrentTests()

    func refusal(_ input: [Int?], _ cls: String, _ cfg: String, _ ws: [String: Tensor]) -> KedgeError? {
        #expect(throws: KedgeError.self) { try build.model(input: input, [(cls, cfg, ws)]) }
    }

    @Test func depthwiseSeparableAndTransposedConvolutionsRefuseGroups() {
        let dw = ["depthwise_kernel": Tensor(shape: [3, 3, 4, 1], data: [Float](repeating: 0.1, count: 36))]
        let e = refusal([5, 5, 4], "DepthwiseConv2D", #""kernel_size": [3, 3], "use_bias": false, "groups": 2"#, dw)
        #expect(e?.kind == .unsupportedLayer)
        #expect(e?.message.contains("'l0' (DepthwiseConv2D): option groups=2 is not supported; supported: groups=1") == true)
        // groups 1, what Keras saves, builds.
        #expect(throws: Never.self) {
            try build.model(input: [5, 5, 4], [("DepthwiseConv2D", #""kernel_size": [3, 3], "use_bias": false, "groups": 1"#, dw)])
        }
        let tk = ["kernel": Tensor(shape: [3, 3, 2, 4], data: [Float](repeating: 0.1, count: 72))]
        let t = refusal([5, 5, 4], "Conv2DTranspose", #""filters": 2, "kernel_size": [3, 3], "use_bias": false, "groups": 2"#, tk)
        #expect(t?.message.contains("option groups=2") == true)
    }

    @Test func aQuantizedDenseIsRefused() {
        let ws = ["kernel": Tensor(shape: [3, 2], data: [Float](repeating: 0.5, count: 6))]
        let e = refusal([3], "Dense", #""units": 2, "use_bias": false, "quantization_config": {"mode": "int8"}"#, ws)
        #expect(e?.kind == .unsupportedLayer)
        #expect(e?.message.contains("'l0' (Dense): option quantization_config is not supported") == true)
        // null, as every float Keras 3 Dense saves it, builds.
        #expect(throws: Never.self) {
            try build.model(input: [3], [("Dense", #""units": 2, "use_bias": false, "quantization_config": null"#, ws)])
        }
    }

    /// Sizes in a layer config are hostile until checked: each is refused by name, before any layer allocates
    /// with it (Dense units -3 trapped on a negative repeat count, huge ones overflowed shape products).
    @Test(arguments: [
        ([3], "Dense", #""units": -3"#, "units"),
        ([3], "Dense", #""units": 0"#, "units"),
        ([3], "Dense", #""units": 1e15"#, "units"),
        ([4, 3], "LSTM", #""units": 0"#, "units"),
        ([4, 3], "GRU", #""units": -2"#, "units"),
        ([4, 3], "SimpleRNN", #""units": 100000000"#, "units"),
        ([4, 3], "Bidirectional", #""layer": {"class_name": "LSTM", "config": {"name": "f", "units": -1}}"#, "units"),
        ([4, 3], "TimeDistributed", #""layer": {"class_name": "Dense", "config": {"name": "d", "units": -5}}"#, "units"),
        ([4, 3], "MultiHeadAttention", #""num_heads": 2, "key_dim": 0"#, "key_dim"),
        ([4, 3], "MultiHeadAttention", #""num_heads": -1, "key_dim": 2"#, "num_heads"),
        ([5, 5, 2], "Conv2D", #""filters": 1e15, "kernel_size": [3, 3]"#, "filters"),
        ([5, 5, 2], "DepthwiseConv2D", #""kernel_size": [3, 3], "depth_multiplier": 0"#, "depth_multiplier"),
        ([6], "Embedding", #""input_dim": -1, "output_dim": 3"#, "input_dim"),
        ([3], "MaxoutDense", #""output_dim": -3, "nb_feature": 2"#, "output_dim"),
        ([3], "MaxoutDense", #""output_dim": 2, "nb_feature": 0"#, "nb_feature"),
    ] as [([Int?], String, String, String)])
    func hostileSizesAreRefusedByName(_ input: [Int?], _ cls: String, _ cfg: String, _ key: String) throws {
        // The layer itself, with placeholder weights under every name a wrapper looks up first: a layer reads its
        // config before it checks a weight's shape, so the size is what fails.
        let json = try JSONParser.parse("{\"name\": \"l0\", " + cfg + "}")
        let config = LayerConfig(layerName: "l0", className: cls, json: json.object!)
        var ws: [String: Tensor] = [:]
        for side in ["", "forward_", "backward_"] {
            for n in ["kernel", "recurrent_kernel", "bias"] { ws[side + n] = Tensor(shape: [1], data: [0]) }
        }
        let spec = LayerSpec(name: "l0", className: cls, config: config, kerasMajor: 2, weights: ws)
        let e = #expect(throws: KedgeError.self) { _ = try LayerCatalog.make(spec) }
        #expect(e?.message.contains("'\(key)'") == true, "\(cls) \(cfg): \(e?.message ?? "no error")")
        #expect(e?.message.contains("it must be a size") == true, "\(cls) \(cfg): \(e?.message ?? "no error")")
        _ = input
    }

    @Test func negativeOneDimensionalPaddingOrCroppingIsRefused() {
        let e = refusal([6, 2], "ZeroPadding1D", #""padding": [-1, 2]"#, [:])
        #expect(e?.message.contains("must not be negative") == true)
        let c = refusal([6, 2], "Cropping1D", #""cropping": [1, -1]"#, [:])
        #expect(c?.message.contains("must not be negative") == true)
    }

    @Test func convLSTMReadsItsGeometryAsConvDoes() {
        let ws: [String: Tensor] = [
            "kernel": Tensor(shape: [3, 3, 1, 4], data: [Float](repeating: 0.1, count: 36)),
            "recurrent_kernel": Tensor(shape: [3, 3, 1, 4], data: [Float](repeating: 0.1, count: 36)),
            "bias": Tensor(shape: [4], data: [0, 0, 0, 0]),
        ]
        let e = refusal([2, 5, 5, 1], "ConvLSTM2D", #""filters": 1, "kernel_size": [3, 0]"#, ws)
        #expect(e?.message.contains("kernel_size") == true)
        let p = refusal([2, 5, 5, 1], "ConvLSTM2D", #""filters": 1, "kernel_size": [3, 3], "padding": "full""#, ws)
        #expect(p?.message.contains("supported: valid, same") == true)
        // Keras accepts "SAME" as Conv does.
        #expect(throws: Never.self) {
            try build.model(input: [2, 5, 5, 1], [("ConvLSTM2D", #""filters": 1, "kernel_size": [3, 3], "padding": "SAME""#, ws)])
        }
    }
}
