// Keras's layer wrappers (keras/src/layers/rnn/bidirectional.py, time_distributed.py).

/// The wrapped layer's `{class_name, config}` as a LayerConfig named after the wrapper's key.
func wrappedLayerConfig(_ c: LayerConfig, _ key: String) throws(KedgeError) -> LayerConfig? {
    guard let l = c[key] else { return nil }
    guard let cls = l["class_name"]?.string, let obj = l["config"]?.object else {
        throw c.error(key, "is not a serialized layer {class_name, config}")
    }
    let name = obj["name"]?.string ?? (c.layerName + "_" + key)
    return LayerConfig(layerName: name, className: cls, json: obj)
}

// MARK: - Bidirectional

/// The forward and backward configs of a Bidirectional. Without `backward_layer`, Keras copies the forward
/// config with go_backwards flipped (tf-keras) or set (Keras 3).
func bidirectionalConfigs(_ c: LayerConfig, kerasMajor: Int) throws(KedgeError) -> (LayerConfig, LayerConfig) {
    guard let fwd = try wrappedLayerConfig(c, "layer") else { throw c.error("layer", "is missing") }
    guard recurrentClassNames.contains(fwd.className) else {
        throw KedgeError(
            .unsupportedLayer,
            "layer '\(c.layerName)' (Bidirectional) wraps a '\(fwd.className)', which Kedge does not support there; supported: \(recurrentClassNames.joined(separator: ", "))"
        )
    }
    if let bwd = try wrappedLayerConfig(c, "backward_layer") {
        guard recurrentClassNames.contains(bwd.className) else {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(c.layerName)' (Bidirectional): backward_layer is a '\(bwd.className)'; supported: \(recurrentClassNames.joined(separator: ", "))"
            )
        }
        return (fwd, bwd)
    }
    var obj = fwd.json
    let goBackwards = fwd["go_backwards"]?.bool ?? false
    obj["go_backwards"] = .bool(kerasMajor >= 3 ? true : !goBackwards)
    return (fwd, LayerConfig(layerName: "backward_" + fwd.layerName, className: fwd.className, json: obj))
}

func bidirectionalWeightNames(_ c: LayerConfig) throws(KedgeError) -> [String] {
    let (f, b) = try bidirectionalConfigs(c, kerasMajor: 3)
    return (try recurrentWeightNames(f)).map { "forward_" + $0 } + (try recurrentWeightNames(b)).map { "backward_" + $0 }
}

