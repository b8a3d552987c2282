// Keras 1 (1.0-1.2.2) layers that Keras 2 renamed or dropped, (their config keys are translated by Keras1Config.swift).
//
// Formulas and weight orders follow Keras 1.2.2 (keras/layers/core.py, advanced_activations.py,
// convolutional.py, engine/topology.py `Merge`) and its TensorFlow backend. Canonical weight names are the
// Keras 1 names without the `<layer>_` prefix (`W`, `b`, `W_carry`, `alphas`, `t_left`, ...).
//
// The Keras 1 convolutions are built on the Keras 2 convolution layers of the catalog: their kernels are moved
// from the Keras 1 layout (`th`: (out, in, rows, cols)) to Keras 2's, `th` inputs are moved to channels-last
// around the inner layer, and `border_mode="full"` becomes explicit zero padding. Theano-backend kernels are
// flipped by the converter (a property of the file, not of the config), so bundles hold cross-correlation
// kernels.

let keras1Builders: [LayerBuilder] = [
    LayerBuilder(["Highway"], weights: Keras1Weights.highway) { s throws(KedgeError) in try Highway(s) },
    LayerBuilder(["MaxoutDense"], weights: Keras1Weights.withBias(["W"])) { s throws(KedgeError) in try MaxoutDense(s)
    },
    LayerBuilder(["TimeDistributedDense"], weights: Keras1Weights.withBias(["W"])) { s throws(KedgeError) in
        try TimeDistributedDense(s)
    },
    LayerBuilder(["ParametricSoftplus"], weights: { _ throws(KedgeError) in ["alphas", "betas"] }) {
        s throws(KedgeError) in try ParametricSoftplus(s)
    },
    LayerBuilder(["SReLU"], weights: { _ throws(KedgeError) in ["t_left", "a_left", "t_right", "a_right"] }) {
        s throws(KedgeError) in try SReLU(s)
    },
    LayerBuilder(["Merge"]) { s throws(KedgeError) in try LegacyMerge(s) },
    LayerBuilder(
        [
            "Convolution1D", "AtrousConvolution1D", "Convolution2D", "AtrousConvolution2D", "Convolution3D",
            "Deconvolution2D",
        ],
        weights: Keras1Weights.withBias(["W"])
    ) { s throws(KedgeError) in try Keras1Convolution(s) },
    LayerBuilder(
        ["SeparableConvolution2D"], weights: Keras1Weights.withBias(["depthwise_kernel", "pointwise_kernel"])
    ) { s throws(KedgeError) in try Keras1Convolution(s) },
]

enum Keras1Weights {
    /// Keras 1 layers take `bias` (default true) where Keras 2 has `use_bias`.
    static func hasBias(_ c: LayerConfig) throws(KedgeError) -> Bool {
        try c.bool("bias", default: c.bool("use_bias", default: true))
    }

    static func withBias(_ names: [String]) -> (LayerConfig) throws(KedgeError) -> [String] {
        { c throws(KedgeError) in try hasBias(c) ? names + ["b"] : names }
    }

    static func highway(_ c: LayerConfig) throws(KedgeError) -> [String] {
        try hasBias(c) ? ["W", "W_carry", "b", "b_carry"] : ["W", "W_carry"]
    }
}

// MARK: - helpers

/// A layer of another class built inside a Keras 1 layer from a Keras 2 config and already-converted weights.
func innerLayer(
    _ s: LayerSpec, className: String, config: JSONObject, weights: [String: Tensor]
) throws(KedgeError) -> Layer {
    var spec = s
    spec.className = className
    spec.config = LayerConfig(layerName: s.name, className: className, json: config)
    spec.weights = weights
    guard let b = LayerCatalog.builder(for: className) else {
        throw KedgeError(
            .unsupportedLayer,
            "layer '\(s.name)' (\(s.className)) runs on Kedge's \(className), which this build does not include")
    }
    return try b.make(spec)
}

func jsonInts(_ xs: [Int]) -> JSON { .array(xs.map { .number(Double($0)) }) }

