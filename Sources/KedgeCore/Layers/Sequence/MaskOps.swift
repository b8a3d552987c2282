// Keras 3 op nodes that carry masks through a saved Functional graph. Keras 3.15 records the mask it computes
// symbolically (Embedding's `not_equal(x, 0)`, Masking's `any(not_equal(x, v), axis=-1)`, Concatenate's
// `concatenate([expand_dims(m), ones_like(x)])`, ...) as op nodes (module `keras.src.ops.*`) and passes the
// result to the next layer as `mask=`. Booleans are 0/1 floats here.

let maskOpBuilders: [LayerBuilder] = [
    LayerBuilder(
        ["NotEqual", "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalOr"],
        make: { s throws(KedgeError) in try BinaryMaskOp(s) }),
    LayerBuilder(
        ["Any", "All", "LogicalNot", "ExpandDims", "Squeeze", "ZerosLike", "OnesLike", "ConvertToTensor", "Cast"],
        make: { s throws(KedgeError) in try UnaryMaskOp(s) }),
]

/// Numpy broadcasting of two shapes (nil if they do not broadcast).
func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let x = i < n - a.count ? 1 : a[i - (n - a.count)]
        let y = i < n - b.count ? 1 : b[i - (n - b.count)]
        if x == y || y == 1 { out[i] = x } else if x == 1 { out[i] = y } else if x < 0 || y < 0 { out[i] = -1 } else { return nil }
    }
    return out
}

/// `op(a, b)` with broadcasting.
func broadcastBinary(_ a: Tensor, _ b: Tensor, _ shape: [Int], _ op: (Float, Float) -> Float) -> Tensor {
    let n = shape.count
    func strides(_ s: [Int]) -> [Int] {
        var st = [Int](repeating: 0, count: n)
        var acc = 1
        for i in stride(from: s.count - 1, through: 0, by: -1) {
            let axis = i + n - s.count
            st[axis] = s[i] == 1 ? 0 : acc
            acc *= s[i]
        }
        return st
    }
    let sa = strides(a.shape)
    let sb = strides(b.shape)
    let total = Tensor.elementCount(shape)
    var out = [Float](repeating: 0, count: total)
    var idx = [Int](repeating: 0, count: n)
    for o in 0..<total {
        var ia = 0
        var ib = 0
        for d in 0..<n {
            ia += idx[d] * sa[d]
            ib += idx[d] * sb[d]
        }
        out[o] = op(a.data[ia], b.data[ib])
        var d = n - 1
        while d >= 0 {
            idx[d] += 1
            if idx[d] < shape[d] { break }
            idx[d] = 0
            d -= 1
        }
    }
    return Tensor(shape: shape, data: out)
}

final class BinaryMaskOp: Layer {
    /// The constant operand and its position (0 or 1) when the op takes one tensor.
    var constant: (position: Int, value: Float)? = nil

    init(_ s: LayerSpec) throws(KedgeError) { super.init(spec: s) }

    override var handlesMasks: Bool { true }

    private func readConstant(_ arguments: CallArguments, tensors: Int) throws(KedgeError) {
        constant = nil
        guard tensors == 1 else { return }
        guard let args = arguments.options[CallKeywords.positionalKey]?.array else {
            throw shapeError("takes two operands; the call has one tensor and no constant")
        }
        for (i, a) in args.enumerated() {
            if let d = a.double { constant = (i, Float(d)); return }
            if let b = a.bool { constant = (i, b ? 1 : 0); return }
        }
        throw shapeError("takes two operands; the call has one tensor and no numeric constant")
    }

    private func shapes(_ inputShapes: [[Int]], _ arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try rejectKeywordTensors(arguments)
        guard inputShapes.count == 1 || inputShapes.count == 2 else { throw arityError(inputShapes.count, expected: 2) }
        try readConstant(arguments, tensors: inputShapes.count)
        if inputShapes.count == 1 { return inputShapes }
        guard let s = broadcastShapes(inputShapes[0], inputShapes[1]) else {
            throw shapeError(
                "operands \(describeShape(inputShapes[0])) and \(describeShape(inputShapes[1])) do not broadcast")
        }
        return [s]
    }

