// Keras's recurrent layers (keras/src/layers/rnn): SimpleRNN, LSTM, GRU, ConvLSTM1D/2D/3D and the generic RNN
// over their cells. One `RecurrentLayer` runs the time loop (masks, go_backwards, initial and stateful states);
// the cells hold the weights and compute one step for a whole batch.

let recurrentBuilders: [LayerBuilder] = [
    LayerBuilder(["SimpleRNN"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["LSTM"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["GRU"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["ConvLSTM1D"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["ConvLSTM2D"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["ConvLSTM3D"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["RNN"], weights: recurrentWeightNames, make: { s throws(KedgeError) in try RecurrentLayer(s) }),
    LayerBuilder(["Bidirectional"], weights: bidirectionalWeightNames, make: { s throws(KedgeError) in try Bidirectional(s) }),
    LayerBuilder(["TimeDistributed"], weights: timeDistributedWeightNames, make: { s throws(KedgeError) in try TimeDistributed(s) }),
]

let recurrentClassNames = ["SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "RNN"]
let recurrentCellClassNames = ["SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells"]

/// The cell configs of a recurrent layer: its own config for SimpleRNN/LSTM/GRU/ConvLSTM, the `cell` of an RNN
/// (one config per cell of a StackedRNNCells).
func recurrentCellConfigs(_ c: LayerConfig) throws(KedgeError) -> [LayerConfig] {
    guard c.className == "RNN" else { return [c] }
    guard let cell = c["cell"], let cls = cell["class_name"]?.string, let obj = cell["config"]?.object else {
        throw c.error("cell", "is missing or is not a serialized cell")
    }
    if cls == "StackedRNNCells" {
        guard let list = obj["cells"]?.array, !list.isEmpty else {
            throw c.error("cell", "is a StackedRNNCells without cells")
        }
        var out: [LayerConfig] = []
        for e in list {
            guard let ecls = e["class_name"]?.string, let eobj = e["config"]?.object else {
                throw c.error("cell", "holds a cell that is not serialized as {class_name, config}")
            }
            out.append(try cellConfig(ecls, eobj, rnn: c))
        }
        return out
    }
    return [try cellConfig(cls, obj, rnn: c)]
}

private func cellConfig(_ cls: String, _ obj: JSONObject, rnn: LayerConfig) throws(KedgeError) -> LayerConfig {
    guard ["SimpleRNNCell", "LSTMCell", "GRUCell"].contains(cls) else {
        throw KedgeError(
            .unsupportedLayer,
            "layer '\(rnn.layerName)' (RNN): cell class '\(cls)' is not supported; supported: SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells of them"
        )
    }
    return LayerConfig(layerName: rnn.layerName, className: cls, json: obj)
}

func recurrentWeightNames(_ c: LayerConfig) throws(KedgeError) -> [String] {
    let cells = try recurrentCellConfigs(c)
    var out: [String] = []
    for (i, cc) in cells.enumerated() {
        let prefix = cells.count > 1 ? "cell_\(i)_" : ""
        out += [prefix + "kernel", prefix + "recurrent_kernel"]
        if try cc.bool("use_bias", default: true) { out.append(prefix + "bias") }
    }
    return out
}

// MARK: - matmul

/// A weight matrix packed once at load for the GEMM: `y[rows × n] = x[rows × k] · W + bias`.
struct PackedMatrix {
    let weights: PackedWeights

    /// `w` is row-major k × n; `columns` picks a range of its columns (GRU's split recurrent kernel).
    init(_ w: [Float], k: Int, n: Int, columns: Range<Int>? = nil, bias: [Float] = []) {
        let cols = columns ?? 0..<n
        let b: [Float]? = bias.isEmpty ? nil : bias
        weights = PackedWeights(k: k, n: cols.count, bias: b) { r, c in w[r * n + cols.lowerBound + c] }
    }

    var n: Int { weights.n }

    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        gemm(m: rows, a: x, lda: weights.k, weights: weights, c: y, ldc: weights.n, activation: .linear)
    }

    func apply(_ x: [Float], rows: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * weights.n) { buf, initialized in
            x.withUnsafeBufferPointer { apply($0.baseAddress!, rows: rows, into: buf.baseAddress!) }
            initialized = rows * weights.n
        }
    }
}

func pointwiseActivation(_ s: LayerSpec, _ c: LayerConfig, _ key: String, default d: String) throws(KedgeError) -> Activation {
    let a = try Activation.parse(c.has(key) ? c[key] : .string(d), kerasMajor: s.kerasMajor, layer: s.name)
    guard a.isPointwise else {
        throw KedgeError(
            .unsupportedLayer,
            "layer '\(s.name)' (\(s.className)): \(key) softmax/log_softmax is not supported in a recurrent cell; supported: pointwise activations")
    }
    return a
}

// MARK: - cells

/// One recurrent cell: weights and the step for a whole batch. Rows are samples (or, for ConvLSTM, one image
/// per sample); `project` applies the input kernel to many rows at once, so a layer can project every timestep
/// in one GEMM before the sequential loop.
class RecurrentCell {
    /// Floats per sample of one timestep's input.
    var inputSize = 0
    /// Floats per sample of `project`'s result.
    var projectedSize = 0
    /// Floats per sample of the output (the first state for every Keras cell).
    var outputSize = 0
    /// Floats per sample of each state.
    var stateSizes: [Int] = []
    /// Per-sample shape of the output (without batch), for the layer's output shape.
    var outputShape: [Int] = []

    /// Checks the per-step input shape (without batch and time) and fixes the sizes.
    func build(stepShape: [Int], layer: Layer) throws(KedgeError) {}

    /// Rebuilds for concrete per-step shapes when sizes depend on them (ConvLSTM's spatial dims).
    func resolve(stepShape: [Int], layer: Layer) throws(KedgeError) {}

    /// True when the output shape depends on the input's spatial dims, so every call re-derives it.
    var spatial: Bool { false }

    func project(_ x: [Float], rows: Int) -> [Float] { [] }

    /// One step: `xp` is `project`'s result for the batch (`batch × projectedSize`); updates `states` and
    /// returns the output (`batch × outputSize`).
    func step(_ xp: UnsafePointer<Float>, states: inout [[Float]], batch: Int) -> [Float] { [] }

    var parameterCount: Int { 0 }
}

func checkFeatures(_ stepShape: [Int], kernel: Tensor, layer: Layer) throws(KedgeError) {
    guard stepShape.count == 1 else {
        throw layer.shapeError(
            "input must be (batch, timesteps, features); one step has shape \(describeShape(stepShape))")
    }
    if stepShape[0] >= 0 && stepShape[0] != kernel.shape[0] {
        throw layer.shapeError(
            "input has \(stepShape[0]) features but the kernel has shape \(describeShape(kernel.shape))")
    }
}

final class SimpleRNNCell: RecurrentCell {
    let units: Int
    let activation: Activation
    let kernel: PackedMatrix
    let recurrent: PackedMatrix
    let parameters: Int

    init(_ s: LayerSpec, _ c: LayerConfig, prefix: String) throws(KedgeError) {
        units = try c.int("units")
        activation = try pointwiseActivation(s, c, "activation", default: "tanh")
        let k = try s.weight(prefix + "kernel", shape: [-1, units])
        let r = try s.weight(prefix + "recurrent_kernel", shape: [units, units])
        let b = try c.bool("use_bias", default: true) ? try s.weight(prefix + "bias", shape: [units]).data : []
        kernel = PackedMatrix(k.data, k: k.shape[0], n: units, bias: b)
        recurrent = PackedMatrix(r.data, k: units, n: units)
        parameters = k.count + r.count + b.count
        super.init()
        inputSize = k.shape[0]
        outputSize = units
        projectedSize = units
        stateSizes = [units]
        outputShape = [units]
    }

    override func build(stepShape: [Int], layer: Layer) throws(KedgeError) {
        try checkFeatures(stepShape, kernel: Tensor(shape: [inputSize, units]), layer: layer)
    }

    override func project(_ x: [Float], rows: Int) -> [Float] { kernel.apply(x, rows: rows) }

    override func step(_ xp: UnsafePointer<Float>, states: inout [[Float]], batch: Int) -> [Float] {
        var h = recurrent.apply(states[0], rows: batch)
        h.withUnsafeMutableBufferPointer { hp in
            for i in 0..<(batch * units) { hp[i] += xp[i] }
            activation.applyPointwise(hp.baseAddress!, count: batch * units)
        }
        states[0] = h
        return h
    }

    override var parameterCount: Int { parameters }
}

final class LSTMCell: RecurrentCell {
    let units: Int
    let activation: Activation
    let recurrentActivation: Activation
    let kernel: PackedMatrix
    let recurrent: PackedMatrix
    let parameters: Int

    init(_ s: LayerSpec, _ c: LayerConfig, prefix: String) throws(KedgeError) {
        units = try c.int("units")
        activation = try pointwiseActivation(s, c, "activation", default: "tanh")
        recurrentActivation = try pointwiseActivation(
            s, c, "recurrent_activation", default: s.kerasMajor >= 3 ? "sigmoid" : "hard_sigmoid")
        let k = try s.weight(prefix + "kernel", shape: [-1, 4 * units])
        let r = try s.weight(prefix + "recurrent_kernel", shape: [units, 4 * units])
        let b = try c.bool("use_bias", default: true) ? try s.weight(prefix + "bias", shape: [4 * units]).data : []
        kernel = PackedMatrix(k.data, k: k.shape[0], n: 4 * units, bias: b)
        recurrent = PackedMatrix(r.data, k: units, n: 4 * units)
        parameters = k.count + r.count + b.count
        super.init()
        inputSize = k.shape[0]
        outputSize = units
        projectedSize = 4 * units
        stateSizes = [units, units]
        outputShape = [units]
    }

    override func build(stepShape: [Int], layer: Layer) throws(KedgeError) {
        try checkFeatures(stepShape, kernel: Tensor(shape: [inputSize, 4 * units]), layer: layer)
    }

    override func project(_ x: [Float], rows: Int) -> [Float] { kernel.apply(x, rows: rows) }

    override func step(_ xp: UnsafePointer<Float>, states: inout [[Float]], batch: Int) -> [Float] {
        let u = units
        var z = recurrent.apply(states[0], rows: batch)
        var h = [Float](repeating: 0, count: batch * u)
        var c = states[1]
        z.withUnsafeMutableBufferPointer { zp in
            let z0 = zp.baseAddress!
            for i in 0..<(batch * 4 * u) { z0[i] += xp[i] }
            c.withUnsafeMutableBufferPointer { cp in
                for b in 0..<batch {
                    let g = z0 + b * 4 * u
                    recurrentActivation.applyPointwise(g, count: 2 * u)  // i, f
                    activation.applyPointwise(g + 2 * u, count: u)  // candidate
                    recurrentActivation.applyPointwise(g + 3 * u, count: u)  // o
                    let cb = cp.baseAddress! + b * u
                    for j in 0..<u {
                        cb[j] = g[u + j] * cb[j] + g[j] * g[2 * u + j]
                        g[j] = cb[j]
                    }
                    activation.applyPointwise(g, count: u)
                    for j in 0..<u { h[b * u + j] = g[3 * u + j] * g[j] }
                }
            }
        }
        states[0] = h
        states[1] = c
        return h
    }

    override var parameterCount: Int { parameters }
}

final class GRUCell: RecurrentCell {
    let units: Int
    let activation: Activation
    let recurrentActivation: Activation
    let resetAfter: Bool
    /// Input kernel with the input bias.
    let kernel: PackedMatrix
    /// reset_after: all three gates, with the recurrent bias. Otherwise only z and r.
    let recurrent: PackedMatrix
    /// reset_before: the candidate's columns, applied to r * h.
    let recurrentCandidate: PackedMatrix?
    let parameters: Int

    init(_ s: LayerSpec, _ c: LayerConfig, prefix: String) throws(KedgeError) {
        units = try c.int("units")
        let u = units
        activation = try pointwiseActivation(s, c, "activation", default: "tanh")
        recurrentActivation = try pointwiseActivation(
            s, c, "recurrent_activation", default: s.kerasMajor >= 3 ? "sigmoid" : "hard_sigmoid")
        // Keras 2.0 had no reset_after (the gate applied before the product); it defaults to true since tf.keras 2.
        resetAfter = try c.bool("reset_after", default: s.kerasMajor >= 3)
        let k = try s.weight(prefix + "kernel", shape: [-1, 3 * u])
        let r = try s.weight(prefix + "recurrent_kernel", shape: [u, 3 * u])
        var inputBias: [Float] = []
        var recurrentBias: [Float] = []
        if try c.bool("use_bias", default: true) {
            if resetAfter {
                let b = try s.weight(prefix + "bias", shape: [2, 3 * u]).data
                inputBias = Array(b[0..<(3 * u)])
                recurrentBias = Array(b[(3 * u)...])
            } else {
                inputBias = try s.weight(prefix + "bias", shape: [3 * u]).data
            }
        }
        kernel = PackedMatrix(k.data, k: k.shape[0], n: 3 * u, bias: inputBias)
        if resetAfter {
            recurrent = PackedMatrix(r.data, k: u, n: 3 * u, bias: recurrentBias)
            recurrentCandidate = nil
        } else {
            recurrent = PackedMatrix(r.data, k: u, n: 3 * u, columns: 0..<(2 * u))
            recurrentCandidate = PackedMatrix(r.data, k: u, n: 3 * u, columns: (2 * u)..<(3 * u))
        }
        parameters = k.count + r.count + inputBias.count + recurrentBias.count
        super.init()
        inputSize = k.shape[0]
        outputSize = u
        projectedSize = 3 * u
        stateSizes = [u]
        outputShape = [u]
    }

    override func build(stepShape: [Int], layer: Layer) throws(KedgeError) {
        try checkFeatures(stepShape, kernel: Tensor(shape: [inputSize, 3 * units]), layer: layer)
    }

    override func project(_ x: [Float], rows: Int) -> [Float] { kernel.apply(x, rows: rows) }

    override func step(_ xp: UnsafePointer<Float>, states: inout [[Float]], batch: Int) -> [Float] {
        let u = units
        let h = states[0]
        let rn = recurrent.n
        var r = recurrent.apply(h, rows: batch)
        // z and r gates in place in `r`; their activations per sample.
        for b in 0..<batch {
            for j in 0..<(2 * u) { r[b * rn + j] += xp[b * 3 * u + j] }
        }
        r.withUnsafeMutableBufferPointer { rp in
            for b in 0..<batch { recurrentActivation.applyPointwise(rp.baseAddress! + b * rn, count: 2 * u) }
        }
        var hh = [Float](repeating: 0, count: batch * u)
        if resetAfter {
            for b in 0..<batch {
                for j in 0..<u { hh[b * u + j] = xp[b * 3 * u + 2 * u + j] + r[b * rn + u + j] * r[b * rn + 2 * u + j] }
            }
        } else {
            var rh = [Float](repeating: 0, count: batch * u)
            for b in 0..<batch { for j in 0..<u { rh[b * u + j] = r[b * rn + u + j] * h[b * u + j] } }
            hh = recurrentCandidate!.apply(rh, rows: batch)
            for b in 0..<batch { for j in 0..<u { hh[b * u + j] += xp[b * 3 * u + 2 * u + j] } }
        }
        hh.withUnsafeMutableBufferPointer { activation.applyPointwise($0.baseAddress!, count: batch * u) }
        var out = [Float](repeating: 0, count: batch * u)
        for b in 0..<batch {
            for j in 0..<u {
                let z = r[b * rn + j]
                out[b * u + j] = z * h[b * u + j] + (1 - z) * hh[b * u + j]
            }
        }
        states[0] = out
        return out
    }

    override var parameterCount: Int { parameters }
}

/// ConvLSTM1D/2D/3D: the LSTM gates computed by convolutions (input: the layer's strides, padding and dilation;
/// recurrent: stride 1, `same`). Works channels_last; the layer transposes channels_first data around it.
final class ConvLSTMCell: RecurrentCell {
    let rank: Int
    let filters: Int
    let kernelSize: [Int]
    let strides: [Int]
    let dilation: [Int]
    let padding: PaddingMode
    let activation: Activation
    let recurrentActivation: Activation
    let inChannels: Int
    let kernel: ConvWeights
    let recurrent: ConvWeights
    let parameters: Int
    var inSpatial: [Int] = []
    var outSpatial: [Int] = []

    init(_ s: LayerSpec, _ c: LayerConfig, rank: Int) throws(KedgeError) {
        self.rank = rank
        filters = try c.int("filters")
        // Geometry read as Conv reads it (positive sizes, padding in any case), so both refuse the same configs.
        kernelSize = try c.positiveInts("kernel_size", count: rank)
        strides = try c.positiveInts("strides", count: rank, default: [Int](repeating: 1, count: rank))
        dilation = try c.positiveInts("dilation_rate", count: rank, default: [Int](repeating: 1, count: rank))
        padding = try c.padding()
        activation = try pointwiseActivation(s, c, "activation", default: "tanh")
        recurrentActivation = try pointwiseActivation(
            s, c, "recurrent_activation", default: s.kerasMajor >= 3 ? "sigmoid" : "hard_sigmoid")
        let k = try s.weight("kernel", shape: kernelSize + [-1, 4 * filters])
        let r = try s.weight("recurrent_kernel", shape: kernelSize + [filters, 4 * filters])
        let b = try c.bool("use_bias", default: true) ? try s.weight("bias", shape: [4 * filters]).data : []
        inChannels = k.shape[rank]
        let window = Dims3(trailing: kernelSize, fill: 1)
        kernel = ConvWeights(
            kernel: k.data, window: window, inChannelsPerGroup: inChannels, outChannels: 4 * filters, groups: 1,
            bias: b.isEmpty ? nil : b)
        recurrent = ConvWeights(
            kernel: r.data, window: window, inChannelsPerGroup: filters, outChannels: 4 * filters, groups: 1, bias: nil)
        parameters = k.count + r.count + b.count
        super.init()
        if strides.contains(where: { $0 != 1 }) && dilation.contains(where: { $0 != 1 }) {
            throw KedgeError(
                .invalidConfig, "layer '\(s.name)' (\(s.className)): strides and dilation_rate cannot both exceed 1")
        }
    }

    override var spatial: Bool { true }

    override func build(stepShape: [Int], layer: Layer) throws(KedgeError) {
        guard stepShape.count == rank + 1 else {
            throw layer.shapeError(
                "input must have rank \(rank + 3) (batch, time, \(rank) spatial axes, channels); one step has shape \(describeShape(stepShape))")
        }
        inSpatial = Array(stepShape[0..<rank])
        if stepShape[rank] >= 0 && stepShape[rank] != inChannels {
            throw layer.shapeError("input has \(stepShape[rank]) channels but the kernel expects \(inChannels)")
        }
        outSpatial = []
        for d in 0..<rank {
            let n = inSpatial[d]
            if n < 0 { outSpatial.append(-1); continue }
            let (len, _) = convOutputLength(n, window: kernelSize[d], stride: strides[d], dilation: dilation[d], padding: padding)
            guard len > 0 else {
                throw layer.shapeError("spatial size \(n) is smaller than the dilated kernel along axis \(d + 1)")
            }
            outSpatial.append(len)
        }
        outputShape = outSpatial + [filters]
        if !inSpatial.contains(where: { $0 < 0 }) {
            inputSize = Tensor.elementCount(inSpatial) * inChannels
            let o = Tensor.elementCount(outSpatial)
            projectedSize = o * 4 * filters
            outputSize = o * filters
            stateSizes = [outputSize, outputSize]
        }
    }

    override func resolve(stepShape: [Int], layer: Layer) throws(KedgeError) {
        if Array(stepShape[0..<rank]) != inSpatial || inputSize == 0 { try build(stepShape: stepShape, layer: layer) }
    }

    private func convolve(_ x: [Float], images: Int, spatial: [Int], weights: ConvWeights, stride: [Int], dilation: [Int], padding: PaddingMode) -> [Float] {
        let g = ConvGeometry(
            batch: images, input: Dims3(trailing: spatial, fill: 1), window: weights.window,
            stride: Dims3(trailing: stride, fill: 1), dilation: Dims3(trailing: dilation, fill: 1), padding: padding)
        let count = g.outputPixels * weights.outChannels
        return [Float](unsafeUninitializedCapacity: count) { buf, initialized in
            x.withUnsafeBufferPointer { xp in
                KedgeCore.convolve(xp.baseAddress!, geometry: g, weights: weights, activation: .linear, out: buf.baseAddress!)
            }
            initialized = count
        }
    }

    override func project(_ x: [Float], rows: Int) -> [Float] {
        convolve(x, images: rows, spatial: inSpatial, weights: kernel, stride: strides, dilation: dilation, padding: padding)
    }

    override func step(_ xp: UnsafePointer<Float>, states: inout [[Float]], batch: Int) -> [Float] {
        let f = filters
        let ones = [Int](repeating: 1, count: rank)
        var z = convolve(states[0], images: batch, spatial: outSpatial, weights: recurrent, stride: ones, dilation: ones, padding: .same)
        let positions = batch * Tensor.elementCount(outSpatial)
        var h = [Float](repeating: 0, count: positions * f)
        var c = states[1]
        z.withUnsafeMutableBufferPointer { zp in
            let z0 = zp.baseAddress!
            for i in 0..<(positions * 4 * f) { z0[i] += xp[i] }
            for p in 0..<positions {
                let g = z0 + p * 4 * f
                recurrentActivation.applyPointwise(g, count: 2 * f)
                activation.applyPointwise(g + 2 * f, count: f)
                recurrentActivation.applyPointwise(g + 3 * f, count: f)
                for j in 0..<f {
                    c[p * f + j] = g[f + j] * c[p * f + j] + g[j] * g[2 * f + j]
                    g[j] = c[p * f + j]
                }
                activation.applyPointwise(g, count: f)
                for j in 0..<f { h[p * f + j] = g[3 * f + j] * g[j] }
            }
        }
        states[0] = h
        states[1] = c
        return h
    }

    override var parameterCount: Int { parameters }
}

// MARK: - the layer

/// SimpleRNN, LSTM, GRU, ConvLSTM1D/2D/3D and RNN(cell): the time loop around one cell (or a stack of cells).
final class RecurrentLayer: Layer {
    let cells: [RecurrentCell]
    let returnSequences: Bool
    let returnState: Bool
    var goBackwards: Bool
    let stateful: Bool
    /// Keras's `zero_output_for_mask`: masked steps output zeros instead of the previous output (Bidirectional
    /// forces it to `return_sequences`).
    var zeroOutputForMask: Bool
    /// channels_first ConvLSTM: inputs and outputs are transposed around the channels_last cell.
    let channelsFirst: Bool
    let convRank: Int
    let kerasMajor: Int
    /// Stateful layers keep their final states here between calls (per cell, per state).
    var keptStates: [[[Float]]]? = nil
    var keptBatch = 0

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        guard s.kerasMajor >= 2 || c.has("units") || c.has("filters") else {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(s.name)' (\(s.className)) comes from Keras 1, whose recurrent weights (W_i, U_i, ...) Kedge does not read; supported: Keras 2 and 3 files"
            )
        }
        returnSequences = try c.bool("return_sequences", default: false)
        returnState = try c.bool("return_state", default: false)
        goBackwards = try c.bool("go_backwards", default: false)
        stateful = try c.bool("stateful", default: false)
        zeroOutputForMask = try c.bool("zero_output_for_mask", default: false)
        if try c.bool("time_major", default: false) {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(s.name)' (\(s.className)): option time_major=true is not supported; supported: time_major=false (batch, time, ...)")
        }
        var cells: [RecurrentCell] = []
        var rank = 0
        var cf = false
        switch s.className {
        case "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D":
            rank = s.className == "ConvLSTM1D" ? 1 : s.className == "ConvLSTM2D" ? 2 : 3
            cf = !(try c.channelsLast())
            cells.append(try ConvLSTMCell(s, c, rank: rank))
        default:
            let configs = try recurrentCellConfigs(c)
            for (i, cc) in configs.enumerated() {
                let prefix = configs.count > 1 ? "cell_\(i)_" : ""
                let kind = cc.className.utf8HasSuffix("Cell") ? cc.className.utf8Dropping(4, fromEnd: true) : cc.className
                switch kind {
                case "SimpleRNN": cells.append(try SimpleRNNCell(s, cc, prefix: prefix))
                case "LSTM": cells.append(try LSTMCell(s, cc, prefix: prefix))
                case "GRU": cells.append(try GRUCell(s, cc, prefix: prefix))
                default: throw KedgeError(.internalError, "no recurrent cell for '\(cc.className)'")
                }
            }
        }
        self.cells = cells
        convRank = rank
        channelsFirst = cf
        kerasMajor = s.kerasMajor
        super.init(spec: s)
    }

    var stateCount: Int {
        var n = 0
        for c in cells { n += c.stateSizes.count }
        return n
    }

    /// The per-step shape (without batch and time) in the cell's channels_last layout.
    func stepShape(_ input: [Int]) -> [Int] {
        var s = Array(input.dropFirst(2))
        if channelsFirst && s.count > 1 { s = Array(s.dropFirst()) + [s[0]] }
        return s
    }

    func layoutOutput(_ shape: [Int]) -> [Int] {
        guard channelsFirst, shape.count > 1 else { return shape }
        return [shape[shape.count - 1]] + Array(shape.dropLast())
    }

    func shapes(_ input: [Int], build: Bool) throws(KedgeError) -> [[Int]] {
        guard input.count >= 3 else {
            throw shapeError("input must have rank >= 3 (batch, timesteps, ...); got \(describeShape(input))")
        }
        var step = stepShape(input)
        for (i, cell) in cells.enumerated() {
            if build || cell.spatial { try cell.build(stepShape: step, layer: self) }
            if i + 1 < cells.count { step = cell.outputShape }
        }
        let b = input[0]
        let out = layoutOutput(cells[cells.count - 1].outputShape)
        var result: [[Int]] = [returnSequences ? [b, input[1]] + out : [b] + out]
        if returnState {
            for cell in cells { for _ in cell.stateSizes { result.append([b] + layoutOutput(cell.outputShape)) } }
        }
        return result
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try shapes(inputShapes[0], build: false)
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try checkStateInputs(inputShapes)
        return try shapes(inputShapes[0], build: true)
    }

    private func checkStateInputs(_ inputShapes: [[Int]]) throws(KedgeError) {
        let extra = inputShapes.count - 1
        if extra != 0 && extra != stateCount {
            throw shapeError("takes a sequence and \(stateCount) initial state(s), got \(inputShapes.count) inputs")
        }
    }

    override func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try checkKeywords(arguments)
        return try build(inputShapes)
    }

    override func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try checkKeywords(arguments)
        try checkStateInputs(inputShapes)
        return try outputShapes(inputShapes)
    }

    private func checkKeywords(_ arguments: CallArguments) throws(KedgeError) {
        for k in arguments.keywords where !k.isEmpty && k != "initial_state" {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(name)' (\(className)) is called with tensor argument '\(k)'; supported: initial_state, mask")
        }
    }

    override var handlesMasks: Bool { true }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        try run(inputs, mask: nil).outputs
    }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        let inputMask = masks.first ?? nil
        let r = try run(inputs, mask: keras3IgnoresMask(inputs.count, arguments) ? nil : inputMask)
        var outMasks = [Tensor?](repeating: nil, count: r.outputs.count)
        if returnSequences { outMasks[0] = inputMask }
        return (r.outputs, outMasks)
    }

    override func resetStates() { keptStates = nil }

    /// Keras 3 fills in `mask` only when a call passes a single tensor argument: with initial states the layer
    /// runs unmasked (tf-keras masks it), while the output still carries the input's mask.
    func keras3IgnoresMask(_ inputCount: Int, _ arguments: CallArguments) -> Bool {
        kerasMajor >= 3 && inputCount > 1 && !arguments.explicitMask
    }

    /// Runs the sequence; `inputs[1...]` are initial states (positional in Keras 2 files, `initial_state=` in
    /// Keras 3), in the cells' state order.
    func run(_ inputs: [Tensor], mask: Tensor?) throws(KedgeError) -> (outputs: [Tensor], mask: Tensor?) {
        var x = inputs[0]
        guard x.rank >= 3 else { throw shapeError("input must have rank >= 3, got \(describeShape(x.shape))") }
        if channelsFirst {
            // (b, t, c, s...) -> (b, t, s..., c)
            var axes = [0, 1]
            for d in 0..<convRank { axes.append(3 + d) }
            axes.append(2)
            x = transpose(x, axes: axes)
        }
        let batch = x.shape[0]
        let steps = x.shape[1]
        let step = Array(x.shape.dropFirst(2))
        for cell in cells { try cell.resolve(stepShape: step, layer: self) }
        let first = cells[0]
        if Tensor.elementCount(step) != first.inputSize {
            throw shapeError("one timestep has shape \(describeShape(step)), which does not fit the kernel")
        }
        if let mask, mask.count != batch * steps {
            throw shapeError("mask has shape \(describeShape(mask.shape)) but the input is \(describeShape(inputs[0].shape))")
        }

        // Initial states: given, kept (stateful), or zeros.
        var states: [[[Float]]] = []
        if inputs.count > 1 {
            var k = 1
            for cell in cells {
                var cs: [[Float]] = []
                for size in cell.stateSizes {
                    var t = inputs[k]
                    if channelsFirst && t.rank > 2 {
                        var axes = [0]
                        for d in 0..<convRank { axes.append(2 + d) }
                        axes.append(1)
                        t = transpose(t, axes: axes)
                    }
                    guard t.count == batch * size else {
                        throw shapeError(
                            "initial state \(k - 1) has shape \(describeShape(inputs[k].shape)), expected \(batch * size / max(batch, 1)) values per sample")
                    }
                    cs.append(t.data)
                    k += 1
                }
                states.append(cs)
            }
        } else if stateful, let kept = keptStates {
            guard keptBatch == batch else {
                throw KedgeError(
                    .invalidInput,
                    "layer '\(name)' (\(className)) is stateful and holds states for batch size \(keptBatch), but got batch size \(batch); call resetStates() first")
            }
            states = kept
        } else {
            for cell in cells { states.append(cell.stateSizes.map { [Float](repeating: 0, count: batch * $0) }) }
        }

        // Project every timestep at once: rows ordered (sample, time).
        let projected = first.project(x.data, rows: batch * steps)
        let pw = first.projectedSize
        let last = cells[cells.count - 1]
        let outSize = last.outputSize
        var sequence = returnSequences ? [Float](repeating: 0, count: batch * steps * outSize) : []
        var previous = [Float](repeating: 0, count: batch * outSize)
        var xp = [Float](repeating: 0, count: batch * pw)
        for s in 0..<steps {
            let t = goBackwards ? steps - 1 - s : s
            for b in 0..<batch {
                let src = (b * steps + t) * pw
                for j in 0..<pw { xp[b * pw + j] = projected[src + j] }
            }
            let before = states
            var out = xp.withUnsafeBufferPointer { first.step($0.baseAddress!, states: &states[0], batch: batch) }
            for ci in 1..<max(cells.count, 1) {
                let p = cells[ci].project(out, rows: batch)
                out = p.withUnsafeBufferPointer { cells[ci].step($0.baseAddress!, states: &states[ci], batch: batch) }
            }
            if let mask {
                // Masked samples keep their states and repeat the previous output (or output zeros).
                for b in 0..<batch where mask.data[b * steps + t] == 0 {
                    for j in 0..<outSize { out[b * outSize + j] = zeroOutputForMask ? 0 : previous[b * outSize + j] }
                    for ci in 0..<cells.count {
                        for k in 0..<states[ci].count {
                            let size = cells[ci].stateSizes[k]
                            for j in 0..<size { states[ci][k][b * size + j] = before[ci][k][b * size + j] }
                        }
                    }
                }
            }
            if returnSequences {
                // go_backwards returns the sequence in processing order, as Keras does.
                for b in 0..<batch {
                    let dst = (b * steps + s) * outSize
                    for j in 0..<outSize { sequence[dst + j] = out[b * outSize + j] }
                }
            }
            previous = out
        }
        if stateful {
            keptStates = states
            keptBatch = batch
        }

        let outShape = last.outputShape
        var outputs: [Tensor] = []
        if returnSequences {
            outputs.append(toLayout(Tensor(shape: [batch, steps] + outShape, data: sequence), leading: 2))
        } else {
            outputs.append(toLayout(Tensor(shape: [batch] + outShape, data: previous), leading: 1))
        }
        if returnState {
            for (ci, cell) in cells.enumerated() {
                for k in 0..<cell.stateSizes.count {
                    outputs.append(toLayout(Tensor(shape: [batch] + cell.outputShape, data: states[ci][k]), leading: 1))
                }
            }
        }
        // Keras passes the input's mask on unchanged, also for a go_backwards sequence.
        return (outputs, mask)
    }

    /// channels_last cell output back to channels_first.
    private func toLayout(_ t: Tensor, leading: Int) -> Tensor {
        guard channelsFirst, t.rank > leading + 1 else { return t }
        var axes = Array(0..<leading)
        axes.append(t.rank - 1)
        for d in leading..<(t.rank - 1) { axes.append(d) }
        return transpose(t, axes: axes)
    }

    override var parameterCount: Int {
        var n = 0
        for c in cells { n += c.parameterCount }
        return n
    }
}