/// A Dense config for an inner Dense layer.
func denseConfig(units: Int, activation: JSON?, bias: Bool) -> JSONObject {
    var o = JSONObject()
    o["units"] = .number(Double(units))
    o["activation"] = activation ?? .string("linear")
    o["use_bias"] = .bool(bias)
    return o
}

// MARK: - core layers

/// Keras 1 `Highway`: t = sigmoid(x·W_carry + b_carry); y = t * activation(x·W + b) + (1 - t) * x.
final class Highway: Layer {
    let transform: Layer
    let gate: Layer
    let units: Int

    init(_ s: LayerSpec) throws(KedgeError) {
        let bias = try Keras1Weights.hasBias(s.config)
        let w = try s.weight("W")
        guard w.rank == 2, w.shape[0] == w.shape[1] else {
            throw KedgeError(
                .shapeMismatch,
                "layer '\(s.name)' (Highway): weight 'W' has shape \(describeShape(w.shape)); expected (input_dim, input_dim)"
            )
        }
        units = w.shape[0]
        let wc = try s.weight("W_carry", shape: [units, units])
        var tw = ["kernel": w]
        var gw = ["kernel": wc]
        if bias {
            tw["bias"] = try s.weight("b", shape: [units])
            gw["bias"] = try s.weight("b_carry", shape: [units])
        }
        transform = try innerLayer(
            s, className: "Dense", config: denseConfig(units: units, activation: s.config["activation"], bias: bias),
            weights: tw)
        gate = try innerLayer(
            s, className: "Dense", config: denseConfig(units: units, activation: .string("sigmoid"), bias: bias),
            weights: gw)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        guard s.count == 2 else { throw shapeError("expects an input of rank 2, got \(describeShape(s))") }
        if s[1] >= 0 && s[1] != units {
            throw shapeError("input has \(s[1]) features but the weights are for \(units)")
        }
        return inputShapes
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        _ = try transform.build(inputShapes)
        _ = try gate.build(inputShapes)
        return out
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        var y = try transform.forward(inputs)[0]
        let t = try gate.forward(inputs)[0]
        for i in 0..<y.count { y.data[i] = y.data[i] * t.data[i] + (1 - t.data[i]) * x.data[i] }
        return [y]
    }

    override var parameterCount: Int { transform.parameterCount + gate.parameterCount }
}

/// Keras 1 `MaxoutDense`: the elementwise maximum over `nb_feature` linear maps, y = max_f(x·W[f] + b[f]),
/// with W (nb_feature, input_dim, output_dim) and b (nb_feature, output_dim). No activation.
final class MaxoutDense: Layer {
    let features: Int
    let units: Int
    let dense: Layer

    init(_ s: LayerSpec) throws(KedgeError) {
        units = try s.config.int("output_dim")
        features = try s.config.int("nb_feature", default: 4)
        let w = try s.weight("W", shape: [features, -1, units])
        let inDim = w.shape[1]
        // One GEMM for all features: kernel (input_dim, nb_feature * output_dim).
        let k = transpose(w, axes: [1, 0, 2]).reshaped([inDim, features * units])
        var ws = ["kernel": k]
        let bias = try Keras1Weights.hasBias(s.config)
        if bias { ws["bias"] = try s.weight("b", shape: [features, units]).reshaped([features * units]) }
        dense = try innerLayer(
            s, className: "Dense", config: denseConfig(units: features * units, activation: nil, bias: bias),
            weights: ws)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        guard inputShapes[0].count == 2 else {
            throw shapeError("expects an input of rank 2, got \(describeShape(inputShapes[0]))")
        }
        _ = try dense.outputShapes(inputShapes)
        return [[inputShapes[0][0], units]]
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        _ = try dense.build(inputShapes)
        return out
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let z = try dense.forward(inputs)[0]
        let batch = inputs[0].shape[0]
        let u = units
        let f = features
        return [
            Tensor(shape: [batch, u]) { out in
                for b in 0..<batch {
                    for o in 0..<u {
                        var m = z.data[b * f * u + o]
                        for k in 1..<max(f, 1) { m = max(m, z.data[b * f * u + k * u + o]) }
                        out[b * u + o] = m
                    }
                }
            }
        ]
    }

    override var parameterCount: Int { dense.parameterCount }
}

