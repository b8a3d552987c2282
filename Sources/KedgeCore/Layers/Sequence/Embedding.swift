// Keras's Embedding and Masking (keras/src/layers/core/embedding.py, masking.py): the two layers that make masks.

/// Everything this family adds to `LayerCatalog.families`.
let sequenceBuilders: [LayerBuilder] = embeddingBuilders + recurrentBuilders + attentionBuilders + maskOpBuilders

let embeddingBuilders: [LayerBuilder] = [
    LayerBuilder(["Embedding"], weights: { _ throws(KedgeError) in ["embeddings"] }, make: { s throws(KedgeError) in try Embedding(s) }),
    LayerBuilder(["Masking"], make: { s throws(KedgeError) in try Masking(s) }),
]

/// Token ids (given as floats, truncated toward zero as Keras's cast to int32 does) to rows of `embeddings`.
/// With `mask_zero`, id 0 is masked.
final class Embedding: Layer {
    let inputDim: Int
    let outputDim: Int
    let maskZero: Bool
    let embeddings: Tensor

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        inputDim = try c.int("input_dim")
        outputDim = try c.int("output_dim")
        maskZero = try c.bool("mask_zero", default: false)
        if c.has("quantization_config") || c.has("quantization_mode") {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(s.name)' (Embedding): quantized embeddings are not supported; supported: float embeddings")
        }
        embeddings = try s.weight("embeddings", shape: [inputDim, outputDim])
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        return [inputShapes[0] + [outputDim]]
    }

    override var handlesMasks: Bool { true }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        let y = try forward(inputs)
        guard maskZero else { return (y, [nil]) }
        let x = inputs[0]
        var m = Tensor(shape: x.shape)
        for i in 0..<x.count where Int(x.data[i]) != 0 { m.data[i] = 1 }
        return (y, [m])
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let d = outputDim
        var bad: Float? = nil
        let y = Tensor(shape: x.shape + [d]) { out in
            embeddings.data.withUnsafeBufferPointer { ep in
                for i in 0..<x.count {
                    let v = x.data[i]
                    guard v.isFinite, v > -1, v < Float(inputDim) else {
                        bad = v
                        for j in 0..<d { out[i * d + j] = 0 }
                        continue
                    }
                    let row = Int(v)
                    for j in 0..<d { out[i * d + j] = ep[row * d + j] }
                }
            }
        }
        if let bad {
            throw KedgeError(
                .invalidInput,
                "layer '\(name)' (Embedding): token id \(Int(bad.isFinite ? bad : -1)) is outside 0..<\(inputDim) (input_dim)")
        }
        return [y]
    }

    override var parameterCount: Int { embeddings.count }
}

/// Steps whose features all equal `mask_value` are masked and set to zero.
final class Masking: Layer {
    let maskValue: Float

    init(_ s: LayerSpec) throws(KedgeError) {
        maskValue = try s.config.float("mask_value", default: 0)
        super.init(spec: s)
    }

    override var handlesMasks: Bool { true }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        try call(inputs, masks: [nil], arguments: .plain).outputs
    }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        var x = inputs[0]
        guard x.rank >= 2 else { throw shapeError("input must have rank >= 2, got \(describeShape(x.shape))") }
        let f = x.shape[x.rank - 1]
        let rows = x.count / max(f, 1)
        var m = Tensor(shape: Array(x.shape.dropLast()))
        for r in 0..<rows {
            var keep = false
            for j in 0..<f where x.data[r * f + j] != maskValue { keep = true; break }
            if keep {
                m.data[r] = 1
            } else {
                for j in 0..<f { x.data[r * f + j] = 0 }
            }
        }
        return ([x], [m])
    }
}
