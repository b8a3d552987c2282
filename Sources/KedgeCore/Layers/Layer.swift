/// A built layer: config parsed, weights attached and checked. Subclasses override what they need.
///
/// Layers are final subclasses dispatched through the vtable (no existentials, Embedded-compatible). The
/// graph calls `build` once at load with static shapes (batch and other unknown dims are -1), then
/// `forward` on every inference with concrete shapes.
public class Layer {
    public let name: String
    public let className: String

    init(spec: LayerSpec) {
        self.name = spec.name
        self.className = spec.className
    }

    /// Output shapes for the given input shapes; -1 means unknown and must propagate. Throws when the input
    /// does not fit the layer (wrong rank, weights that do not match the channels, ...).
    func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        return inputShapes
    }

    /// Called once at load; the default only infers shapes. Layers that pack weights for their kernel do it here.
    func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try outputShapes(inputShapes)
    }

    func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        throw KedgeError(.internalError, "layer '\(name)' (\(className)) has no forward pass")
    }

    // MARK: masks, keyword tensors and state (see Model/Graph.swift and Model/Masks.swift)

    /// True for layers that read input masks, keyword tensors (`initial_state`, `attention_mask`, ...) or call
    /// options, or that make masks themselves: the graph then runs `call(_:masks:arguments:)` instead of
    /// `forward(_:)`. Other layers never see masks; the graph passes them on as Keras's `compute_mask` does
    /// for their class (`MaskRule`).
    var handlesMasks: Bool { false }

    /// `build` for a call that may pass tensors by keyword. The default takes positional tensors only.
    func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try rejectKeywordTensors(arguments)
        return try build(inputShapes)
    }

    /// `outputShapes` for a later call of a shared layer (see `build(_:arguments:)`).
    func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try rejectKeywordTensors(arguments)
        return try outputShapes(inputShapes)
    }

    /// The full call, for layers with `handlesMasks`: `masks` has one entry per input (nil: no mask; a mask holds
    /// 1 for kept and 0 for masked steps). Returns the outputs and one mask (or nil) per output.
    func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        let outs = try forward(inputs)
        return (outs, [Tensor?](repeating: nil, count: outs.count))
    }

    /// Clears state kept between predictions (stateful recurrent layers); `Model.resetStates()` calls it.
    func resetStates() {}

    func rejectKeywordTensors(_ arguments: CallArguments) throws(KedgeError) {
        for k in arguments.keywords where !k.isEmpty {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(name)' (\(className)) is called with tensor argument '\(k)', which Kedge does not support for this class; supported: positional inputs only"
            )
        }
    }

    /// Number of weights (as Keras counts parameters), for `kedge inspect`.
    var parameterCount: Int { 0 }

    // MARK: load-time fusion (see Model/Fusion.swift)

    /// Folds `y = x * scale + shift` (per output channel, on the last axis) into this layer's weights.
    /// Returns false when this layer cannot absorb it; then nothing was changed.
    func absorbScaleShift(scale: [Float], shift: [Float]) -> Bool { false }

    /// Applies `activation` to this layer's output inside its kernel. Returns false when it cannot.
    func absorbActivation(_ activation: Activation) -> Bool { false }

    /// Set by layers that compute `x * scale + shift` per channel on the last axis (inference BatchNormalization).
    var scaleShiftForFolding: ([Float], [Float])? { nil }

    /// Set by layers that only apply a pointwise activation (Activation, ReLU, ...).
    var activationForFusion: Activation? { nil }

    // MARK: helpers for subclasses

    func arityError(_ got: Int, expected: Int) -> KedgeError {
        KedgeError(.shapeMismatch, "layer '\(name)' (\(className)) expects \(expected) input(s), got \(got)")
    }

    func shapeError(_ what: String) -> KedgeError {
        KedgeError(.shapeMismatch, "layer '\(name)' (\(className)): \(what)")
    }

    func configError(_ what: String) -> KedgeError {
        KedgeError(.invalidConfig, "layer '\(name)' (\(className)): \(what)")
    }
}

/// What a layer builder gets: the layer's Keras config, its weights, and the file's Keras generation.
public struct LayerSpec {
    public var name: String
    public var className: String
    public var config: LayerConfig
    /// 1, 2 or 3: definitions differ between generations (e.g. hard_sigmoid, GRU reset_after defaults).
    public var kerasMajor: Int
    /// Weights in the order `LayerCatalog.weightNames` lists them, already checked to exist.
    public var weights: [String: Tensor]

    public func weight(_ weightName: String) throws(KedgeError) -> Tensor {
        guard let w = weights[weightName] else {
            throw KedgeError(.missingWeight, "layer '\(name)' (\(className)) is missing weight '\(weightName)'")
        }
        return w
    }

    /// Refuses an option that Keras saves with a default value Kedge implements, when the file has another value:
    /// a layer must never silently compute something other than what Keras computed.
    public func requireDefault(_ key: String, is expected: Int) throws(KedgeError) {
        let v = try config.int(key, default: expected)
        guard v == expected else {
            throw KedgeError(
                .unsupportedLayer,
                "layer '\(name)' (\(className)): option \(key)=\(v) is not supported; supported: \(key)=\(expected)")
        }
    }

    /// Refuses a non-null option Kedge does not implement (`what` says what is supported instead).
    public func requireAbsent(_ key: String, supported what: String) throws(KedgeError) {
        guard !config.has(key) else {
            throw KedgeError(
                .unsupportedLayer, "layer '\(name)' (\(className)): option \(key) is not supported; supported: \(what)")
        }
    }

    /// Checks a weight's shape against what the config implies; -1 entries match anything.
    public func weight(_ weightName: String, shape expected: [Int]) throws(KedgeError) -> Tensor {
        let w = try weight(weightName)
        var ok = w.shape.count == expected.count
        if ok { for i in 0..<expected.count where expected[i] >= 0 && expected[i] != w.shape[i] { ok = false } }
        if !ok {
            throw KedgeError(
                .shapeMismatch,
                "layer '\(name)' (\(className)): weight '\(weightName)' has shape \(describeShape(w.shape)) but the config implies \(describeShape(expected))"
            )
        }
        return w
    }
}
