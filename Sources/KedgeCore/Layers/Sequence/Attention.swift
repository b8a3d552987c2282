// Keras's attention layers (keras/src/layers/attention): Attention (Luong), AdditiveAttention (Bahdanau) and
// MultiHeadAttention, with Keras's masks (query/value/key masks, attention_mask, use_causal_mask).

let attentionBuilders: [LayerBuilder] = [
    LayerBuilder(
        ["Attention"],
        weights: { c throws(KedgeError) in
            var w: [String] = []
            if try c.bool("use_scale", default: false) { w.append("scale") }
            if try c.string("score_mode", default: "dot") == "concat" { w.append("concat_score_weight") }
            return w
        },
        make: { s throws(KedgeError) in try DenseAttention(s) }),
    LayerBuilder(
        ["AdditiveAttention"],
        weights: { c throws(KedgeError) in try c.bool("use_scale", default: true) ? ["scale"] : [] },
        make: { s throws(KedgeError) in try DenseAttention(s) }),
    LayerBuilder(["MultiHeadAttention"], weights: multiHeadAttentionWeightNames, make: { s throws(KedgeError) in try MultiHeadAttention(s) }),
]

/// How a softmax treats masked positions; the generations differ only on rows where everything is masked.
enum MaskedSoftmax {
    /// tf-keras and Keras 3's Attention: add -1e9 to masked scores (a fully masked row becomes uniform).
    case addLargeNegative
    /// Keras 3's dot_product_attention: replace masked logits by a huge negative (a fully masked row is uniform).
    case replace
    /// Keras 3's Softmax layer with a mask: replace by -1e9, then zero the masked weights (a fully masked row is 0).
    case replaceThenZero

    /// Softmax over `n` scores in place; `keep(j)` says whether position j takes part.
    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int, masked: Bool, keep: (Int) -> Bool) {
        if masked {
            for j in 0..<n where !keep(j) {
                switch self {
                case .addLargeNegative: p[j] = p[j] - 1e9
                case .replace: p[j] = -0.7 * 3.38953e38
                case .replaceThenZero: p[j] = -1e9
                }
            }
        }
        var m = -Float.infinity
        for j in 0..<n { m = max(m, p[j]) }
        var s: Float = 0
        for j in 0..<n { let e = expf(p[j] - m); p[j] = e; s += e }
        let r = 1 / s
        for j in 0..<n { p[j] *= r }
        if masked, case .replaceThenZero = self { for j in 0..<n where !keep(j) { p[j] = 0 } }
    }
}

/// Positions before the feature axis, flattened: (batch, positions, features).
private func attentionDims(_ shape: [Int], _ layer: Layer, _ what: String) throws(KedgeError) -> (Int, Int, Int) {
    guard shape.count >= 3 else {
        throw layer.shapeError("\(what) must have rank >= 3 (batch, positions..., features), got \(describeShape(shape))")
    }
    var p = 1
    for d in shape[1..<(shape.count - 1)] { p *= d }
    return (shape[0], p, shape[shape.count - 1])
}

// MARK: - Attention, AdditiveAttention

