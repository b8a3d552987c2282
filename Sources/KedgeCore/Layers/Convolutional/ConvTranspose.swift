// Conv1DTranspose, Conv2DTranspose, Conv3DTranspose (keras/src/layers/convolutional/base_conv_transpose.py):
// the output size from `compute_conv_transpose_output_shape` (output_padding or not), values as TensorFlow's
// `conv_transpose` gives them. Kernel (k..., filters, in). GEMM + col2im (Kernels/TransposedConvolution.swift).

final class ConvTranspose: Layer {
    var options: ConvOptions
    let filters: Int
    let outputPadding: [Int]?
    /// Keras's (k..., filters, in) kernel.
    var kernel: Tensor
    var bias: [Float]?
    var packed: TransposedConvWeights? = nil
    let kerasParameters: Int

    init(_ s: LayerSpec, rank: Int) throws(KedgeError) {
        options = try ConvOptions(s, rank: rank, allowCausal: false)
        try s.requireDefault("groups", is: 1)
        filters = try s.config.int("filters")
        outputPadding = s.config.has("output_padding") ? try s.config.ints("output_padding", count: rank) : nil
        kernel = try s.weight("kernel", shape: options.kernelSize + [filters, -1])
        bias = options.useBias ? try s.weight("bias", shape: [filters]).data : nil
        kerasParameters = kernel.count + (bias?.count ?? 0)
        super.init(spec: s)
        if let op = outputPadding {
            for i in 0..<rank where op[i] < 0 {
                throw configError("output_padding \(describeShape(op)) must not be negative")
            }
        }
    }

    var inChannels: Int { kernel.shape[options.rank + 1] }

    func lengths(_ spatial: [Int]) -> [(length: Int, padBefore: Int)] {
        (0..<options.rank).map { i in
            spatial[i] < 0
                ? (-1, 0)
                : convTransposeOutputLength(
                    spatial[i], window: options.kernelSize[i], stride: options.strides[i],
                    dilation: options.dilation[i], padding: options.padding, outputPadding: outputPadding?[i])
        }
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        let layout = options.layout
        try layout.checkRank(s, self)
        let c = layout.channels(s)
        if c >= 0 && c != inChannels {
            throw shapeError("input has \(c) channels but the kernel \(describeShape(kernel.shape)) expects \(inChannels)")
        }
        return [layout.shape(batch: s[0], spatial: lengths(layout.spatial(s)).map { $0.length }, channels: filters)]
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        pack()
        return out
    }

    func pack() {
        packed = TransposedConvWeights(
            kernel: kernel.data, window: options.window, inChannels: inChannels, outChannels: filters)
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        _ = try outputShapes([inputs[0].shape])
        if packed == nil { pack() }
        let w = packed!
        let x = options.layout.toChannelsLast(inputs[0])
        let r = options.rank
        let l = lengths(Array(x.shape[1...r]))
        let out = l.map { $0.length }
        let g = ConvGeometry(
            batch: x.shape[0], input: Dims3(trailing: Array(x.shape[1...r]), fill: 1),
            output: Dims3(trailing: out, fill: 1), window: options.window,
            stride: Dims3(trailing: options.strides, fill: 1), dilation: Dims3(trailing: options.dilation, fill: 1),
            padBefore: Dims3(trailing: l.map { $0.padBefore }, fill: 0))
        let act = options.fusedActivation
        let b = bias
        let y = Tensor(shape: [x.shape[0]] + out + [filters]) { o in
            if o.isEmpty { return }
            x.data.withUnsafeBufferPointer { xp in
                if let b {
                    b.withUnsafeBufferPointer { bp in
                        convolveTransposed(
                            xp.baseAddress!, geometry: g, weights: w, bias: bp.baseAddress!, activation: act,
                            out: o.baseAddress!)
                    }
                } else {
                    convolveTransposed(
                        xp.baseAddress!, geometry: g, weights: w, bias: nil, activation: act, out: o.baseAddress!)
                }
            }
        }
        return [options.finish(y)]
    }

    override var parameterCount: Int { kerasParameters }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        guard options.layout.channelsLast, options.activation.isLinear, scale.count == filters else { return false }
        scaleOutputChannels(&kernel.data, scale: scale, inner: inChannels)
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
