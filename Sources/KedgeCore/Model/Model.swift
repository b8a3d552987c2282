/// A loaded model: the public face of the core. Built from the three bundle buffers (docs/FORMAT.md), it
/// validates everything at load (config, weights, shapes) so that `predict` only fails on bad inputs.
public final class Model {
    public struct TensorInfo {
        public let name: String
        /// Batch dimension first; -1 where unknown.
        public let shape: [Int]
    }

    public struct Options {
        /// Fold BatchNormalization and fuse activations into the preceding kernels. Off keeps every Keras
        /// layer's own output observable.
        public var fuse: Bool
        public init(fuse: Bool = true) { self.fuse = fuse }
    }

    public struct LayerSummary {
        public let name: String
        public let className: String
        public let outputShapes: [[Int]]
        public let parameters: Int
    }

    public let config: ModelConfig
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
    let graph: Graph

    public convenience init(
        modelJSON: [UInt8], weights: [UInt8], metadata: [UInt8], options: Options = Options()
    ) throws(KedgeError) {
        let meta = try BundleMetadata.parse(metadata)
        let json = try JSONParser.parse(modelJSON, what: "model.json")
        let config = try ModelConfig.parse(json, kerasVersion: meta.kerasVersion ?? json["keras_version"]?.string)
        let store = try WeightStore(metadata: meta, buffer: weights)
        try self.init(config: config, weights: store, options: options)
        if !meta.inputNames.isEmpty && meta.inputNames != config.inputNames {
            throw KedgeError(
                .invalidBundle, "model_metadata.json names inputs \(meta.inputNames) but model.json has \(config.inputNames)")
        }
    }

    public init(config: ModelConfig, weights: WeightStore, options: Options = Options()) throws(KedgeError) {
        self.config = config
        let g = try Graph(config: config, weights: weights)
        if options.fuse { g.fuse() }
        graph = g
        var ins: [TensorInfo] = []
        for (i, n) in config.inputNames.enumerated() { ins.append(TensorInfo(name: n, shape: g.inputShapes[i])) }
        inputs = ins
        var outs: [TensorInfo] = []
        for (i, n) in config.outputNames.enumerated() { outs.append(TensorInfo(name: n, shape: g.outputShapes[i])) }
        outputs = outs
    }

    /// Describes what the model expects, for error messages: `input (None, 28, 28, 1), mask (None, 10)`.
    public var expectedInputs: String {
        var s = ""
        for (i, t) in inputs.enumerated() { s += (i > 0 ? ", " : "") + t.name + " " + describeShape(t.shape) }
        return s
    }

    func check(_ x: [Tensor]) throws(KedgeError) {
        guard x.count == inputs.count else {
            throw KedgeError(.invalidInput, "the model takes \(inputs.count) input(s): \(expectedInputs); got \(x.count)")
        }
        for (i, t) in x.enumerated() {
            let want = inputs[i].shape
            var ok = t.shape.count == want.count
            if ok { for d in 0..<want.count where want[d] >= 0 && want[d] != t.shape[d] { ok = false } }
            if ok { for d in t.shape where d <= 0 { ok = false } }
            if !ok {
                throw KedgeError(
                    .invalidInput,
                    "input '\(inputs[i].name)' has shape \(describeShape(t.shape)); the model expects \(expectedInputs)")
            }
        }
    }

    /// Runs the model on inputs given in `inputs` order; returns outputs in `outputs` order.
    public func predict(_ x: [Tensor]) throws(KedgeError) -> [Tensor] {
        try check(x)
        return try graph.run(x)
    }

    /// Clears the state that stateful recurrent layers keep between `predict` calls (Keras's `reset_states`).
    public func resetStates() { graph.resetStates() }

    /// Inputs by name; every input must be given, and no unknown name is accepted.
    public func predict(named: [(String, Tensor)]) throws(KedgeError) -> [Tensor] {
        try predict(try order(named))
    }

    /// Also hands every layer's output to `observe`, in execution order.
    public func predict(_ x: [Tensor], observe: @escaping (String, Tensor) -> Void) throws(KedgeError) -> [Tensor] {
        try check(x)
        return try graph.run(x, observe: observe)
    }

    public func order(_ named: [(String, Tensor)]) throws(KedgeError) -> [Tensor] {
        var x: [Tensor] = []
        for info in inputs {
            guard let t = named.first(where: { $0.0 == info.name }) else {
                throw KedgeError(.invalidInput, "input '\(info.name)' is missing; the model expects \(expectedInputs)")
            }
            x.append(t.1)
        }
        for (n, _) in named where !inputs.contains(where: { $0.name == n }) {
            throw KedgeError(.invalidInput, "the model has no input '\(n)'; it expects \(expectedInputs)")
        }
        return x
    }

    /// Every layer with its output shapes (first call) and parameter count, in config order.
    public var layerSummaries: [LayerSummary] {
        var out: [LayerSummary] = []
        for (i, n) in config.inputNames.enumerated() {
            out.append(LayerSummary(name: n, className: "InputLayer", outputShapes: [inputs[i].shape], parameters: 0))
        }
        for l in graph.layers {
            var shapes: [[Int]] = []
            if let st = graph.steps.first(where: { $0.layer === l }) { shapes = st.outputs.map { graph.slotShapes[$0] } }
            out.append(LayerSummary(name: l.name, className: l.className, outputShapes: shapes, parameters: l.parameterCount))
        }
        return out
    }
}