/// Keras 1 `TimeDistributedDense`: a Dense applied at every step of a (batch, steps, features) input.
final class TimeDistributedDense: Layer {
    let dense: Layer

    init(_ s: LayerSpec) throws(KedgeError) {
        let units = try s.config.int("output_dim")
        let bias = try Keras1Weights.hasBias(s.config)
        var ws = ["kernel": try s.weight("W", shape: [-1, units])]
        if bias { ws["bias"] = try s.weight("b", shape: [units]) }
        dense = try innerLayer(
            s, className: "Dense", config: denseConfig(units: units, activation: s.config["activation"], bias: bias),
            weights: ws)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        guard inputShapes[0].count == 3 else {
            throw shapeError(
                "expects an input of rank 3 (batch, steps, features), got \(describeShape(inputShapes[0]))")
        }
        return try dense.outputShapes(inputShapes)
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        _ = try outputShapes(inputShapes)
        return try dense.build(inputShapes)
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] { try dense.forward(inputs) }
    override var parameterCount: Int { dense.parameterCount }
    override func absorbActivation(_ a: Activation) -> Bool { dense.absorbActivation(a) }
}

// MARK: - advanced activations

/// Checks that a per-element parameter (shape of the input without batch, 1 on shared axes) fits the input.
func checkParameterShape(_ layer: Layer, _ name: String, _ p: Tensor, _ s: [Int]) throws(KedgeError) {
    var ok = s.count >= 2 && p.rank == s.count - 1
    if ok { for d in 1..<s.count where p.shape[d - 1] != 1 && s[d] >= 0 && p.shape[d - 1] != s[d] { ok = false } }
    if !ok {
        throw layer.shapeError(
            "weight '\(name)' has shape \(describeShape(p.shape)), which does not fit an input of shape \(describeShape(s))"
        )
    }
}

/// Index of the parameter element that applies to flat input index `i` (numpy broadcasting of a
/// parameter shaped like one sample, with 1 on shared axes).
struct ParameterBroadcast {
    var sampleShape: [Int]
    var paramShape: [Int]

    func indices() -> [Int] {
        let n = Tensor.elementCount(sampleShape)
        var out = [Int](repeating: 0, count: n)
        let r = sampleShape.count
        var idx = [Int](repeating: 0, count: r)
        for i in 0..<n {
            var p = 0
            for d in 0..<r { p = p * paramShape[d] + (paramShape[d] == 1 ? 0 : idx[d]) }
            out[i] = p
            var d = r - 1
            while d >= 0 {
                idx[d] += 1
                if idx[d] < sampleShape[d] { break }
                idx[d] = 0
                d -= 1
            }
        }
        return out
    }
}

/// Applies `f(x, params at x)` elementwise with the parameters broadcast over the batch and shared axes.
func applyWithParameters(_ x: Tensor, _ params: [Tensor], _ f: ([Float], Float) -> Float) -> Tensor {
    let sample = Array(x.shape.dropFirst())
    let idx = ParameterBroadcast(sampleShape: sample, paramShape: params[0].shape).indices()
    let per = idx.count
    var y = x
    var vals = [Float](repeating: 0, count: params.count)
    for i in 0..<x.count {
        let j = idx[per == 0 ? 0 : i % per]
        for k in 0..<params.count { vals[k] = params[k].data[j] }
        y.data[i] = f(vals, x.data[i])
    }
    return y
}

/// Keras 1 `ParametricSoftplus`: alphas * softplus(betas * x), parameters per element (1 on shared axes).
final class ParametricSoftplus: Layer {
    let alphas: Tensor
    let betas: Tensor

    init(_ s: LayerSpec) throws(KedgeError) {
        alphas = try s.weight("alphas")
        betas = try s.weight("betas", shape: alphas.shape)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        try checkParameterShape(self, "alphas", alphas, inputShapes[0])
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        _ = try outputShapes([inputs[0].shape])
        return [applyWithParameters(inputs[0], [alphas, betas]) { p, x in p[0] * Activation.softplus(p[1] * x) }]
    }

    override var parameterCount: Int { alphas.count + betas.count }
}

