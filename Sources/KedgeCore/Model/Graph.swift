/// A model config turned into an executable schedule: layer calls in dependency order, reading and writing
/// numbered tensor slots. Slots are released after their last reader, so peak memory follows liveness.
final class Graph {
    struct Step {
        var layer: Layer
        /// The call number of `layer` (shared layers are called more than once).
        var call: Int
        /// The layer's inputs (positional, then keyword tensors), then any explicit `mask=` tensors.
        var inputs: [Int]
        var outputs: [Int]
        /// How the call passed its tensors (keywords, options); `.plain` for most calls.
        var arguments: CallArguments = .plain
        /// With an explicit `mask=` argument: for each layer input, the slot of its mask or -1. Empty otherwise.
        var explicitMasks: [Int] = []
        var maskRule: MaskRule = .drop

        /// Inputs the layer itself receives (the rest of `inputs` are explicit masks).
        var layerInputCount: Int { explicitMasks.isEmpty ? inputs.count : explicitMasks.count }
    }

    var steps: [Step] = []
    var inputSlots: [Int] = []
    var outputSlots: [Int] = []
    var slotShapes: [[Int]] = []
    /// The name each slot is reported under by `--all-layers` (`layer`, `layer_1` for a second output,
    /// `layer@1` for a shared layer's second call).
    var slotNames: [String] = []
    /// After which step a slot is no longer needed (-1: never read, `Int.max`: a graph output or input).
    var lastUse: [Int] = []
    /// Every layer built, in config order (nested models appear as one `NestedModel` layer).
    var layers: [Layer] = []

