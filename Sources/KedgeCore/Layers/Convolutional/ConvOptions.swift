// The hyper-parameters shared by Keras's convolution bases (base_conv.py, base_conv_transpose.py,
// base_depthwise_conv.py, base_separable_conv.py): kernel_size, strides, padding, data_format, dilation_rate,
// activation, use_bias.

struct ConvOptions {
    let layout: SpatialLayout
    let kernelSize: [Int]
    let strides: [Int]
    let dilation: [Int]
    let padding: PaddingMode
    var activation: Activation
    let useBias: Bool

    var rank: Int { layout.rank }
    var window: Dims3 { Dims3(trailing: kernelSize, fill: 1) }

    init(_ s: LayerSpec, rank: Int, allowCausal: Bool) throws(KedgeError) {
        let c = s.config
        layout = try c.spatialLayout(rank: rank)
        let ones = [Int](repeating: 1, count: rank)
        kernelSize = try c.positiveInts("kernel_size", count: rank)
        strides = try c.positiveInts("strides", count: rank, default: ones)
        dilation = try c.positiveInts("dilation_rate", count: rank, default: ones)
        padding = try c.padding(allowing: allowCausal ? ["valid", "same", "causal"] : ["valid", "same"])
        activation = try Activation.parse(c["activation"], kerasMajor: s.kerasMajor, layer: s.name)
        useBias = try c.bool("use_bias", default: true)
    }

    /// Forward (convolution) geometry of a channels-last input shape.
    func geometry(_ xShape: [Int]) -> ConvGeometry {
        ConvGeometry(
            batch: xShape[0], input: Dims3(trailing: Array(xShape[1...rank]), fill: 1), window: window,
            stride: Dims3(trailing: strides, fill: 1), dilation: Dims3(trailing: dilation, fill: 1), padding: padding)
    }

    /// Spatial output sizes of a forward convolution; unknown (-1) sizes stay unknown.
    func outputSpatial(_ spatial: [Int]) -> [Int] {
        (0..<rank).map { i in
            spatial[i] < 0
                ? -1
                : convOutputLength(
                    spatial[i], window: kernelSize[i], stride: strides[i], dilation: dilation[i], padding: padding
                ).length
        }
    }

    /// Applies the activation after the kernel when it could not be fused (softmax: on the last axis of the
    /// tensor in its own layout, as Keras does).
    func finish(_ y: Tensor) -> Tensor {
        var out = layout.fromChannelsLast(y)
        if !activation.isPointwise { activation.apply(&out) }
        return out
    }

    /// What the kernels fuse: pointwise activations only.
    var fusedActivation: Activation { activation.isPointwise ? activation : .linear }
}

/// Multiplies the entries of a flattened kernel whose output channel is `(i / inner) % channels` by `scale`.
func scaleOutputChannels(_ w: inout [Float], scale: [Float], inner: Int) {
    let n = scale.count
    for i in 0..<w.count { w[i] *= scale[(i / inner) % n] }
}

/// bias * scale + shift, with a missing bias read as zeros.
func foldedBias(_ bias: [Float]?, scale: [Float], shift: [Float]) -> [Float] {
    (0..<scale.count).map { (bias?[$0] ?? 0) * scale[$0] + shift[$0] }
}
