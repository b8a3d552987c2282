// Keras masks (`_keras_mask`): a per-timestep 0/1 tensor that travels with a tensor from the layer that makes it
// (Embedding with mask_zero, Masking) to the layers that read it (recurrent layers, attention, ...). The graph
// keeps at most one mask per slot; layers that do not handle masks never see them, and the graph passes them
// on as Keras's `compute_mask` does for their class.

/// What a layer learns about one call beyond its positional tensors.
struct CallArguments {
    /// Per tensor input, the keyword it was passed by ("" for positional ones, which come first). Empty when all
    /// inputs are positional.
    var keywords: [String] = []
    /// Non-tensor keyword values of the call (`use_causal_mask`, `return_attention_scores`, `training`, ...).
    var options = JSONObject()
    /// The call passed `mask=` itself; otherwise masks are the ones Keras attaches to the inputs.
    var explicitMask = false

    static let plain = CallArguments()

    var isPlain: Bool { keywords.isEmpty && options.count == 0 }

    /// Positional inputs (those before the first keyword tensor).
    func positionalCount(of total: Int) -> Int {
        if keywords.isEmpty { return total }
        var n = 0
        for k in keywords where k.isEmpty { n += 1 }
        return n
    }

    /// Indices of the inputs passed as `keyword`, in order.
    func indices(of keyword: String) -> [Int] {
        var out: [Int] = []
        for (i, k) in keywords.enumerated() where k == keyword { out.append(i) }
        return out
    }

    func bool(_ key: String, default d: Bool) -> Bool { options[key]?.bool ?? d }
}

/// How a layer that does not handle masks itself passes them on (Keras's `supports_masking` + `compute_mask`).
enum MaskRule {
    /// Keras default: the layer destroys the mask (Keras 3 warns; tf-keras refuses to build such a model).
    case drop
    /// `supports_masking = True` with the default `compute_mask`: outputs keep the first input's mask.
    case keep
    /// Add/Subtract/Multiply/Average/Maximum/Minimum: Keras 3 ORs the masks when every input has one;
    /// tf-keras ANDs the masks that exist.
    case merge(keras3: Bool)
    /// Concatenate: masks broadcast to the inputs, concatenated on `axis`, then reduced over the last axis
    /// (Keras 3 with `any`, tf-keras with `all`).
    case concatenate(axis: Int, keras3: Bool)
    /// GlobalAveragePooling1D (channels_last) averages over unmasked steps only, and drops the mask.
    case maskedTemporalMean

    // Arrays, not Sets: looked up once per layer at load, and a Set literal costs ~3 KB of hashing code in kedge.wasm.
    static let keepClasses: [String] = [
        "Activation", "ReLU", "ELU", "LeakyReLU", "PReLU", "Softmax", "ThresholdedReLU", "Dense", "Identity", "Lambda",
        "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "BatchNormalization", "LayerNormalization", "GroupNormalization",
        "UnitNormalization", "Normalization", "Rescaling",
    ]
    static let mergeClasses: [String] = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]

    static func of(_ config: LayerConfig, kerasMajor: Int) -> MaskRule {
        let c = config.className
        if keepClasses.contains(c) { return .keep }
        if mergeClasses.contains(c) { return .merge(keras3: kerasMajor >= 3) }
        if c == "Concatenate" { return .concatenate(axis: (try? config.int("axis", default: -1)) ?? -1, keras3: kerasMajor >= 3) }
        if c == "GlobalAveragePooling1D" || c == "GlobalAvgPool1D" {
            let last = (try? config.channelsLast()) ?? true
            return last ? .maskedTemporalMean : .drop
        }
        return .drop
    }

    /// Output masks for a layer run through `forward(_:)`.
    func outputMasks(inputs: [Tensor], masks: [Tensor?], outputs: [Tensor]) -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: outputs.count)
        switch self {
        case .drop, .maskedTemporalMean:
            break
        case .keep:
            if let m = masks.first ?? nil { for i in out.indices { out[i] = m } }
        case .merge(let keras3):
            var acc: Tensor? = nil
            for m in masks {
                guard let m else {
                    if keras3 { return out }
                    continue
                }
                guard let a = acc else { acc = m; continue }
                guard a.shape == m.shape else { return out }
                var r = a
                for k in 0..<r.count { r.data[k] = keras3 ? max(a.data[k], m.data[k]) : min(a.data[k], m.data[k]) }
                acc = r
            }
            if !outputs.isEmpty { out[0] = acc }
        case .concatenate(let axis, let keras3):
            if !outputs.isEmpty {
                out[0] = MaskRule.concatenatedMask(inputs: inputs, masks: masks, axis: axis, any: keras3)
            }
        }
        return out
    }

    /// Keras's Concatenate.compute_mask: a full-rank boolean per input (ones where unmasked, the mask repeated over
    /// the last axis where its rank is one lower), concatenated on `axis`, reduced over the last axis.
    static func concatenatedMask(inputs: [Tensor], masks: [Tensor?], axis: Int, any: Bool) -> Tensor? {
        guard masks.contains(where: { $0 != nil }), let first = inputs.first else { return nil }
        let rank = first.rank
        let ax = axis < 0 ? axis + rank : axis
        guard ax >= 0 && ax < rank else { return nil }
        var full: [Tensor] = []
        for (i, x) in inputs.enumerated() {
            guard x.rank == rank else { return nil }
            if let m = masks[i] {
                if m.rank == rank - 1 {
                    let last = x.shape[rank - 1]
                    var t = Tensor(shape: x.shape)
                    for j in 0..<m.count { for k in 0..<last { t.data[j * last + k] = m.data[j] } }
                    full.append(t)
                } else if m.shape == x.shape {
                    full.append(m)
                } else {
                    return nil
                }
            } else {
                full.append(Tensor(shape: x.shape, repeating: 1))
            }
        }
        // Concatenate on `ax`.
        var outer = 1
        for d in 0..<ax { outer *= first.shape[d] }
        var shape = first.shape
        shape[ax] = 0
        for t in full { shape[ax] += t.shape[ax] }
        var data: [Float] = []
        data.reserveCapacity(Tensor.elementCount(shape))
        for o in 0..<outer {
            for t in full {
                let block = t.count / max(outer, 1)
                data.append(contentsOf: t.data[(o * block)..<((o + 1) * block)])
            }
        }
        let last = shape[rank - 1]
        let rows = data.count / max(last, 1)
        var r = [Float](repeating: 0, count: rows)
        for i in 0..<rows {
            var v: Float = any ? 0 : 1
            for k in 0..<last {
                let b = data[i * last + k] != 0
                if any && b { v = 1; break }
                if !any && !b { v = 0; break }
            }
            r[i] = v
        }
        return Tensor(shape: Array(shape.dropLast()), data: r)
    }

    /// GlobalAveragePooling1D with a mask: the mean over unmasked steps (Keras divides by the count of kept steps).
    static func maskedTemporalMean(_ x: Tensor, mask: Tensor) -> Tensor? {
        guard x.rank == 3, mask.count == x.shape[0] * x.shape[1] else { return nil }
        let b = x.shape[0]
        let t = x.shape[1]
        let f = x.shape[2]
        var out = Tensor(shape: [b, f])
        for i in 0..<b {
            var n: Float = 0
            for s in 0..<t where mask.data[i * t + s] != 0 {
                n += 1
                for k in 0..<f { out.data[i * f + k] += x.data[(i * t + s) * f + k] }
            }
            for k in 0..<f { out.data[i * f + k] /= n }
        }
        return out
    }
}