    init(config: ModelConfig, weights: WeightStore, pathPrefix: String = "") throws(KedgeError) {
        var slotOf: [String: Int] = [:]
        func key(_ r: TensorRef) -> String { r.layer + "#" + String(r.node) + "#" + String(r.tensor) }
        // Slots are keyed by node index as `output_layers` count them (a nested functional model's first call
        // is node 1, see `LayerEntry.nodeIndexOffset`). Keras 2 numbers inbound references the same way;
        // Keras 3 writes inbound references with the raw call index, so those are shifted here.
        var offsetOf: [String: Int] = [:]
        for e in config.layers { offsetOf[e.name] = e.nodeIndexOffset }
        func inboundKey(_ r: TensorRef) -> String {
            var r = r
            if config.kerasMajor >= 3 { r.node += offsetOf[r.layer] ?? 0 }
            return key(r)
        }
        func newSlot(_ shape: [Int], _ name: String) -> Int {
            slotShapes.append(shape)
            slotNames.append(name)
            return slotShapes.count - 1
        }

        // Inputs first, in the model's declared order.
        for (i, r) in config.inputs.enumerated() {
            let s = newSlot(config.inputShapes[i], r.layer)
            slotOf[key(TensorRef(layer: r.layer, node: 0, tensor: 0))] = s
            inputSlots.append(s)
        }

        // Build every non-input layer once.
        // Each layer with whether its `build` (first call) has run; later calls of a shared layer only infer shapes.
        var built: [String: (layer: Layer, hasBuilt: Bool)] = [:]
        for entry in config.layers where entry.className != "InputLayer" {
            let path = pathPrefix + entry.name
            let layer: Layer
            if let inner = entry.inner {
                let g = try Graph(config: inner, weights: weights, pathPrefix: path + "/")
                layer = NestedModel(name: entry.name, className: entry.className, graph: g)
            } else {
                let names = try LayerCatalog.weightNames(entry.config)
                let available = weights.weights(ofLayer: path)
                var ws: [String: Tensor] = [:]
                for n in names {
                    guard let t = available[n] else {
                        throw KedgeError(
                            .missingWeight,
                            "layer '\(path)' (\(entry.className)) needs weight '\(n)', which the bundle does not have")
                    }
                    ws[n] = t
                }
                let spec = LayerSpec(
                    name: entry.name, className: entry.className, config: entry.config, kerasMajor: config.kerasMajor,
                    weights: ws)
                layer = try LayerCatalog.make(spec)
            }
            built[entry.name] = (layer, false)
            layers.append(layer)
        }

        // Schedule calls whose inputs are ready until none is left; a pass that schedules nothing means the
        // config refers to a tensor that no call produces.
        var pending: [(entry: LayerEntry, call: Int)] = []
        var ruleOf: [String: MaskRule] = [:]
        for entry in config.layers where entry.className != "InputLayer" {
            ruleOf[entry.name] = MaskRule.of(entry.config, kerasMajor: config.kerasMajor)
        }
        for entry in config.layers where entry.className != "InputLayer" {
            for k in entry.inboundNodes.indices { pending.append((entry, k)) }
        }
        while !pending.isEmpty {
            var rest: [(entry: LayerEntry, call: Int)] = []
            for p in pending {
                var ins: [Int] = []
                var ready = true
                for r in p.entry.inboundNodes[p.call] {
                    guard let s = slotOf[inboundKey(r)] else { ready = false; break }
                    ins.append(s)
                }
                // Keyword tensors follow the positional ones; an explicit `mask=` becomes the masks of the
                // positional inputs (in order) and is read by the graph, not by the layer.
                var arguments = CallArguments.plain
                var maskRefs: [TensorRef?] = []
                if p.call < p.entry.inboundKeywords.count {
                    let kw = p.entry.inboundKeywords[p.call]
                    arguments.options = kw.options
                    var names = [String](repeating: "", count: ins.count)
                    for (n, r) in kw.tensors {
                        if n == "mask" { maskRefs.append(r); continue }
                        guard let r else {
                            throw KedgeError(
                                .unsupportedLayer,
                                "layer '\(p.entry.name)' (\(p.entry.className)) is called with a None inside tensor argument '\(n)', which Kedge does not support")
                        }
                        guard let s = slotOf[inboundKey(r)] else { ready = false; break }
                        ins.append(s)
                        names.append(n)
                    }
                    if names.contains(where: { !$0.isEmpty }) { arguments.keywords = names }
                }
                var explicitMasks: [Int] = []
                if ready && !maskRefs.isEmpty {
                    explicitMasks = [Int](repeating: -1, count: ins.count)
                    for (k, r) in maskRefs.enumerated() where k < ins.count {
                        guard let r else { continue }
                        guard let s = slotOf[inboundKey(r)] else { ready = false; break }
                        explicitMasks[k] = s
                    }
                }
                if !ready { rest.append(p); continue }
                arguments.explicitMask = !explicitMasks.isEmpty
                let layerInputs = ins
                for s in explicitMasks where s >= 0 { ins.append(s) }
                let (layer, hasBuilt) = built[p.entry.name]!
                let inShapes = layerInputs.map { slotShapes[$0] }
                let outShapes: [[Int]]
                if hasBuilt {
                    outShapes = try layer.outputShapes(inShapes, arguments: arguments)
                } else {
                    outShapes = try layer.build(inShapes, arguments: arguments)
                    built[p.entry.name]!.hasBuilt = true
                }
                var outs: [Int] = []
                for (t, shape) in outShapes.enumerated() {
                    var n = p.entry.name
                    if p.call > 0 { n += "@" + String(p.call) }
                    if t > 0 { n += "_" + String(t) }
                    let s = newSlot(shape, n)
                    slotOf[key(TensorRef(layer: p.entry.name, node: p.call + p.entry.nodeIndexOffset, tensor: t))] = s
                    outs.append(s)
                }
                steps.append(
                    Step(
                        layer: layer, call: p.call, inputs: ins, outputs: outs, arguments: arguments,
                        explicitMasks: explicitMasks, maskRule: ruleOf[p.entry.name] ?? .drop))
            }
            if rest.count == pending.count {
                let e = rest[0].entry
                var missing = ""
                var refs = e.inboundNodes[rest[0].call]
                if rest[0].call < e.inboundKeywords.count {
                    for (_, r) in e.inboundKeywords[rest[0].call].tensors { if let r { refs.append(r) } }
                }
                for r in refs where slotOf[inboundKey(r)] == nil {
                    missing = r.layer + "[" + String(r.node) + "][" + String(r.tensor) + "]"
                }
                throw KedgeError(
                    .invalidConfig,
                    "model '\(config.name)': layer '\(e.name)' reads tensor \(missing), which no layer in the config produces")
            }
            pending = rest
        }

        for r in config.outputs {
            guard let s = slotOf[key(r)] else {
                throw KedgeError(
                    .invalidConfig, "model '\(config.name)': output '\(r.layer)' is not produced by any layer call")
            }
            outputSlots.append(s)
        }
        computeLiveness()
    }

    func computeLiveness() {
        lastUse = [Int](repeating: -1, count: slotShapes.count)
        for (i, st) in steps.enumerated() { for s in st.inputs { lastUse[s] = i } }
        for s in outputSlots { lastUse[s] = Int.max }
        for s in inputSlots { lastUse[s] = Int.max }
    }

    var inputShapes: [[Int]] { inputSlots.map { slotShapes[$0] } }
    var outputShapes: [[Int]] { outputSlots.map { slotShapes[$0] } }

