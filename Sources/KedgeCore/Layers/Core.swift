// Keras's core layers (keras/src/layers/core) and the shape-only reshaping layers.

let coreBuilders: [LayerBuilder] = [
    LayerBuilder(
        ["Dense"],
        weights: { c throws(KedgeError) in try c.bool("use_bias", default: true) ? ["kernel", "bias"] : ["kernel"] },
        make: { s throws(KedgeError) in try Dense(s) }),
    LayerBuilder(["Flatten"], make: { s throws(KedgeError) in try Flatten(s) }),
    LayerBuilder(["Reshape"], make: { s throws(KedgeError) in try Reshape(s) }),
    LayerBuilder(["Permute"], make: { s throws(KedgeError) in try Permute(s) }),
    LayerBuilder(["RepeatVector"], make: { s throws(KedgeError) in try RepeatVector(s) }),
    LayerBuilder(["Identity"], make: { s throws(KedgeError) in IdentityLayer(s) }),
]

/// Keras 3's `Identity`: passes its input through.
final class IdentityLayer: Layer {
    init(_ s: LayerSpec) { super.init(spec: s) }
    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] { inputs }
}

/// `y = activation(x · kernel + bias)` on the last axis of an input of any rank.
final class Dense: Layer {
    let units: Int
    var activation: Activation
    var kernel: Tensor
    var bias: [Float]
    /// The kernel and bias packed for the GEMM, made at build and again after a fusion changes them.
    var packed: PackedWeights? = nil

    init(_ s: LayerSpec) throws(KedgeError) {
        try s.requireAbsent("quantization_config", supported: "float Dense layers (quantization_config null)")
        units = try s.config.int(s.config.has("units") ? "units" : "output_dim")
        activation = try Activation.parse(s.config["activation"], kerasMajor: s.kerasMajor, layer: s.name)
        kernel = try s.weight("kernel", shape: [-1, units])
        let useBias = try s.config.bool("use_bias", default: true)
        bias = useBias ? try s.weight("bias", shape: [units]).data : [Float](repeating: 0, count: units)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        var s = inputShapes[0]
        guard let last = s.last, s.count >= 2 else { throw shapeError("input must have rank >= 2") }
        if last >= 0 && last != kernel.shape[0] {
            throw shapeError(
                "input has \(last) features on its last axis but the kernel has shape \(describeShape(kernel.shape))")
        }
        s[s.count - 1] = units
        return [s]
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        packed = PackedWeights(k: kernel.shape[0], n: units, rowMajor: kernel.data, bias: bias)
        return out
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let outShape = try outputShapes([x.shape])[0]
        let k = kernel.shape[0]
        let m = x.count / k
        let act = activation
        let n = units
        if packed == nil || packed!.k != k { packed = PackedWeights(k: k, n: n, rowMajor: kernel.data, bias: bias) }
        let w = packed!
        var y = Tensor(shape: outShape) { out in
            x.data.withUnsafeBufferPointer { xp in
                gemm(
                    m: m, a: xp.baseAddress!, lda: k, weights: w, c: out.baseAddress!, ldc: n,
                    activation: act.isPointwise ? act : .linear)
            }
        }
        if !act.isPointwise { act.apply(&y) }
        return [y]
    }

    override var parameterCount: Int { kernel.count + bias.count }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        guard activation.isLinear, scale.count == units else { return false }
        let k = kernel.shape[0]
        for r in 0..<k { for c in 0..<units { kernel.data[r * units + c] *= scale[c] } }
        for c in 0..<units { bias[c] = bias[c] * scale[c] + shift[c] }
        packed = PackedWeights(k: k, n: units, rowMajor: kernel.data, bias: bias)
        return true
    }

    override func absorbActivation(_ a: Activation) -> Bool {
        guard activation.isLinear, a.isPointwise else { return false }
        activation = a
        return true
    }
}

/// Resolves a Keras target shape (per sample, may hold one -1) against an element count.
func resolveTargetShape(_ target: [Int], elements: Int, layer: Layer) throws(KedgeError) -> [Int] {
    var known = 1
    var unknownAt = -1
    for (i, d) in target.enumerated() {
        if d < 0 {
            if unknownAt >= 0 { throw layer.configError("target_shape has more than one -1") }
            unknownAt = i
        } else {
            known *= d
        }
    }
    var out = target
    if unknownAt >= 0 {
        if elements < 0 { return out }
        guard known > 0, elements % known == 0 else {
            throw layer.shapeError("cannot reshape \(elements) elements per sample to \(describeShape(target))")
        }
        out[unknownAt] = elements / known
    } else if elements >= 0 && elements != known {
        throw layer.shapeError("cannot reshape \(elements) elements per sample to \(describeShape(target))")
    }
    return out
}

func perSampleCount(_ shape: [Int]) -> Int {
    var n = 1
    for d in shape.dropFirst() {
        if d < 0 { return -1 }
        n *= d
    }
    return n
}

/// Flattens every axis but the batch, in C order. With `channels_first` Keras first moves the channel axis
/// last, so that a model keeps its Dense weights when its data format is switched.
final class Flatten: Layer {
    let channelsFirst: Bool

    init(_ s: LayerSpec) throws(KedgeError) {
        channelsFirst = !(try s.config.channelsLast())
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        return [[inputShapes[0][0], perSampleCount(inputShapes[0])]]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        var x = inputs[0]
        let rank = x.rank
        if channelsFirst && rank > 2 {
            x = transpose(x, axes: [0] + Array(2..<rank) + [1])
        }
        return [x.reshaped(try outputShapes([x.shape])[0])]
    }
}

final class Reshape: Layer {
    let target: [Int]

    init(_ s: LayerSpec) throws(KedgeError) {
        target = try s.config.shape("target_shape")
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        return [[inputShapes[0][0]] + (try resolveTargetShape(target, elements: perSampleCount(inputShapes[0]), layer: self))]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        [inputs[0].reshaped(try outputShapes([inputs[0].shape])[0])]
    }
}

/// Permutes the non-batch axes; `dims` is 1-based as in Keras.
final class Permute: Layer {
    let dims: [Int]

    init(_ s: LayerSpec) throws(KedgeError) {
        dims = try s.config.shape("dims")
        super.init(spec: s)
        let sorted = dims.sorted()
        for (i, d) in sorted.enumerated() where d != i + 1 {
            throw configError("dims \(describeShape(dims)) is not a permutation of 1...\(dims.count)")
        }
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        guard s.count == dims.count + 1 else {
            throw shapeError("input has rank \(s.count) but dims \(describeShape(dims)) needs rank \(dims.count + 1)")
        }
        return [[s[0]] + dims.map { s[$0] }]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        [transpose(inputs[0], axes: [0] + dims)]
    }
}

/// (batch, features) -> (batch, n, features).
final class RepeatVector: Layer {
    let n: Int

    init(_ s: LayerSpec) throws(KedgeError) {
        n = try s.config.int("n")
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        guard s.count == 2 else { throw shapeError("input must have rank 2, has shape \(describeShape(s))") }
        return [[s[0], n, s[1]]]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let b = x.shape[0]
        let f = x.shape[1]
        var out = [Float]()
        out.reserveCapacity(b * n * f)
        for i in 0..<b {
            for _ in 0..<n { out.append(contentsOf: x.data[(i * f)..<((i + 1) * f)]) }
        }
        return [Tensor(shape: [b, n, f], data: out)]
    }
}
