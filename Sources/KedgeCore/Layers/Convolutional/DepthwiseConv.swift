// DepthwiseConv1D, DepthwiseConv2D (keras/src/layers/convolutional/base_depthwise_conv.py): one filter per input
// channel (times depth_multiplier), kernel (k..., in, multiplier), output channel c * multiplier + m.
// A direct SIMD kernel over channels (Kernels/DepthwiseConvolution.swift).

final class DepthwiseConv: Layer {
    var options: ConvOptions
    let multiplier: Int
    /// Keras's (k..., in, multiplier) kernel.
    var kernel: Tensor
    var bias: [Float]?
    let kerasParameters: Int

    init(_ s: LayerSpec, rank: Int) throws(KedgeError) {
        options = try ConvOptions(s, rank: rank, allowCausal: rank == 1)
        try s.requireDefault("groups", is: 1)
        multiplier = try s.config.int("depth_multiplier", default: 1)
        let k = try s.weight("depthwise_kernel", shape: options.kernelSize + [-1, multiplier])
        kernel = k
        let b = options.useBias ? try s.weight("bias", shape: [k.shape[rank] * multiplier]).data : nil
        bias = b
        kerasParameters = k.count + (b?.count ?? 0)
        super.init(spec: s)
    }

    var inChannels: Int { kernel.shape[options.rank] }
    var outChannels: Int { inChannels * multiplier }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        let layout = options.layout
        try layout.checkRank(s, self)
        let c = layout.channels(s)
        if c >= 0 && c != inChannels {
            throw shapeError(
                "input has \(c) channels but the depthwise kernel \(describeShape(kernel.shape)) expects \(inChannels)")
        }
        return [layout.shape(batch: s[0], spatial: options.outputSpatial(layout.spatial(s)), channels: outChannels)]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        _ = try outputShapes([inputs[0].shape])
        let x = options.layout.toChannelsLast(inputs[0])
        return [options.finish(depthwiseForward(x, options: options, kernel: kernel.data, multiplier: multiplier, bias: bias, activation: options.fusedActivation))]
    }

    override var parameterCount: Int { kerasParameters }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        guard options.layout.channelsLast, options.activation.isLinear, scale.count == outChannels else { return false }
        scaleOutputChannels(&kernel.data, scale: scale, inner: 1)
        bias = foldedBias(bias, scale: scale, shift: shift)
        return true
    }

    override func absorbActivation(_ a: Activation) -> Bool {
        guard options.activation.isLinear, a.isPointwise else { return false }
        options.activation = a
        return true
    }
}

/// The depthwise stage on a channels-last input: expands channels by the multiplier when it is above 1, then
/// runs the direct kernel. Returns (batch, out spatial..., in * multiplier).
func depthwiseForward(
    _ x: Tensor, options: ConvOptions, kernel: [Float], multiplier: Int, bias: [Float]?, activation: Activation
) -> Tensor {
    let g = options.geometry(x.shape)
    let c = x.shape[x.rank - 1]
    let co = c * multiplier
    var src = x
    if multiplier > 1 {
        let pixels = x.count / max(c, 1)
        src = Tensor(shape: Array(x.shape.dropLast()) + [co]) { out in
            if out.isEmpty { return }
            x.data.withUnsafeBufferPointer { xp in
                expandChannels(xp.baseAddress!, pixels: pixels, channels: c, multiplier: multiplier, out: out.baseAddress!)
            }
        }
    }
    let outShape = [g.batch] + options.outputSpatial(Array(x.shape[1...options.rank])) + [co]
    return Tensor(shape: outShape) { out in
        if out.isEmpty { return }
        src.data.withUnsafeBufferPointer { xp in
            kernel.withUnsafeBufferPointer { kp in
                if let bias {
                    bias.withUnsafeBufferPointer { bp in
                        depthwiseConvolve(
                            xp.baseAddress!, channels: co, geometry: g, kernel: kp.baseAddress!, bias: bp.baseAddress!,
                            activation: activation, out: out.baseAddress!)
                    }
                } else {
                    depthwiseConvolve(
                        xp.baseAddress!, channels: co, geometry: g, kernel: kp.baseAddress!, bias: nil,
                        activation: activation, out: out.baseAddress!)
                }
            }
        }
    }
}
