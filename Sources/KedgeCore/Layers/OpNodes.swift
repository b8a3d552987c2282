/// Keras 3 op nodes: a Functional model built with `keras.ops` calls (or layers whose `call` uses them, as
/// MobileNetV3's hard-swish `x * relu6(x + 3.0) * (1/6)` does) saves each call as a node with
/// `"module": "keras.src.ops.numpy"` (or `.nn`, `.core`, ...), an op class name and the call's arguments, Python
/// numbers among them. Several op class names are also layer class names with other semantics (`Add` with a
/// constant operand, `Average(x, axis, weights)`, `Dot`, `Reshape(x, newshape)`), so an op node is never routed to
/// a layer by its class name alone: only the ops below run, each by a layer that reads the op's arguments
/// (`LayerConfig.opModule` tells it that it runs an op); every other op node is refused at load, naming it.
public enum OpNodes {
    /// The op classes Kedge runs, by the layer class that runs them: the arithmetic ops (scalar or same-rank
    /// broadcast operands, `ElementwiseMerge`), `Concatenate` (the op's `axis`), and the boolean ops Keras 3
    /// records for masks (`MaskOps.swift`, kedge-full.wasm).
    public static let supported: [String] = [
        "Add", "Subtract", "Multiply", "Maximum", "Minimum", "Concatenate",
        "NotEqual", "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalOr",
        "Any", "All", "LogicalNot", "ExpandDims", "Squeeze", "ZerosLike", "OnesLike", "ConvertToTensor", "Cast",
    ]

    static func isOpModule(_ module: String) -> Bool {
        module.utf8HasPrefix("keras.src.ops") || module.utf8HasPrefix("keras.ops")
    }

    /// Op classes that share a layer's class name (keras.src.ops.numpy / .nn), with other arguments and semantics.
    static let layerNamed: [String] = [
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "Reshape", "Softmax",
    ]

    /// The op module of a config entry, nil for a layer; throws for an op node Kedge does not run.
    static func module(of entry: JSON, name: String, className: String, kerasMajor: Int) throws(KedgeError) -> String? {
        guard let module = entry["module"]?.string else {
            // Keras 3's `.h5` (legacy serialisation) drops `module`. A Keras 3 layer's config always has `trainable`,
            // an op's never; and a merge layer takes one list of tensors (`"args": [[a, b]]`) where the op takes
            // separate arguments (`"args": [a, 3.0]`). Either sign makes a layer-named entry an op node. (Keras
            // itself cannot load such a file back; Kedge runs it as the model computed when it was saved.)
            guard kerasMajor >= 3, layerNamed.contains(className) else { return nil }
            var isOp = entry["config"]?["trainable"] == nil
            for n in entry["inbound_nodes"]?.array ?? [] {
                if let args = n["args"]?.array, args.count >= 2 { isOp = true }
            }
            return isOp ? try checked("keras.src.ops.numpy", name: name, className: className) : nil
        }
        guard isOpModule(module) else { return nil }
        return try checked(module, name: name, className: className)
    }

    private static func checked(_ module: String, name: String, className: String) throws(KedgeError) -> String {
        guard supported.contains(className) else {
            throw KedgeError(
                .unsupportedLayer,
                "op node '\(name)' (\(module).\(className)) is not supported; Kedge runs these Keras 3 op nodes: \(supported.joined(separator: ", "))"
            )
        }
        return module
    }
}