    /// Runs the schedule. `observe`, when given, sees every step's outputs (for `--all-layers` and visualisation)
    /// and keeps nothing alive itself.
    func run(_ inputs: [Tensor], observe: ((String, Tensor) -> Void)? = nil) throws(KedgeError) -> [Tensor] {
        try run(inputs, masks: [], observe: observe).outputs
    }

    /// Runs the schedule with masks on the inputs (empty or one per input, nil for none); also returns the
    /// outputs' masks. Masks are tracked only once some layer makes one, so mask-free models pay nothing.
    func run(_ inputs: [Tensor], masks inputMasks: [Tensor?], observe: ((String, Tensor) -> Void)? = nil)
        throws(KedgeError) -> (outputs: [Tensor], masks: [Tensor?])
    {
        var values = [Tensor?](repeating: nil, count: slotShapes.count)
        var masks: [Tensor?] = []
        for (i, s) in inputSlots.enumerated() { values[s] = inputs[i] }
        if inputMasks.contains(where: { $0 != nil }) {
            masks = [Tensor?](repeating: nil, count: slotShapes.count)
            for (i, s) in inputSlots.enumerated() where i < inputMasks.count { masks[s] = inputMasks[i] }
        }
        for (i, st) in steps.enumerated() {
            let n = st.layerInputCount
            var ins: [Tensor] = []
            ins.reserveCapacity(n)
            for k in 0..<n { ins.append(values[st.inputs[k]]!) }
            var inMasks: [Tensor?] = []
            if !st.explicitMasks.isEmpty {
                for s in st.explicitMasks { inMasks.append(s >= 0 ? values[s]! : nil) }
            } else if !masks.isEmpty {
                for k in 0..<n { inMasks.append(masks[st.inputs[k]]) }
            }
            let anyMask = inMasks.contains(where: { $0 != nil })
            // Drop the graph's own references before the call, so a layer holding the only reference can
            // reuse the buffer in place.
            for s in st.inputs where lastUse[s] == i { values[s] = nil }
            let outs: [Tensor]
            var outMasks: [Tensor?] = []
            if st.layer.handlesMasks {
                if inMasks.isEmpty { inMasks = [Tensor?](repeating: nil, count: n) }
                (outs, outMasks) = try st.layer.call(ins, masks: inMasks, arguments: st.arguments)
            } else if anyMask, case .maskedTemporalMean = st.maskRule, let m = inMasks[0],
                let y = MaskRule.maskedTemporalMean(ins[0], mask: m)
            {
                outs = [y]
            } else {
                outs = try st.layer.forward(ins)
                if anyMask { outMasks = st.maskRule.outputMasks(inputs: ins, masks: inMasks, outputs: outs) }
            }
            ins = []
            guard outs.count == st.outputs.count else {
                throw KedgeError(
                    .internalError,
                    "layer '\(st.layer.name)' returned \(outs.count) tensors, expected \(st.outputs.count)")
            }
            for (k, s) in st.outputs.enumerated() {
                if let observe { observe(slotNames[s], outs[k]) }
                if lastUse[s] >= i { values[s] = outs[k] }
                if k < outMasks.count, let m = outMasks[k], lastUse[s] >= i {
                    if masks.isEmpty { masks = [Tensor?](repeating: nil, count: slotShapes.count) }
                    masks[s] = m
                }
            }
        }
        var result: [Tensor] = []
        var resultMasks: [Tensor?] = []
        for s in outputSlots {
            result.append(values[s]!)
            resultMasks.append(masks.isEmpty ? nil : masks[s])
        }
        return (result, resultMasks)
    }

    func resetStates() {
        for l in layers { l.resetStates() }
    }
}

/// A Sequential/Functional model used as a layer of another model.
final class NestedModel: Layer {
    let graph: Graph

    init(name: String, className: String, graph: Graph) {
        self.graph = graph
        super.init(spec:
            LayerSpec(
                name: name, className: className,
                config: LayerConfig(layerName: name, className: className, json: JSONObject()), kerasMajor: 3,
                weights: [:]))
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == graph.inputSlots.count else {
            throw arityError(inputShapes.count, expected: graph.inputSlots.count)
        }
        return graph.outputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        try graph.run(inputs)
    }

    // A nested model takes its inputs' masks and hands back its outputs' masks, as a Keras Functional does.
    override var handlesMasks: Bool { true }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        try graph.run(inputs, masks: masks)
    }

    override func resetStates() { graph.resetStates() }

    override var parameterCount: Int {
        var n = 0
        for l in graph.layers { n += l.parameterCount }
        return n
    }
}