final class Bidirectional: Layer {
    enum Merge { case concat, sum, mul, ave, none }
    let forward: RecurrentLayer
    let backward: RecurrentLayer
    let merge: Merge

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        let (fc, bc) = try bidirectionalConfigs(c, kerasMajor: s.kerasMajor)
        if c.json["merge_mode"] != nil && c["merge_mode"] == nil {
            merge = .none
        } else {
            // None (null) is handled above; the error lists it too.
            switch try c.choice("merge_mode", ["concat", "sum", "mul", "ave", "None"], default: "concat") {
            case "sum": merge = .sum
            case "mul": merge = .mul
            case "ave": merge = .ave
            case "None": merge = .none
            default: merge = .concat
            }
        }
        func inner(_ cfg: LayerConfig, _ prefix: String) throws(KedgeError) -> RecurrentLayer {
            var ws: [String: Tensor] = [:]
            for n in try recurrentWeightNames(cfg) { ws[n] = try s.weight(prefix + n) }
            return try RecurrentLayer(
                LayerSpec(name: s.name + "/" + cfg.layerName, className: cfg.className, config: cfg, kerasMajor: s.kerasMajor, weights: ws))
        }
        forward = try inner(fc, "forward_")
        backward = try inner(bc, "backward_")
        // Keras: a masked step of a returned sequence is zero in both directions.
        forward.zeroOutputForMask = forward.returnSequences
        backward.zeroOutputForMask = backward.returnSequences
        super.init(spec: s)
        if forward.goBackwards == backward.goBackwards {
            throw configError("the forward and backward layers must differ in go_backwards")
        }
        if forward.returnSequences != backward.returnSequences || forward.returnState != backward.returnState {
            throw configError("the forward and backward layers must agree on return_sequences and return_state")
        }
    }

    private func shapes(_ inputShapes: [[Int]], build: Bool) throws(KedgeError) -> [[Int]] {
        let (fIn, bIn) = try split(inputShapes)
        let f = build ? try forward.build(fIn) : try forward.outputShapes(fIn)
        let b = build ? try backward.build(bIn) : try backward.outputShapes(bIn)
        var y = f[0]
        var out: [[Int]]
        switch merge {
        case .concat:
            let l = y.count - 1
            y[l] = y[l] < 0 || b[0][l] < 0 ? -1 : y[l] + b[0][l]
            out = [y]
        case .none: out = [y, b[0]]
        default: out = [y]
        }
        out += f.dropFirst()
        out += b.dropFirst()
        return out
    }

    /// Splits initial states: the first half for the forward layer, the rest for the backward one.
    private func split<T>(_ inputs: [T]) throws(KedgeError) -> ([T], [T]) {
        let extra = inputs.count - 1
        guard extra % 2 == 0 else { throw shapeError("got \(extra) initial states; Bidirectional needs an even number") }
        let half = extra / 2
        return ([inputs[0]] + Array(inputs[1..<(1 + half)]), [inputs[0]] + Array(inputs[(1 + half)...]))
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try shapes(inputShapes, build: false)
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try shapes(inputShapes, build: true)
    }

    override func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try checkKeywords(arguments)
        return try build(inputShapes)
    }

    override func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try checkKeywords(arguments)
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
        try call(inputs, masks: [Tensor?](repeating: nil, count: inputs.count), arguments: .plain).outputs
    }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        let mask = masks.first ?? nil
        let used = forward.keras3IgnoresMask(inputs.count, arguments) ? nil : mask
        let (fIn, bIn) = try split(inputs)
        let f = try forward.run(fIn, mask: used).outputs
        let b = try backward.run(bIn, mask: used).outputs
        var y = f[0]
        var yr = b[0]
        if forward.returnSequences { yr = reverseTime(yr) }
        var outs: [Tensor] = []
        switch merge {
        case .concat:
            let l = y.rank - 1
            let n1 = y.shape[l]
            let n2 = yr.shape[l]
            let rows = y.count / n1
            var d = [Float]()
            d.reserveCapacity(y.count + yr.count)
            for r in 0..<rows {
                d.append(contentsOf: y.data[(r * n1)..<((r + 1) * n1)])
                d.append(contentsOf: yr.data[(r * n2)..<((r + 1) * n2)])
            }
            var shape = y.shape
            shape[l] = n1 + n2
            outs = [Tensor(shape: shape, data: d)]
        case .sum:
            for i in 0..<y.count { y.data[i] += yr.data[i] }
            outs = [y]
        case .mul:
            for i in 0..<y.count { y.data[i] *= yr.data[i] }
            outs = [y]
        case .ave:
            for i in 0..<y.count { y.data[i] = (y.data[i] + yr.data[i]) / 2 }
            outs = [y]
        case .none:
            outs = [y, yr]
        }
        let merged = outs.count
        outs += f.dropFirst()
        outs += b.dropFirst()
        var outMasks = [Tensor?](repeating: nil, count: outs.count)
        if forward.returnSequences { for i in 0..<merged { outMasks[i] = mask } }
        return (outs, outMasks)
    }

    private func reverseTime(_ t: Tensor) -> Tensor {
        let b = t.shape[0]
        let steps = t.shape[1]
        let inner = t.count / max(b * steps, 1)
        var out = t
        for i in 0..<b {
            for s in 0..<steps {
                let src = (i * steps + s) * inner
                let dst = (i * steps + steps - 1 - s) * inner
                for k in 0..<inner { out.data[dst + k] = t.data[src + k] }
            }
        }
        return out
    }

    override func resetStates() {
        forward.resetStates()
        backward.resetStates()
    }

    override var parameterCount: Int { forward.parameterCount + backward.parameterCount }
}

// MARK: - TimeDistributed

/// The weight names of a TimeDistributed: the inner layer's own, or `<layer>/<weight>` for every layer of an
/// inner model (nested models add their own prefix).
func timeDistributedWeightNames(_ c: LayerConfig) throws(KedgeError) -> [String] {
    guard let inner = try wrappedLayerConfig(c, "layer") else { throw c.error("layer", "is missing") }
    if ModelConfig.modelClassNames.contains(inner.className) {
        let m = try ModelConfig.parseModel(className: inner.className, config: .object(inner.json), kerasMajor: 3)
        return try modelWeightNames(m, prefix: "")
    }
    return try LayerCatalog.weightNames(inner)
}