/// Keras 1 `SReLU` (S-shaped ReLU), as its TensorFlow backend computes it with tr = t_left + |t_right|:
/// y = t_left + min(max(x - t_left, 0), tr - t_left) - a_left * max(t_left - x, 0) + a_right * max(x - tr, 0).
final class SReLU: Layer {
    let tLeft: Tensor
    let aLeft: Tensor
    let tRight: Tensor
    let aRight: Tensor

    init(_ s: LayerSpec) throws(KedgeError) {
        tLeft = try s.weight("t_left")
        aLeft = try s.weight("a_left", shape: tLeft.shape)
        tRight = try s.weight("t_right", shape: tLeft.shape)
        aRight = try s.weight("a_right", shape: tLeft.shape)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        try checkParameterShape(self, "t_left", tLeft, inputShapes[0])
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        _ = try outputShapes([inputs[0].shape])
        return [
            applyWithParameters(inputs[0], [tLeft, aLeft, tRight, aRight]) { p, x in
                let tl = p[0]
                let tr = tl + abs(p[2])
                let center = min(max(x - tl, 0), tr - tl) - p[1] * max(tl - x, 0)
                return tl + center + max(x - tr, 0) * p[3]
            }
        ]
    }

    override var parameterCount: Int { tLeft.count * 4 }
}

// MARK: - Merge

/// Keras 1's `Merge` layer (engine/topology.py), modes sum, mul, ave, max, concat, dot and cos. `dot` and `cos`
/// take `batch_dot` over `dot_axes`; `cos` then divides by max(sqrt((x·x)(y·y)), 1e-7) and, as Keras 1's
/// backend does, adds an axis: (batch, 1) becomes (batch, 1, 1).
final class LegacyMerge: Layer {
    enum Mode {
        case elementwise(Layer)
        case concat(Layer)
        case dot(Layer)
        case cos(Layer)
    }
    let mode: Mode

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        let modeName: String
        if let m = c["mode"]?.string {
            modeName = m
        } else if c["mode"] == nil {
            modeName = "sum"
        } else {
            throw c.error("mode", "is not a string")
        }
        if let t = c["mode_type"]?.string, t != "raw" {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(s.name)' (Merge) has a Python \(t) as its mode, which cannot be run outside Keras; supported modes: sum, mul, ave, max, concat, dot, cos"
            )
        }
        func axesConfig() throws(KedgeError) -> JSONObject {
            var o = JSONObject()
            if let a = c["dot_axes"] {
                if a.int != nil {
                    o["axes"] = a
                } else {
                    o["axes"] = jsonInts(try c.ints("dot_axes", count: 2))
                }
            } else {
                o["axes"] = .number(-1)
            }
            return o
        }
        switch modeName {
        case "sum": mode = .elementwise(try innerLayer(s, className: "Add", config: JSONObject(), weights: [:]))
        case "mul": mode = .elementwise(try innerLayer(s, className: "Multiply", config: JSONObject(), weights: [:]))
        case "ave": mode = .elementwise(try innerLayer(s, className: "Average", config: JSONObject(), weights: [:]))
        case "max": mode = .elementwise(try innerLayer(s, className: "Maximum", config: JSONObject(), weights: [:]))
        case "concat":
            var o = JSONObject()
            o["axis"] = .number(Double(try c.int("concat_axis", default: -1)))
            mode = .concat(try innerLayer(s, className: "Concatenate", config: o, weights: [:]))
        case "dot": mode = .dot(try innerLayer(s, className: "Dot", config: try axesConfig(), weights: [:]))
        case "cos": mode = .cos(try innerLayer(s, className: "Dot", config: try axesConfig(), weights: [:]))
        default:
            throw c.error("mode", "is '\(modeName)'; supported: sum, mul, ave, max, concat, dot, cos")
        }
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count >= 2 else { throw shapeError("expects at least 2 inputs, got \(inputShapes.count)") }
        switch mode {
        case .elementwise(let l):
            for s in inputShapes.dropFirst() where s.count != inputShapes[0].count {
                throw shapeError("inputs must have the same shape")
            }
            return try l.outputShapes(inputShapes)
        case .concat(let l):
            return try l.outputShapes(inputShapes)
        case .dot(let l):
            guard inputShapes.count == 2 else { throw arityError(inputShapes.count, expected: 2) }
            return try l.outputShapes(inputShapes)
        case .cos(let l):
            guard inputShapes.count == 2 else { throw arityError(inputShapes.count, expected: 2) }
            let s = try l.outputShapes(inputShapes)[0]
            return [[s[0], 1] + s.dropFirst()]
        }
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        switch mode {
        case .elementwise(let l), .concat(let l), .dot(let l):
            return try l.forward(inputs)
        case .cos(let l):
            let outShape = try outputShapes([inputs[0].shape, inputs[1].shape])[0]
            var xy = try l.forward(inputs)[0]
            let xx = try l.forward([inputs[0], inputs[0]])[0]
            let yy = try l.forward([inputs[1], inputs[1]])[0]
            guard xx.count == xy.count && yy.count == xy.count else {
                throw shapeError("cos mode needs inputs of the same shape")
            }
            for i in 0..<xy.count { xy.data[i] /= max((xx.data[i] * yy.data[i]).squareRoot(), 1e-7) }
            return [xy.reshaped(outShape)]
        }
    }
}

