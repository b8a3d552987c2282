// Conv1D, Conv2D, Conv3D (keras/src/layers/convolutional/conv{1,2,3}d.py over base_conv.py): strides, dilation,
// valid/same padding (causal for Conv1D), groups, channels_first. Runs on the im2col GEMM (Kernels/Convolution.swift).

final class Conv: Layer {
    var options: ConvOptions
    let filters: Int
    let groups: Int
    /// Keras's (k..., in/groups, filters) kernel.
    var kernel: Tensor
    var bias: [Float]?
    var packed: ConvWeights? = nil
    let kerasParameters: Int

    init(_ s: LayerSpec, rank: Int) throws(KedgeError) {
        options = try ConvOptions(s, rank: rank, allowCausal: rank == 1)
        filters = try s.config.int("filters")
        groups = try s.config.int("groups", default: 1)
        kernel = try s.weight("kernel", shape: options.kernelSize + [-1, filters])
        bias = options.useBias ? try s.weight("bias", shape: [filters]).data : nil
        kerasParameters = kernel.count + (bias?.count ?? 0)
        super.init(spec: s)
        guard filters > 0, groups > 0, filters % groups == 0 else {
            throw configError("filters (\(filters)) must be a positive multiple of groups (\(groups))")
        }
    }

    var inChannels: Int { kernel.shape[options.rank] * groups }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        let layout = options.layout
        try layout.checkRank(s, self)
        let c = layout.channels(s)
        if c >= 0 && c != inChannels {
            throw shapeError(
                "input has \(c) channels but the kernel \(describeShape(kernel.shape)) with groups=\(groups) expects \(inChannels)")
        }
        return [layout.shape(batch: s[0], spatial: options.outputSpatial(layout.spatial(s)), channels: filters)]
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        pack()
        return out
    }

    func pack() {
        packed = ConvWeights(
            kernel: kernel.data, window: options.window, inChannelsPerGroup: kernel.shape[options.rank],
            outChannels: filters, groups: groups, bias: bias)
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        _ = try outputShapes([inputs[0].shape])
        if packed == nil { pack() }
        let w = packed!
        let x = options.layout.toChannelsLast(inputs[0])
        let g = options.geometry(x.shape)
        let outShape = [g.batch] + options.outputSpatial(Array(x.shape[1...options.rank])) + [filters]
        let act = options.fusedActivation
        let y = Tensor(shape: outShape) { out in
            if out.isEmpty { return }
            x.data.withUnsafeBufferPointer { xp in
                convolve(xp.baseAddress!, geometry: g, weights: w, activation: act, out: out.baseAddress!)
            }
        }
        return [options.finish(y)]
    }

    override var parameterCount: Int { kerasParameters }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        guard options.layout.channelsLast, options.activation.isLinear, scale.count == filters else { return false }
        scaleOutputChannels(&kernel.data, scale: scale, inner: 1)
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