func modelWeightNames(_ m: ModelConfig, prefix: String) throws(KedgeError) -> [String] {
    var out: [String] = []
    for e in m.layers where e.className != "InputLayer" {
        if let inner = e.inner {
            out += try modelWeightNames(inner, prefix: prefix + e.name + "/")
        } else {
            for w in try LayerCatalog.weightNames(e.config) { out.append(prefix + e.name + "/" + w) }
        }
    }
    return out
}

/// Applies the inner layer to every timestep: (batch, time, ...) runs as (batch * time, ...).
final class TimeDistributed: Layer {
    let inner: Layer

    init(_ s: LayerSpec) throws(KedgeError) {
        guard let ic = try wrappedLayerConfig(s.config, "layer") else { throw s.config.error("layer", "is missing") }
        if ModelConfig.modelClassNames.contains(ic.className) {
            let m = try ModelConfig.parseModel(className: ic.className, config: .object(ic.json), kerasMajor: s.kerasMajor)
            var store = WeightStore()
            for n in try modelWeightNames(m, prefix: "") {
                // "<layer path>/<weight>": the weight name is the last component (cut on UTF-8 bytes, not
                // Characters: see Support/UTF8Text.swift).
                let b = Array(n.utf8)
                var cut = b.count
                while cut > 0 && b[cut - 1] != UInt8(ascii: "/") { cut -= 1 }
                let layerPath = String(decoding: b[0..<(cut - 1)], as: UTF8.self)
                store.set(layer: layerPath, weight: String(decoding: b[cut...], as: UTF8.self), try s.weight(n))
            }
            let g = try Graph(config: m, weights: store)
            inner = NestedModel(name: ic.layerName, className: ic.className, graph: g)
        } else {
            var ws: [String: Tensor] = [:]
            for n in try LayerCatalog.weightNames(ic) { ws[n] = try s.weight(n) }
            inner = try LayerCatalog.make(
                LayerSpec(name: ic.layerName, className: ic.className, config: ic, kerasMajor: s.kerasMajor, weights: ws))
        }
        super.init(spec: s)
    }

    private func shapes(_ inputShapes: [[Int]], build: Bool) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        guard s.count >= 3 else {
            throw shapeError("input must have rank >= 3 (batch, time, ...); got \(describeShape(s))")
        }
        let merged = s[0] < 0 || s[1] < 0 ? -1 : s[0] * s[1]
        let innerShape = [merged] + Array(s.dropFirst(2))
        let outs = build ? try inner.build([innerShape]) : try inner.outputShapes([innerShape])
        guard outs.count == 1 else {
            throw configError("the wrapped layer '\(inner.name)' has \(outs.count) outputs; TimeDistributed needs one")
        }
        return [[s[0], s[1]] + Array(outs[0].dropFirst())]
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] { try shapes(inputShapes, build: false) }
    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] { try shapes(inputShapes, build: true) }

    // Keras 3 keeps the input's mask; the inner layer sees none.
    override var handlesMasks: Bool { true }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        (try forward(inputs), [masks.first ?? nil])
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let b = x.shape[0]
        let t = x.shape[1]
        let y = try inner.forward([x.reshaped([b * t] + Array(x.shape.dropFirst(2)))])[0]
        return [y.reshaped([b, t] + Array(y.shape.dropFirst()))]
    }

    override func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool {
        inner.absorbScaleShift(scale: scale, shift: shift)
    }

    override func absorbActivation(_ a: Activation) -> Bool { inner.absorbActivation(a) }

    override func resetStates() { inner.resetStates() }

    override var parameterCount: Int { inner.parameterCount }
}

// MARK: - .keras storage order

extension LayerCatalog {
    /// Keras 3 `.keras` weight files store a layer's variables as `_walk_saveable` visits them: the layer's own
    /// `vars`, then its child objects sorted by attribute name (private ones last), list members under
    /// auto names (`lstm_cell`, `dense_1`, ...). A reader that takes variables in that order (sorting list
    /// members by name) gets them in this order, which differs from `weightNames` (Keras's `layer.weights`)
    /// for Bidirectional (backward_layer sorts first), MultiHeadAttention (key, output, query, value, gate),
    /// RNN over StackedRNNCells and TimeDistributed over a model. Returns indices into `weightNames`.
    public static func v3StorageOrder(_ config: LayerConfig) throws(KedgeError) -> [Int] {
        let names = try weightNames(config)
        let stored = try v3StorageNames(config)
        var out: [Int] = []
        for n in stored {
            guard let i = names.firstIndex(of: n) else { return Array(names.indices) }
            out.append(i)
        }
        return out.count == names.count ? out : Array(names.indices)
    }