final class DenseAttention: Layer {
    let additive: Bool
    let concatScores: Bool
    let scale: [Float]
    let concatWeight: Float
    let causal: Bool
    let kerasMajor: Int

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        additive = s.className == "AdditiveAttention"
        kerasMajor = s.kerasMajor
        if additive {
            concatScores = false
            scale = try c.bool("use_scale", default: true) ? try s.weight("scale", shape: [-1]).data : []
            concatWeight = 1
        } else {
            concatScores = try c.choice("score_mode", ["dot", "concat"], default: "dot") == "concat"
            scale = try c.bool("use_scale", default: false) ? try s.weight("scale").data : []
            concatWeight = concatScores ? (try s.weight("concat_score_weight").data.first ?? 1) : 1
            if !scale.isEmpty && scale.count != 1 { throw KedgeError(.shapeMismatch, "layer '\(s.name)' (Attention): weight 'scale' must be a scalar") }
        }
        causal = try c.bool("causal", default: false)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try outputShapes(inputShapes, arguments: .plain)
    }

    override func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try outputShapes(inputShapes, arguments: arguments)
    }

    override func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try rejectKeywordTensors(arguments)
        guard inputShapes.count == 2 || inputShapes.count == 3 else {
            throw shapeError("takes [query, value] or [query, value, key], got \(inputShapes.count) inputs")
        }
        let q = inputShapes[0]
        let v = inputShapes[1]
        let k = inputShapes.count > 2 ? inputShapes[2] : v
        guard q.count >= 3, v.count == q.count, k.count == q.count else {
            throw shapeError("query, value and key must have the same rank >= 3")
        }
        if q.last! >= 0 && k.last! >= 0 && q.last! != k.last! {
            throw shapeError("query has \(q.last!) features but key has \(k.last!)")
        }
        if additive && !scale.isEmpty && q.last! >= 0 && q.last! != scale.count {
            throw shapeError("query has \(q.last!) features but 'scale' has \(scale.count)")
        }
        var out = [Array(q.dropLast()) + [v.last!]]
        if arguments.bool("return_attention_scores", default: false) {
            out.append(Array(q.dropLast()) + [k[k.count - 2]])
        }
        return out
    }

    override var handlesMasks: Bool { true }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        try call(inputs, masks: [Tensor?](repeating: nil, count: inputs.count), arguments: .plain).outputs
    }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        let q = inputs[0]
        let v = inputs[1]
        let k = inputs.count > 2 ? inputs[2] : v
        let (b, tq, d) = try attentionDims(q.shape, self, "query")
        let (_, tv, dv) = try attentionDims(v.shape, self, "value")
        let (_, tk, dk) = try attentionDims(k.shape, self, "key")
        guard dk == d, tk == tv, v.shape[0] == b, k.shape[0] == b else {
            throw shapeError(
                "query \(describeShape(q.shape)), value \(describeShape(v.shape)) and key \(describeShape(k.shape)) do not fit together")
        }
        let qMask = masks.count > 0 ? masks[0] : nil
        let vMask = masks.count > 1 ? masks[1] : nil
        let useCausal = causal || arguments.bool("use_causal_mask", default: false)
        let wantScores = arguments.bool("return_attention_scores", default: false)
        var scores = [Float](repeating: 0, count: b * tq * tv)
        var tmp = [Float](repeating: 0, count: d)
        for i in 0..<b {
            for r in 0..<tq {
                let qo = (i * tq + r) * d
                for c in 0..<tv {
                    let ko = (i * tv + c) * d
                    var s: Float = 0
                    if additive {
                        for j in 0..<d { tmp[j] = tanhf(q.data[qo + j] + k.data[ko + j]) }
                        if scale.isEmpty { for j in 0..<d { s += tmp[j] } } else { for j in 0..<d { s += scale[j] * tmp[j] } }
                    } else if concatScores {
                        let sc = scale.first ?? 1
                        for j in 0..<d {
                            s += tanhf(scale.isEmpty ? q.data[qo + j] + k.data[ko + j] : sc * (q.data[qo + j] + k.data[ko + j]))
                        }
                        s *= concatWeight
                    } else {
                        for j in 0..<d { s += q.data[qo + j] * k.data[ko + j] }
                        if let sc = scale.first { s *= sc }
                    }
                    scores[(i * tq + r) * tv + c] = s
                }
            }
        }
        let masked = vMask != nil || useCausal
        scores.withUnsafeMutableBufferPointer { sp in
            for i in 0..<b {
                for r in 0..<tq {
                    MaskedSoftmax.addLargeNegative.apply(sp.baseAddress! + (i * tq + r) * tv, tv, masked: masked) { c in
                        (vMask == nil || vMask!.data[i * tv + c] != 0) && (!useCausal || r >= c)
                    }
                }
            }
        }
        var outShape = Array(q.shape.dropLast())
        outShape.append(dv)
        var y = Tensor(shape: outShape)
        for i in 0..<b {
            for r in 0..<tq {
                let o = (i * tq + r) * dv
                if let qm = qMask, qm.data[i * tq + r] == 0 { continue }
                for c in 0..<tv {
                    let w = scores[(i * tq + r) * tv + c]
                    if w == 0 { continue }
                    let vo = (i * tv + c) * dv
                    for j in 0..<dv { y.data[o + j] += w * v.data[vo + j] }
                }
            }
        }
        var outs = [y]
        if wantScores { outs.append(Tensor(shape: Array(q.shape.dropLast()) + [tv], data: scores)) }
        var outMasks = [Tensor?](repeating: nil, count: outs.count)
        outMasks[0] = qMask
        return (outs, outMasks)
    }

    override var parameterCount: Int { scale.count + (concatScores ? 1 : 0) }
}