    override func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try shapes(inputShapes, arguments)
    }

    override func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        try shapes(inputShapes, arguments)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        try shapes(inputShapes, .plain)
    }

    private func apply(_ a: Float, _ b: Float) -> Float {
        let r: Bool
        switch className {
        case "NotEqual": r = a != b
        case "Equal": r = a == b
        case "Greater": r = a > b
        case "GreaterEqual": r = a >= b
        case "Less": r = a < b
        case "LessEqual": r = a <= b
        case "LogicalAnd": r = a != 0 && b != 0
        default: r = a != 0 || b != 0
        }
        return r ? 1 : 0
    }

    override func call(_ inputs: [Tensor], masks: [Tensor?], arguments: CallArguments) throws(KedgeError) -> (
        outputs: [Tensor], masks: [Tensor?]
    ) {
        if inputs.count == 1 {
            try readConstant(arguments, tensors: 1)
            guard let (pos, v) = constant else { throw shapeError("has no constant operand") }
            var y = inputs[0]
            for i in 0..<y.count { y.data[i] = pos == 0 ? apply(v, y.data[i]) : apply(y.data[i], v) }
            return ([y], [nil])
        }
        guard let shape = broadcastShapes(inputs[0].shape, inputs[1].shape) else {
            throw shapeError("operands \(describeShape(inputs[0].shape)) and \(describeShape(inputs[1].shape)) do not broadcast")
        }
        return ([broadcastBinary(inputs[0], inputs[1], shape) { apply($0, $1) }], [nil])
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        try call(inputs, masks: [nil], arguments: .plain).outputs
    }
}

final class UnaryMaskOp: Layer {
    let axes: [Int]?
    let keepDims: Bool
    let castToBool: Bool
    let castToInt: Bool

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        if let a = c["axis"] {
            if let i = a.int { axes = [i] } else { axes = try c.shape("axis") }
        } else {
            axes = nil
        }
        keepDims = try c.bool("keepdims", default: false)
        let dtype = c["dtype"]?.string ?? ""
        castToBool = s.className == "Cast" && dtype == "bool"
        castToInt = s.className == "Cast" && (dtype.utf8HasPrefix("int") || dtype.utf8HasPrefix("uint"))
        super.init(spec: s)
        if ["ExpandDims"].contains(s.className) && axes == nil { throw configError("needs an axis") }
    }

    private func normalized(_ rank: Int) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        return axes.map { $0 < 0 ? $0 + rank : $0 }
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        switch className {
        case "Any", "All":
            let ax = normalized(s.count)
            var out: [Int] = []
            for (i, d) in s.enumerated() {
                if ax.contains(i) { if keepDims { out.append(1) } } else { out.append(d) }
            }
            return [out]
        case "ExpandDims":
            var out = s
            let a = axes![0] < 0 ? axes![0] + s.count + 1 : axes![0]
            guard a >= 0 && a <= s.count else { throw configError("axis \(axes![0]) is out of range for rank \(s.count)") }
            out.insert(1, at: a)
            return [out]
        case "Squeeze":
            let ax = axes.map { $0.map { $0 < 0 ? $0 + s.count : $0 } }
            var out: [Int] = []
            for (i, d) in s.enumerated() {
                let drop = ax.map { $0.contains(i) } ?? (d == 1)
                if !drop { out.append(d) }
            }
            return [out]
        default:
            return [s]
        }
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        var x = inputs[0]
        let outShape = try outputShapes([x.shape])[0]
        switch className {
        case "Any", "All":
            let ax = normalized(x.rank)
            let any = className == "Any"
            // Reduce by walking every element and its reduced output index.
            var out = [Float](repeating: any ? 0 : 1, count: Tensor.elementCount(outShape))
            var keptStrides = [Int](repeating: 0, count: x.rank)
            var acc = 1
            for d in stride(from: x.rank - 1, through: 0, by: -1) where !ax.contains(d) {
                keptStrides[d] = acc
                acc *= x.shape[d]
            }
            var idx = [Int](repeating: 0, count: x.rank)
            for i in 0..<x.count {
                var o = 0
                for d in 0..<x.rank { o += idx[d] * keptStrides[d] }
                let b = x.data[i] != 0
                if any && b { out[o] = 1 }
                if !any && !b { out[o] = 0 }
                var d = x.rank - 1
                while d >= 0 {
                    idx[d] += 1
                    if idx[d] < x.shape[d] { break }
                    idx[d] = 0
                    d -= 1
                }
            }
            return [Tensor(shape: outShape, data: out)]
        case "LogicalNot":
            for i in 0..<x.count { x.data[i] = x.data[i] == 0 ? 1 : 0 }
            return [x]
        case "ZerosLike":
            return [Tensor(shape: x.shape)]
        case "OnesLike":
            return [Tensor(shape: x.shape, repeating: 1)]
        case "Cast":
            if castToBool { for i in 0..<x.count { x.data[i] = x.data[i] != 0 ? 1 : 0 } }
            if castToInt { for i in 0..<x.count { x.data[i] = Float(Int(x.data[i])) } }
            return [x]
        default:  // ExpandDims, Squeeze, ConvertToTensor
            return [x.reshaped(outShape)]
        }
    }
}
