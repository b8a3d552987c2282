// SeparableConv1D, SeparableConv2D (keras/src/layers/convolutional/base_separable_conv.py): a depthwise
// convolution (kernel (k..., in, multiplier), no bias) then a 1x1 convolution (kernel (1..., in*multiplier,
// filters)) with the bias and activation, the latter fused into the GEMM.

final class SeparableConv: Layer {
    var options: ConvOptions
    let filters: Int
    let multiplier: Int
    var depthwiseKernel: Tensor
    /// (1..., in*multiplier, filters), used as an (in*multiplier) x filters matrix.
    var pointwiseKernel: Tensor
    var bias: [Float]?
    var packed: PackedWeights? = nil
    let kerasParameters: Int

    init(_ s: LayerSpec, rank: Int) throws(KedgeError) {
        options = try ConvOptions(s, rank: rank, allowCausal: rank == 1)
        try s.requireDefault("groups", is: 1)
        filters = try s.config.int("filters")
        multiplier = try s.config.int("depth_multiplier", default: 1)
        depthwiseKernel = try s.weight("depthwise_kernel", shape: options.kernelSize + [-1, multiplier])
        let mid = depthwiseKernel.shape[rank] * multiplier
        pointwiseKernel = try s.weight(
            "pointwise_kernel", shape: [Int](repeating: 1, count: rank) + [mid, filters])
        bias = options.useBias ? try s.weight("bias", shape: [filters]).data : nil
        kerasParameters = depthwiseKernel.count + pointwiseKernel.count + (bias?.count ?? 0)
        super.init(spec: s)
    }

    var inChannels: Int { depthwiseKernel.shape[options.rank] }
    var midChannels: Int { inChannels * multiplier }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        let layout = options.layout
        try layout.checkRank(s, self)
        let c = layout.channels(s)
        if c >= 0 && c != inChannels {
            throw shapeError(
                "input has \(c) channels but the depthwise kernel \(describeShape(depthwiseKernel.shape)) expects \(inChannels)")
        }
        return [layout.shape(batch: s[0], spatial: options.outputSpatial(layout.spatial(s)), channels: filters)]
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        pack()
        return out
    }

    func pack() {
        packed = PackedWeights(k: midChannels, n: filters, rowMajor: pointwiseKernel.data, bias: bias)
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        _ = try outputShapes([inputs[0].shape])
        if packed == nil { pack() }
        let w = packed!
        let x = options.layout.toChannelsLast(inputs[0])
        let mid = depthwiseForward(
            x, options: options, kernel: depthwiseKernel.data, multiplier: multiplier, bias: nil, activation: .linear)
        let k = midChannels
        let m = mid.count / max(k, 1)
        let act = options.fusedActivation
        let y = Tensor(shape: Array(mid.shape.dropLast()) + [filters]) { out in
            if out.isEmpty { return }
            mid.data.withUnsafeBufferPointer { mp in
                gemm(m: m, a: mp.baseAddress!, lda: k, weights: w, c: out.baseAddress!, ldc: filters, activation: act)
            }
        }
        return [options.finish(y)]
    }

    override var parameterCount: Int { kerasParameters }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        guard options.layout.channelsLast, options.activation.isLinear, scale.count == filters else { return false }
        scaleOutputChannels(&pointwiseKernel.data, scale: scale, inner: 1)
        bias = foldedBias(bias, scale: scale, shift: shift)
        pack()
        return true
    }

    override func absorbActivation(_ a: Activation) -> Bool {
        guard options.activation.isLinear, a.isPointwise else { return false }
        options.activation = a
        return true
    }
}
