/// Keras activation functions. Pointwise ones can be fused into a kernel's epilogue (`applyPointwise` on
/// a contiguous block); softmax and log_softmax need the tensor's shape and run on their own.
public enum Activation: Equatable {
    case linear
    /// Keras's general relu: `threshold`, `negativeSlope` below it, capped at `maxValue` (nil: no cap).
    case relu(negativeSlope: Float, maxValue: Float?, threshold: Float)
    case elu(alpha: Float)
    case selu
    case softplus
    case softsign
    case tanh
    case sigmoid
    /// Keras 1/2: clip(0.2x + 0.5, 0, 1). Keras 3: relu6(x + 3) / 6.
    case hardSigmoid(keras3: Bool)
    case hardSwish
    case swish
    case gelu(approximate: Bool)
    case mish
    case exponential
    case softmax(axis: Int)
    case logSoftmax(axis: Int)
    // Keras 3 additions (keras/src/activations), with their default parameters when named by a string.
    case celu(alpha: Float)
    case squareplus(b: Float)
    case softShrink(threshold: Float)
    case hardShrink(threshold: Float)
    case sparsePlus
    case sparseSigmoid
    case tanhShrink
    case hardTanh
    case logSigmoid

    public static let plainReLU = Activation.relu(negativeSlope: 0, maxValue: nil, threshold: 0)

    /// Parses a Keras activation as it appears in a layer config: a name, or a serialized dict
    /// (`{"class_name": "function", "config": "relu"}` or `{"module": "keras.activations", "config": "relu"}`).
    public static func parse(_ json: JSON?, kerasMajor: Int, layer: String) throws(KedgeError) -> Activation {
        guard let json, !json.isNull else { return .linear }
        var name: String
        if let s = json.string {
            name = s
        } else if let s = json["config"]?.string {
            name = s
        } else if let s = json["config"]?["name"]?.string {
            name = s
        } else if let s = json["class_name"]?.string {
            name = s
        } else {
            throw KedgeError(.invalidConfig, "layer '\(layer)': activation is neither a name nor a serialized activation")
        }
        if name.utf8HasPrefix("keras.activations.") { name = name.utf8Dropping(18) }
        if let a = named(name, kerasMajor: kerasMajor) { return a }
        throw KedgeError(
            .unsupportedLayer,
            "layer '\(layer)': activation '\(name)' is not supported; supported: \(supportedNames.joined(separator: ", "))")
    }

    /// Every activation Keras names by a string, with the parameters Keras gives it then. One table for lookup
    /// and for the list in error messages and docs/LAYERS.md (a table is also ~3 KB smaller in kedge.wasm than a
    /// String `switch`, which compiles to one comparison call per case).
    static let byName: [(name: String, activation: Activation)] = [
        ("linear", .linear), ("relu", plainReLU), ("relu6", .relu(negativeSlope: 0, maxValue: 6, threshold: 0)),
        ("leaky_relu", .relu(negativeSlope: 0.2, maxValue: nil, threshold: 0)), ("elu", .elu(alpha: 1)),
        ("selu", .selu), ("softplus", .softplus), ("softsign", .softsign), ("tanh", .tanh), ("sigmoid", .sigmoid),
        ("hard_sigmoid", .hardSigmoid(keras3: true)), ("hard_silu", .hardSwish), ("hard_swish", .hardSwish),
        ("swish", .swish), ("silu", .swish), ("gelu", .gelu(approximate: false)), ("mish", .mish),
        ("exponential", .exponential), ("softmax", .softmax(axis: -1)), ("log_softmax", .logSoftmax(axis: -1)),
        ("celu", .celu(alpha: 1)), ("squareplus", .squareplus(b: 4)), ("soft_shrink", .softShrink(threshold: 0.5)),
        ("hard_shrink", .hardShrink(threshold: 0.5)), ("sparse_plus", .sparsePlus), ("sparse_sigmoid", .sparseSigmoid),
        ("tanh_shrink", .tanhShrink), ("hard_tanh", .hardTanh), ("log_sigmoid", .logSigmoid),
    ]

    public static var supportedNames: [String] { byName.map { $0.name } }

    public static func named(_ name: String, kerasMajor: Int) -> Activation? {
        if name == "None" { return .linear }
        guard let a = byName.first(where: { $0.name == name })?.activation else { return nil }
        // Keras 1/2 and Keras 3 define hard_sigmoid differently.
        if case .hardSigmoid = a { return .hardSigmoid(keras3: kerasMajor >= 3) }
        return a
    }

    public var isLinear: Bool { self == .linear }

    public var isPointwise: Bool {
        switch self {
        case .softmax, .logSoftmax: return false
        default: return true
        }
    }