// MARK: - convolutions

/// Convolution1D/2D/3D, AtrousConvolution1D/2D, SeparableConvolution2D and Deconvolution2D of Keras 1, run by
/// the Keras 2 layer of the same kind (see the file header).
final class Keras1Convolution: Layer {
    let inner: Layer
    /// `dim_ordering: th`: the input is (batch, channels, spatial...) and is moved channels-last around `inner`.
    let channelsFirst: Bool
    /// Zeros added before and after each spatial axis for `border_mode: full`.
    let fullPadding: [Int]
    let spatialRank: Int

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        let cls = s.className
        let rank: Int
        switch cls {
        case "Convolution1D", "AtrousConvolution1D": rank = 1
        case "Convolution3D": rank = 3
        default: rank = 2
        }
        spatialRank = rank
        let border = try c.choice("border_mode", ["valid", "same", "full"], default: "valid")
        // Keras 1's Convolution1D has no dim_ordering: its input is always (batch, steps, features).
        let ordering = try c.string("dim_ordering", default: "tf")
        channelsFirst = rank != 1 && ordering == "th"
        let filters = try c.int("nb_filter")
        let kernel: [Int]
        switch rank {
        case 1: kernel = [try c.int("filter_length")]
        case 2: kernel = [try c.int("nb_row"), try c.int("nb_col")]
        default: kernel = [try c.int("kernel_dim1"), try c.int("kernel_dim2"), try c.int("kernel_dim3")]
        }
        let strides: [Int]
        if rank == 1 {
            strides = [try c.int("subsample_length", default: 1)]
        } else {
            strides = try c.ints("subsample", count: rank, default: [Int](repeating: 1, count: rank))
        }
        var dilation = [Int](repeating: 1, count: rank)
        if c.has("atrous_rate") { dilation = try c.ints("atrous_rate", count: rank) }
        let bias = try Keras1Weights.hasBias(c)

        var o = JSONObject()
        o["filters"] = .number(Double(filters))
        o["kernel_size"] = jsonInts(kernel)
        o["strides"] = jsonInts(strides)
        o["padding"] = .string(border == "same" ? "same" : "valid")
        o["data_format"] = .string("channels_last")
        o["dilation_rate"] = jsonInts(dilation)
        o["activation"] = c["activation"] ?? .string("linear")
        o["use_bias"] = .bool(bias)

