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