    static func v3StorageNames(_ c: LayerConfig) throws(KedgeError) -> [String] {
        switch c.className {
        case "Bidirectional":
            let (f, b) = try bidirectionalConfigs(c, kerasMajor: 3)
            return (try v3StorageNames(b)).map { "backward_" + $0 } + (try v3StorageNames(f)).map { "forward_" + $0 }
        case "RNN":
            let cells = try recurrentCellConfigs(c)
            guard cells.count > 1 else { return try weightNames(c) }
            let all = try weightNames(c)
            var used: [String: Int] = [:]
            var keyed: [(key: (String, Int), names: [String])] = []
            for (i, cc) in cells.enumerated() {
                let prefix = "cell_\(i)_"
                keyed.append((autoName(kerasSnakeCase(cc.className), &used), all.filter { $0.hasPrefix(prefix) }))
            }
            keyed.sort { $0.key.0 != $1.key.0 ? $0.key.0 < $1.key.0 : $0.key.1 < $1.key.1 }
            return keyed.flatMap { $0.names }
        case "MultiHeadAttention":
            let all = try weightNames(c)
            var out: [String] = []
            for p in ["key", "attention_output", "query", "value", "gate"] { out += all.filter { $0.hasPrefix(p + "/") } }
            return out
        case "TimeDistributed":
            guard let inner = try wrappedLayerConfig(c, "layer") else { return try weightNames(c) }
            if ModelConfig.modelClassNames.contains(inner.className) {
                let m = try ModelConfig.parseModel(className: inner.className, config: .object(inner.json), kerasMajor: 3)
                return try modelV3StorageNames(m, prefix: "")
            }
            return try v3StorageNames(inner)
        default:
            return try weightNames(c)
        }
    }

    static func modelV3StorageNames(_ m: ModelConfig, prefix: String) throws(KedgeError) -> [String] {
        var used: [String: Int] = [:]
        var keyed: [(key: (String, Int), names: [String])] = []
        for e in m.layers {
            if e.className == "InputLayer" && m.className == "Sequential" { continue }
            let key = autoName(kerasSnakeCase(e.className), &used)
            if e.className == "InputLayer" { continue }
            let names: [String]
            if let inner = e.inner {
                names = try modelV3StorageNames(inner, prefix: prefix + e.name + "/")
            } else {
                names = (try v3StorageNames(e.config)).map { prefix + e.name + "/" + $0 }
            }
            keyed.append((key, names))
        }
        keyed.sort { $0.key.0 != $1.key.0 ? $0.key.0 < $1.key.0 : $0.key.1 < $1.key.1 }
        return keyed.flatMap { $0.names }
    }

    /// Keras's unique auto name (`dense`, `dense_1`, ...) as a sort key (base, number; -1 for none).
    static func autoName(_ base: String, _ used: inout [String: Int]) -> (String, Int) {
        let n = used[base, default: 0]
        used[base] = n + 1
        return (base, n == 0 ? -1 : n)
    }

    /// Keras's `to_snake_case` (`SimpleRNNCell` -> `simple_rnn_cell`, `Conv2D` -> `conv2d`).
    static func kerasSnakeCase(_ name: String) -> String {
        func upper(_ c: Unicode.Scalar) -> Bool { c.value >= 65 && c.value <= 90 }
        func lower(_ c: Unicode.Scalar) -> Bool { c.value >= 97 && c.value <= 122 }
        let chars = Array(name.unicodeScalars.filter { upper($0) || lower($0) || ($0.value >= 48 && $0.value <= 57) || $0 == "_" })
        var step1: [Unicode.Scalar] = []
        for (i, c) in chars.enumerated() {
            if i > 0 && upper(c) && i + 1 < chars.count && lower(chars[i + 1]) { step1.append("_") }
            step1.append(c)
        }
        var out = ""
        for (i, c) in step1.enumerated() {
            if i > 0 && upper(c) && lower(step1[i - 1]) { out += "_" }
            out.unicodeScalars.append(upper(c) ? Unicode.Scalar(c.value + 32)! : c)
        }
        return out
    }
}