        var ws: [String: Tensor] = [:]
        if bias { ws["bias"] = try s.weight("b", shape: [filters]) }
        let innerClass: String
        var pads = [Int](repeating: 0, count: rank)
        if border == "full" {
            guard cls != "Deconvolution2D" && cls != "SeparableConvolution2D" else {
                throw c.error(
                    "border_mode",
                    "is 'full', which Keras 1 ran only on Theano and Kedge supports only for Convolution and AtrousConvolution layers"
                )
            }
            for d in 0..<rank { pads[d] = (kernel[d] - 1) * dilation[d] }
        }
        fullPadding = pads
        let th = channelsFirst
        switch cls {
        case "SeparableConvolution2D":
            innerClass = "SeparableConv2D"
            let mult = try c.int("depth_multiplier", default: 1)
            o["depth_multiplier"] = .number(Double(mult))
            o["dilation_rate"] = nil
            let dw = try s.weight(
                "depthwise_kernel", shape: th ? [mult, -1, kernel[0], kernel[1]] : kernel + [-1, mult])
            let pw = try s.weight("pointwise_kernel", shape: th ? [filters, -1, 1, 1] : [1, 1, -1, filters])
            ws["depthwise_kernel"] = th ? transpose(dw, axes: [2, 3, 1, 0]) : dw
            ws["pointwise_kernel"] = th ? transpose(pw, axes: [2, 3, 1, 0]) : pw
        case "Deconvolution2D":
            innerClass = "Conv2DTranspose"
            let w = try s.weight("W", shape: th ? [filters, -1] + kernel : kernel + [-1, filters])
            // Keras 2's order is (rows, cols, out, in).
            ws["kernel"] = transpose(w, axes: th ? [2, 3, 0, 1] : [0, 1, 3, 2])
            o["dilation_rate"] = nil
            let out = try c.shape("output_shape")
            guard out.count == 4 else { throw c.error("output_shape", "must have 4 entries (batch and three axes)") }
            deconvOutput = th ? [out[2], out[3]] : [out[1], out[2]]
        default:
            innerClass = rank == 1 ? "Conv1D" : rank == 2 ? "Conv2D" : "Conv3D"
            var w = try s.weight("W")
            if rank == 1 {
                // Keras 1.2: (length, 1, in, out); Keras 1.0/1.1: (out, in, length, 1).
                guard w.rank == 4 || w.rank == 3 else {
                    throw KedgeError(
                        .shapeMismatch,
                        "layer '\(s.name)' (\(cls)): weight 'W' has shape \(describeShape(w.shape)); expected (\(kernel[0]), 1, input_dim, \(filters))"
                    )
                }
                if w.rank == 4 {
                    if w.shape[3] != filters || w.shape[1] != 1 { w = transpose(w, axes: [2, 3, 1, 0]) }
                    w = w.reshaped([w.shape[0], w.shape[2], w.shape[3]])
                }
                ws["kernel"] = try Keras1Convolution.checked(s, w, kernel + [-1, filters])
            } else {
                let want = th ? [filters, -1] + kernel : kernel + [-1, filters]
                w = try s.weight("W", shape: want)
                ws["kernel"] = th ? transpose(w, axes: rank == 2 ? [2, 3, 1, 0] : [2, 3, 4, 1, 0]) : w
            }
        }
        inner = try innerLayer(s, className: innerClass, config: o, weights: ws)
        innerSpec = s
        innerSpec.weights = ws
        innerConfig = o
        deconvStrides = strides
        deconvKernel = kernel
        deconvSame = border == "same"
        super.init(spec: s)
    }

    var innerSpec: LayerSpec
    var innerConfig: JSONObject
    // Deconvolution2D: Keras 1 gives the output size; Keras 2 derives it from `output_padding`, set at build.
    var deconvOutput: [Int]? = nil
    let deconvStrides: [Int]
    let deconvKernel: [Int]
    let deconvSame: Bool
    var deconvInner: Layer? = nil

    static func checked(_ s: LayerSpec, _ w: Tensor, _ shape: [Int]) throws(KedgeError) -> Tensor {
        var ok = w.rank == shape.count
        if ok { for i in 0..<shape.count where shape[i] >= 0 && shape[i] != w.shape[i] { ok = false } }
        if !ok {
            throw KedgeError(
                .shapeMismatch,
                "layer '\(s.name)' (\(s.className)): weight 'W' has shape \(describeShape(w.shape)) but the config implies \(describeShape(shape))"
            )
        }
        return w
    }

    /// (batch, channels, spatial...) -> (batch, spatial..., channels), and back.
    func toLast(_ shape: [Int]) -> [Int] { channelsFirst ? [shape[0]] + shape.dropFirst(2) + [shape[1]] : shape }
    func toFirst(_ shape: [Int]) -> [Int] {
        channelsFirst ? [shape[0], shape[shape.count - 1]] + shape.dropFirst().dropLast() : shape
    }

    func innerShape(_ s: [Int]) throws(KedgeError) -> [Int] {
        guard s.count == spatialRank + 2 else {
            throw shapeError("expects an input of rank \(spatialRank + 2), got \(describeShape(s))")
        }
        var t = toLast(s)
        for d in 0..<spatialRank where t[1 + d] >= 0 { t[1 + d] += 2 * fullPadding[d] }
        return t
    }

    /// The Conv2DTranspose that yields Keras 1's declared output size: `output_padding` is what the declared
    /// size exceeds the smallest output by (TensorFlow's conv2d_transpose places the surplus at the end).
    func deconvolution(for inputShape: [Int]) throws(KedgeError) -> Layer {
        guard let want = deconvOutput else { return inner }
        var pad: [Int] = []
        for d in 0..<2 {
            let i = inputShape[1 + d]
            let k = deconvKernel[d]
            let s = deconvStrides[d]
            guard i >= 0 else { throw shapeError("Deconvolution2D needs known spatial input sizes") }
            let smallest = (i - 1) * s + k - (deconvSame ? 2 * (k / 2) : 0)
            let p = want[d] - smallest
            guard p >= 0 && p <= s else {
                throw configError(
                    "output_shape asks for \(want[d]) along spatial axis \(d + 1), which a transposed convolution of an input of size \(i) (kernel \(k), stride \(s)) cannot produce"
                )
            }
            pad.append(p)
        }
        if let d = deconvInner, deconvPadding == pad { return d }
        var o = innerConfig
        o["output_padding"] = jsonInts(pad)
        let l = try innerLayer(innerSpec, className: "Conv2DTranspose", config: o, weights: innerSpec.weights)
        deconvInner = l
        deconvPadding = pad
        return l
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = try innerShape(inputShapes[0])
        return [toFirst(try deconvolution(for: s).outputShapes([s])[0])]
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = try innerShape(inputShapes[0])
        return [toFirst(try deconvolution(for: s).build([s])[0])]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        var x = inputs[0]
        let s = try innerShape(x.shape)
        if channelsFirst { x = transpose(x, axes: [0] + Array(2..<x.rank) + [1]) }
        if fullPadding.contains(where: { $0 > 0 }) { x = zeroPadded(x, fullPadding) }
        var y = try deconvolution(for: s).forward([x])[0]
        if channelsFirst { y = transpose(y, axes: [0, y.rank - 1] + Array(1..<(y.rank - 1))) }
        return [y]
    }

    override var parameterCount: Int { inner.parameterCount }

    override func absorbActivation(_ a: Activation) -> Bool {
        deconvOutput == nil && inner.absorbActivation(a)
    }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        !channelsFirst && deconvOutput == nil && inner.absorbScaleShift(scale: scale, shift: shift)
    }

    var deconvPadding: [Int] = []

    /// Adds `pad[d]` zeros before and after spatial axis d of a channels-last tensor.
    func zeroPadded(_ x: Tensor, _ pad: [Int]) -> Tensor {
        var shape = x.shape
        for d in 0..<pad.count { shape[1 + d] += 2 * pad[d] }
        var y = Tensor(shape: shape)
        let r = x.rank
        var inStrides = [Int](repeating: 1, count: r)
        var outStrides = [Int](repeating: 1, count: r)
        for d in stride(from: r - 2, through: 0, by: -1) {
            inStrides[d] = inStrides[d + 1] * x.shape[d + 1]
            outStrides[d] = outStrides[d + 1] * shape[d + 1]
        }
        let channels = x.shape[r - 1]
        let rows = channels == 0 ? 0 : x.count / channels
        for row in 0..<rows {
            var rem = row * channels
            var o = 0
            for d in 0..<(r - 1) {
                let i = rem / inStrides[d]
                rem -= i * inStrides[d]
                o += (d == 0 ? i : i + pad[d - 1]) * outStrides[d]
            }
            for ch in 0..<channels { y.data[o + ch] = x.data[row * channels + ch] }
        }
        return y
    }
}