// MARK: - MultiHeadAttention

func multiHeadAttentionWeightNames(_ c: LayerConfig) throws(KedgeError) -> [String] {
    let bias = try c.bool("use_bias", default: true)
    var parts = ["query", "key"]
    if try c.bool("use_gate", default: false) { parts.append("gate") }
    parts += ["value", "attention_output"]
    var out: [String] = []
    for p in parts {
        out.append(p + "/kernel")
        if bias { out.append(p + "/bias") }
    }
    return out
}

final class MultiHeadAttention: Layer {
    let heads: Int
    let keyDim: Int
    let valueDim: Int
    let useGate: Bool
    let dropout: Double
    let slidingWindow: Int?
    let attentionAxes: [Int]?
    let kerasMajor: Int
    let queryKernel: Tensor, queryBias: [Float]
    let keyKernel: Tensor, keyBias: [Float]
    let valueKernel: Tensor, valueBias: [Float]
    let gateKernel: Tensor?, gateBias: [Float]
    let outputKernel: Tensor, outputBias: [Float]
    /// The same weights packed for the GEMM.
    let queryDense: PackedMatrix, keyDense: PackedMatrix, valueDense: PackedMatrix, outputDense: PackedMatrix
    let gateDense: PackedMatrix?
    /// The output's feature shape (Keras's `output_shape`, default: the query's features).
    let outputFeatures: [Int]

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        // Keras's robust masking changes the masked softmax; only the plain one (the default) is implemented.
        if try c.bool("softmax_robust_masking", default: false) {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(s.name)' (MultiHeadAttention): option softmax_robust_masking=true is not supported; supported: false")
        }
        heads = try c.int("num_heads")
        keyDim = try c.int("key_dim")
        valueDim = try c.int("value_dim", default: keyDim)
        useGate = try c.bool("use_gate", default: false)
        dropout = try c.double("dropout", default: 0)
        kerasMajor = s.kerasMajor
        slidingWindow = c.has("sliding_window") ? try c.int("sliding_window") : nil
        attentionAxes = c.has("attention_axes") ? (c["attention_axes"]!.int != nil ? [c["attention_axes"]!.int!] : try c.shape("attention_axes")) : nil
        let bias = try c.bool("use_bias", default: true)
        func dense(_ p: String, _ shape: [Int], _ biasShape: [Int]) throws(KedgeError) -> (Tensor, [Float]) {
            let k = try s.weight(p + "/kernel", shape: shape)
            let b = bias ? try s.weight(p + "/bias", shape: biasShape).data : []
            return (k, b)
        }
        (queryKernel, queryBias) = try dense("query", [-1, heads, keyDim], [heads, keyDim])
        (keyKernel, keyBias) = try dense("key", [-1, heads, keyDim], [heads, keyDim])
        (valueKernel, valueBias) = try dense("value", [-1, heads, valueDim], [heads, valueDim])
        if useGate {
            let (k, b) = try dense("gate", [-1, heads, valueDim], [heads, valueDim])
            gateKernel = k
            gateBias = b
        } else {
            gateKernel = nil
            gateBias = []
        }
        let ok = try s.weight("attention_output/kernel")
        guard ok.rank >= 3, ok.shape[0] == heads, ok.shape[1] == valueDim else {
            throw KedgeError(
                .shapeMismatch,
                "layer '\(s.name)' (MultiHeadAttention): weight 'attention_output/kernel' has shape \(describeShape(ok.shape)) but the config implies (\(heads), \(valueDim), ...)"
            )
        }
        outputKernel = ok
        outputFeatures = Array(ok.shape.dropFirst(2))
        outputBias = bias ? try s.weight("attention_output/bias", shape: outputFeatures).data : []
        func packed(_ k: Tensor, _ b: [Float]) -> PackedMatrix {
            PackedMatrix(k.data, k: k.shape[0], n: k.count / k.shape[0], bias: b)
        }
        queryDense = packed(queryKernel, queryBias)
        keyDense = packed(keyKernel, keyBias)
        valueDense = packed(valueKernel, valueBias)
        if let g = gateKernel { gateDense = packed(g, gateBias) } else { gateDense = nil }
        outputDense = PackedMatrix(
            outputKernel.data, k: heads * valueDim, n: Tensor.elementCount(outputFeatures), bias: outputBias)
        super.init(spec: s)
    }

    /// The query, value and key inputs (indices into the inputs) and the attention_mask, from positional and
    /// keyword tensors (tf-keras passes `value` by keyword).
    private func roles(_ count: Int, _ arguments: CallArguments) throws(KedgeError) -> (q: Int, v: Int, k: Int?, am: Int?) {
        var named: [String: Int] = [:]
        let order = ["query", "value", "key"]
        var p = 0
        for i in 0..<count {
            let kw = arguments.keywords.isEmpty ? "" : arguments.keywords[i]
            if kw.isEmpty {
                guard p < order.count else { throw shapeError("takes query, value and key; got more positional inputs") }
                named[order[p]] = i
                p += 1
            } else if ["query", "value", "key", "attention_mask"].contains(kw) {
                named[kw] = i
            } else {
                throw KedgeError(
                    .unsupportedLayer,
                    "layer '\(name)' (MultiHeadAttention) is called with tensor argument '\(kw)'; supported: query, value, key, attention_mask"
                )
            }
        }
        guard let q = named["query"], let v = named["value"] else {
            throw shapeError("needs a query and a value")
        }
        return (q, v, named["key"], named["attention_mask"])
    }

    /// Attention axes must be every axis between batch and features (Keras's default); they are flattened.
    private func checkAxes(_ rank: Int) throws(KedgeError) {
        guard let axes = attentionAxes else { return }
        var norm = axes.map { $0 < 0 ? $0 + rank : $0 }.sorted()
        norm = norm.filter { $0 != -999 }
        if norm != Array(1..<(rank - 1)) {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(name)' (MultiHeadAttention): option attention_axes=\(describeAxesList(axes)) is not supported for inputs of rank \(rank); supported: None or all axes between batch and features"
            )
        }
    }

    private func describeAxesList(_ a: [Int]) -> String {
        var s = "["
        for (i, x) in a.enumerated() { s += (i > 0 ? ", " : "") + String(x) }
        return s + "]"
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try outputShapes(inputShapes, arguments: .plain)
    }

    override func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try outputShapes(inputShapes, arguments: arguments)
    }

    override func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        let r = try roles(inputShapes.count, arguments)
        let q = inputShapes[r.q]
        let v = inputShapes[r.v]
        let k = r.k.map { inputShapes[$0] } ?? v
        guard q.count >= 3, v.count >= 3, k.count == v.count else {
            throw shapeError("query, value and key must have rank >= 3 (batch, positions..., features)")
        }
        try checkAxes(q.count)
        func check(_ shape: [Int], _ kernel: Tensor, _ what: String) throws(KedgeError) {
            if shape.last! >= 0 && shape.last! != kernel.shape[0] {
                throw shapeError("\(what) has \(shape.last!) features but its kernel has shape \(describeShape(kernel.shape))")
            }
        }
        try check(q, queryKernel, "query")
        try check(v, valueKernel, "value")
        try check(k, keyKernel, "key")
        var out = [Array(q.dropLast()) + outputFeatures]
        if arguments.bool("return_attention_scores", default: false) {
            out.append([q[0], heads] + Array(q[1..<(q.count - 1)]) + Array(v[1..<(v.count - 1)]))
        }
        return out
    }

    override var handlesMasks: Bool { true }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        try call(inputs, masks: [Tensor?](repeating: nil, count: inputs.count), arguments: .plain).outputs
    }


    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        let r = try roles(inputs.count, arguments)
        let query = inputs[r.q]
        let value = inputs[r.v]
        let key = r.k.map { inputs[$0] } ?? value
        let (b, t, _) = try attentionDims(query.shape, self, "query")
        let (_, s, _) = try attentionDims(value.shape, self, "value")
        let (_, sk, _) = try attentionDims(key.shape, self, "key")
        guard sk == s, value.shape[0] == b, key.shape[0] == b else {
            throw shapeError("query \(describeShape(query.shape)), value \(describeShape(value.shape)) and key \(describeShape(key.shape)) do not fit together")
        }
        let qMask = masks.count > r.q ? masks[r.q] : nil
        let vMask = masks.count > r.v ? masks[r.v] : nil
        let kMask = r.k.flatMap { masks.count > $0 ? masks[$0] : nil }
        let useCausal = arguments.bool("use_causal_mask", default: false)
        let wantScores = arguments.bool("return_attention_scores", default: false)
        var attentionMask: Tensor? = nil
        if let am = r.am {
            attentionMask = inputs[am]
            guard attentionMask!.count == b * t * s || attentionMask!.count == t * s else {
                throw shapeError("attention_mask has shape \(describeShape(attentionMask!.shape)); expected (batch, \(t), \(s))")
            }
        }
        let masked = qMask != nil || vMask != nil || kMask != nil || useCausal || slidingWindow != nil || attentionMask != nil
        // Keras 3 uses dot_product_attention for rank-3 inputs unless scores are returned or dropout is set; its
        // Softmax layer otherwise. They differ only on fully masked rows.
        let mode: MaskedSoftmax
        if kerasMajor < 3 {
            mode = .addLargeNegative
        } else if query.rank == 3 && dropout == 0 && !wantScores {
            mode = .replace
        } else {
            mode = .replaceThenZero
        }

        let h = heads
        let kd = keyDim
        let vd = valueDim
        var qp = queryDense.apply(query.data, rows: b * t)
        let kp = keyDense.apply(key.data, rows: b * s)
        let vp = valueDense.apply(value.data, rows: b * s)
        let inv = 1 / Float(sqrt(Double(kd)))
        for i in 0..<qp.count { qp[i] *= inv }

        var scores = [Float](repeating: 0, count: b * h * t * s)
        for i in 0..<b {
            for hh in 0..<h {
                for x in 0..<t {
                    let qo = ((i * t + x) * h + hh) * kd
                    let so = ((i * h + hh) * t + x) * s
                    for y in 0..<s {
                        let ko = ((i * s + y) * h + hh) * kd
                        var acc: Float = 0
                        for j in 0..<kd { acc += qp[qo + j] * kp[ko + j] }
                        scores[so + y] = acc
                    }
                }
            }
        }
        let window = slidingWindow ?? 0
        let amBatched = attentionMask.map { $0.count == b * t * s } ?? false
        scores.withUnsafeMutableBufferPointer { sp in
            for i in 0..<b {
                for hh in 0..<h {
                    for x in 0..<t {
                        mode.apply(sp.baseAddress! + ((i * h + hh) * t + x) * s, s, masked: masked) { y in
                            if let m = qMask, m.data[i * t + x] == 0 { return false }
                            if let m = vMask, m.data[i * s + y] == 0 { return false }
                            if let m = kMask, m.data[i * s + y] == 0 { return false }
                            if useCausal && x < y { return false }
                            if window > 0 && abs(x - y) >= window { return false }
                            if let m = attentionMask, m.data[(amBatched ? i * t * s : 0) + x * s + y] == 0 { return false }
                            return true
                        }
                    }
                }
            }
        }
        // Context per head: (b, t, h, vd).
        var ctx = [Float](repeating: 0, count: b * t * h * vd)
        for i in 0..<b {
            for hh in 0..<h {
                for x in 0..<t {
                    let so = ((i * h + hh) * t + x) * s
                    let co = ((i * t + x) * h + hh) * vd
                    for y in 0..<s {
                        let w = scores[so + y]
                        if w == 0 { continue }
                        let vo = ((i * s + y) * h + hh) * vd
                        for j in 0..<vd { ctx[co + j] += w * vp[vo + j] }
                    }
                }
            }
        }
        if let gd = gateDense {
            var g = gd.apply(query.data, rows: b * t)
            let sigmoid: Activation = .sigmoid
            g.withUnsafeMutableBufferPointer { sigmoid.applyPointwise($0.baseAddress!, count: $0.count) }
            for i in 0..<ctx.count { ctx[i] *= g[i] }
        }
        let y = outputDense.apply(ctx, rows: b * t)
        var outs = [Tensor(shape: Array(query.shape.dropLast()) + outputFeatures, data: y)]
        if wantScores {
            outs.append(
                Tensor(
                    shape: [b, h] + Array(query.shape[1..<(query.rank - 1)]) + Array(value.shape[1..<(value.rank - 1)]),
                    data: scores))
        }
        var outMasks = [Tensor?](repeating: nil, count: outs.count)
        outMasks[0] = qMask
        return (outs, outMasks)
    }

    override var parameterCount: Int {
        queryKernel.count + queryBias.count + keyKernel.count + keyBias.count + valueKernel.count + valueBias.count
            + (gateKernel?.count ?? 0) + gateBias.count + outputKernel.count + outputBias.count
    }
}
