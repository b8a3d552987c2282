// Keras's activation layers (keras/src/layers/activations; ThresholdedReLU is Keras 2 only). The pointwise
// ones are one class around `Activation`, which the graph can fuse into a preceding conv/dense.

let activationBuilders: [LayerBuilder] = [
    LayerBuilder(["Activation"]) { s throws(KedgeError) in
        let a = try Activation.parse(s.config["activation"], kerasMajor: s.kerasMajor, layer: s.name)
        if case .softmax(let axis) = a { return SoftmaxLayer(s, axes: [axis], log: false) }
        if case .logSoftmax(let axis) = a { return SoftmaxLayer(s, axes: [axis], log: true) }
        return PointwiseActivation(s, a)
    },
    LayerBuilder(["ReLU"]) { s throws(KedgeError) in
        let maxValue: Float? = s.config.has("max_value") ? Float(try s.config.double("max_value")) : nil
        let slope = try s.config.float("negative_slope", default: 0)
        let threshold = try s.config.float("threshold", default: 0)
        let layer = PointwiseActivation(s, .relu(negativeSlope: slope, maxValue: maxValue, threshold: threshold))
        if let m = maxValue, m < 0 { throw layer.configError("max_value must not be negative") }
        if slope < 0 || threshold < 0 { throw layer.configError("negative_slope and threshold must not be negative") }
        return layer
    },
    LayerBuilder(["LeakyReLU"]) { s throws(KedgeError) in
        // Keras 3 writes negative_slope; Keras 1/2 wrote alpha (which Keras 3 still accepts). Both default to 0.3.
        let key = s.config.has("negative_slope") ? "negative_slope" : "alpha"
        let slope = try s.config.float(key, default: 0.3)
        return PointwiseActivation(s, .relu(negativeSlope: slope, maxValue: nil, threshold: 0))
    },
    LayerBuilder(["ELU"]) { s throws(KedgeError) in
        // Keras 3's ELU does not serialize alpha, so its files always reload with alpha = 1.
        PointwiseActivation(s, .elu(alpha: try s.config.float("alpha", default: 1)))
    },
    LayerBuilder(["ThresholdedReLU"]) { s throws(KedgeError) in
        // x * (x > theta): Keras's relu with that threshold and no slope or cap.
        let theta = try s.config.float("theta", default: 1)
        let layer = PointwiseActivation(s, .relu(negativeSlope: 0, maxValue: nil, threshold: theta))
        if theta < 0 { throw layer.configError("theta must not be negative") }
        return layer
    },
    LayerBuilder(["PReLU"], weights: { _ throws(KedgeError) in ["alpha"] }) { s throws(KedgeError) in try PReLU(s) },
    LayerBuilder(["Softmax"]) { s throws(KedgeError) in
        var axes: [Int] = [-1]
        if let a = s.config["axis"] {
            if let i = a.int {
                axes = [i]
            } else if a.array != nil {
                axes = try s.config.shape("axis")
            } else {
                throw s.config.error("axis", "must be an integer or a list of integers")
            }
        }
        return SoftmaxLayer(s, axes: axes, log: false)
    },
]

/// Any pointwise activation as a layer (Activation, ReLU, LeakyReLU, ELU, ThresholdedReLU).
final class PointwiseActivation: Layer {
    let activation: Activation

    init(_ s: LayerSpec, _ activation: Activation) {
        self.activation = activation
        super.init(spec: s)
    }

    override var activationForFusion: Activation? { activation }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        if activation.isLinear { return inputs }
        var y = inputs[0]
        activation.apply(&y)
        return [y]
    }
}

/// Softmax (or log-softmax) over one axis or several (Keras: exp(x - logsumexp(x, axes))).
final class SoftmaxLayer: Layer {
    let axes: [Int]
    let log: Bool

    init(_ s: LayerSpec, axes: [Int], log: Bool) {
        self.axes = axes
        self.log = log
        super.init(spec: s)
    }

    /// The axes as sorted non-negative indices.
    private func resolved(_ rank: Int) throws(KedgeError) -> [Int] {
        var out: [Int] = []
        for a in axes {
            let d = a < 0 ? a + rank : a
            guard d >= 0 && d < rank else { throw shapeError("axis \(a) is out of range for an input of rank \(rank)") }
            guard !out.contains(d) else { throw configError("axis \(describeAxes(axes)) repeats an axis") }
            out.append(d)
        }
        return out.sorted()
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        _ = try resolved(inputShapes[0].count)
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        let x = inputs[0]
        let ax = try resolved(x.rank)
        if ax.count == 1 {
            var y = x
            Activation.softmax(&y, axis: ax[0], log: log)
            return [y]
        }
        // Several axes: bring them together at the end (a no-op when they already are), then treat them as one.
        let others = (0..<x.rank).filter { !ax.contains($0) }
        let perm = others + ax
        var contiguous = true
        for (i, p) in perm.enumerated() where p != i { contiguous = false }
        var t = contiguous ? x : transpose(x, axes: perm)
        let shapeT = t.shape
        var n = 1
        for d in ax { n *= x.shape[d] }
        t = t.reshaped([n == 0 ? 0 : t.count / n, n])
        Activation.softmax(&t, axis: 1, log: log)
        t = t.reshaped(shapeT)
        if contiguous { return [t] }
        var inverse = [Int](repeating: 0, count: perm.count)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return [transpose(t, axes: inverse)]
    }
}

/// `x if x >= 0 else alpha * x`, alpha learned per element of the sample shape. Keras builds alpha with
/// shape `input_shape[1:]` and 1 on each of `shared_axes`, so a size-1 axis of alpha broadcasts.
final class PReLU: Layer {
    let alpha: Tensor

    init(_ s: LayerSpec) throws(KedgeError) {
        alpha = try s.weight("alpha")
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        var ok = s.count >= 2 && alpha.rank == s.count - 1
        if ok {
            for d in 1..<s.count where alpha.shape[d - 1] != 1 && s[d] >= 0 && alpha.shape[d - 1] != s[d] { ok = false }
        }
        if !ok {
            throw shapeError(
                "weight 'alpha' has shape \(describeShape(alpha.shape)), which does not fit an input of shape \(describeShape(s)) (alpha must have the input's shape without the batch axis, with 1 on shared axes)"
            )
        }
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        let x = inputs[0]
        _ = try outputShapes([x.shape])
        return [BroadcastBinary.combine(x, alpha.reshaped([1] + alpha.shape), .prelu)]
    }

    override var parameterCount: Int { alpha.count }
}