    /// Applies a pointwise activation in place to `count` contiguous floats.
    @inline(__always)
    @_optimize(speed)
    public func applyPointwise(_ p: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .linear, .softmax, .logSoftmax:
            return
        case .relu(let slope, let maxValue, let threshold):
            if slope == 0 && threshold == 0 {
                if let m = maxValue {
                    for i in 0..<count { p[i] = min(max(p[i], 0), m) }
                } else {
                    for i in 0..<count { p[i] = max(p[i], 0) }
                }
            } else {
                // Exactly keras.activations.relu (Keras 2 and 3 agree): gate at the threshold, clip to
                // [0, max_value], then subtract slope * relu(threshold - x).
                for i in 0..<count {
                    let x = p[i]
                    var y: Float = threshold != 0 ? (x > threshold ? x : 0) : max(x, 0)
                    if let m = maxValue { y = min(max(y, 0), m) }
                    if slope != 0 { y -= slope * max(threshold - x, 0) }
                    p[i] = y
                }
            }
        case .elu(let alpha):
            for i in 0..<count { let x = p[i]; p[i] = x > 0 ? x : alpha * expm1f(x) }
        case .selu:
            let alpha: Float = 1.6732632423543772848170429916717
            let scale: Float = 1.0507009873554804934193349852946
            for i in 0..<count { let x = p[i]; p[i] = x > 0 ? scale * x : scale * alpha * expm1f(x) }
        case .softplus:
            for i in 0..<count { p[i] = Activation.softplus(p[i]) }
        case .softsign:
            for i in 0..<count { let x = p[i]; p[i] = x / (1 + abs(x)) }
        case .tanh:
            for i in 0..<count { p[i] = tanhf(p[i]) }
        case .sigmoid:
            for i in 0..<count { p[i] = Activation.sigmoid(p[i]) }
        case .hardSigmoid(let keras3):
            if keras3 {
                for i in 0..<count { p[i] = min(max(p[i] + 3, 0), 6) / 6 }
            } else {
                for i in 0..<count { p[i] = min(max(0.2 * p[i] + 0.5, 0), 1) }
            }
        case .hardSwish:
            for i in 0..<count { let x = p[i]; p[i] = x * (min(max(x + 3, 0), 6) / 6) }
        case .swish:
            for i in 0..<count { let x = p[i]; p[i] = x * Activation.sigmoid(x) }
        case .gelu(let approximate):
            if approximate {
                let c: Float = 0.7978845608028654  // sqrt(2/pi)
                for i in 0..<count { let x = p[i]; p[i] = 0.5 * x * (1 + tanhf(c * (x + 0.044715 * x * x * x))) }
            } else {
                let r: Float = 0.7071067811865476  // 1/sqrt(2)
                for i in 0..<count { let x = p[i]; p[i] = 0.5 * x * (1 + erff(x * r)) }
            }
        case .mish:
            for i in 0..<count { let x = p[i]; p[i] = x * tanhf(Activation.softplus(x)) }
        case .exponential:
            for i in 0..<count { p[i] = expf(p[i]) }
        case .celu(let alpha):
            for i in 0..<count { let x = p[i]; p[i] = max(x, 0) + alpha * expm1f(min(x, 0) / alpha) }
        case .squareplus(let b):
            for i in 0..<count { let x = p[i]; p[i] = (x + (x * x + b).squareRoot()) / 2 }
        case .softShrink(let t):
            for i in 0..<count { let x = p[i]; p[i] = x > t ? x - t : (x < -t ? x + t : 0) }
        case .hardShrink(let t):
            for i in 0..<count { let x = p[i]; p[i] = abs(x) > t ? x : 0 }
        case .sparsePlus:
            for i in 0..<count { let x = p[i]; p[i] = x <= -1 ? 0 : (x < 1 ? 0.25 * (x + 1) * (x + 1) : x) }
        case .sparseSigmoid:
            for i in 0..<count { let x = p[i]; p[i] = x <= -1 ? 0 : (x >= 1 ? 1 : 0.5 * (x + 1)) }
        case .tanhShrink:
            for i in 0..<count { let x = p[i]; p[i] = x - tanhf(x) }
        case .hardTanh:
            for i in 0..<count { p[i] = min(max(p[i], -1), 1) }
        case .logSigmoid:
            for i in 0..<count { p[i] = -Activation.softplus(-p[i]) }
        }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    @inline(__always) static func softplus(_ x: Float) -> Float {
        // log(1 + e^x) without overflow for large x.
        x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x))
    }

    /// Applies this activation to a whole tensor (softmax and log_softmax over their axis).
    public func apply(_ t: inout Tensor) {
        switch self {
        case .linear:
            return
        case .softmax(let axis), .logSoftmax(let axis):
            let log: Bool
            if case .logSoftmax = self { log = true } else { log = false }
            Activation.softmax(&t, axis: axis, log: log)
        default:
            let n = t.count
            t.data.withUnsafeMutableBufferPointer { applyPointwise($0.baseAddress!, count: n) }
        }
    }

    /// Numerically stable (log-)softmax along `axis` (negative counts from the end).
    static func softmax(_ t: inout Tensor, axis: Int, log: Bool) {
        let rank = t.shape.count
        let ax = axis < 0 ? axis + rank : axis
        guard ax >= 0 && ax < rank else { return }
        let n = t.shape[ax]
        var inner = 1
        for d in (ax + 1)..<rank { inner *= t.shape[d] }
        let outer = t.count / max(n * inner, 1)
        t.data.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = p + o * n * inner + i
                    var m = -Float.infinity
                    for k in 0..<n { m = max(m, base[k * inner]) }
                    var s: Float = 0
                    for k in 0..<n { let e = expf(base[k * inner] - m); s += e; if !log { base[k * inner] = e } }
                    if log {
                        let ls = logf(s)
                        for k in 0..<n { base[k * inner] = base[k * inner] - m - ls }
                    } else {
                        let r = 1 / s
                        for k in 0..<n { base[k * inner] *= r }
                    }
                }
            }
        }
    }
}
