// Keras's merging layers (keras/src/layers/merging): elementwise merges with broadcasting, Concatenate, Dot.

let mergingBuilders: [LayerBuilder] = [
    LayerBuilder(["Add"], make: { s throws(KedgeError) in ElementwiseMerge(s, .add) }),
    LayerBuilder(["Subtract"], make: { s throws(KedgeError) in ElementwiseMerge(s, .subtract) }),
    LayerBuilder(["Multiply"], make: { s throws(KedgeError) in ElementwiseMerge(s, .multiply) }),
    LayerBuilder(["Average"], make: { s throws(KedgeError) in ElementwiseMerge(s, .add, average: true) }),
    LayerBuilder(["Maximum"], make: { s throws(KedgeError) in ElementwiseMerge(s, .maximum) }),
    LayerBuilder(["Minimum"], make: { s throws(KedgeError) in ElementwiseMerge(s, .minimum) }),
    LayerBuilder(["Concatenate"], make: { s throws(KedgeError) in try Concatenate(s) }),
    LayerBuilder(["Dot"], make: { s throws(KedgeError) in try Dot(s) }),
]

/// An axis list as Keras writes it, e.g. `[1, -1]` (describeShape would print -1 as None).
func describeAxes(_ axes: [Int]) -> String {
    var s = "["
    for (i, a) in axes.enumerated() { s += (i > 0 ? ", " : "") + String(a) }
    return s + "]"
}

/// Binary elementwise kernels with numpy broadcasting, shared by the merge layers and PReLU.
enum BroadcastBinary {
    enum Op {
        case add, subtract, multiply, maximum, minimum
        /// `a < 0 ? b * a : a` with `b` the slope (PReLU: relu(x) - alpha * relu(-x) is exactly this).
        case prelu
    }

    /// Numpy broadcasting of two shapes of equal rank; -1 (unknown) stays unknown unless the other side
    /// fixes it. Nil when two known sizes differ and neither is 1.
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        guard a.count == b.count else { return nil }
        var out = a
        for d in 0..<a.count {
            let i = a[d]
            let j = b[d]
            if i == 1 {
                out[d] = j
            } else if j == 1 {
                out[d] = i
            } else if i < 0 || j < 0 {
                out[d] = i < 0 ? j : i
                if i < 0 && j < 0 { out[d] = -1 }
            } else if i != j {
                return nil
            }
        }
        return out
    }

    /// `a op b`, both of the same rank, broadcast as numpy does. Shapes must be compatible.
    static func combine(_ a: Tensor, _ b: Tensor, _ op: Op) -> Tensor {
        switch op {
        case .add: return combine(a, b, AddOp.self)
        case .subtract: return combine(a, b, SubtractOp.self)
        case .multiply: return combine(a, b, MultiplyOp.self)
        case .maximum: return combine(a, b, MaximumOp.self)
        case .minimum: return combine(a, b, MinimumOp.self)
        case .prelu: return combine(a, b, PReLUOp.self)
        }
    }

    /// `acc = acc op b` in place; shapes must be equal.
    static func accumulate(_ acc: inout Tensor, _ b: Tensor, _ op: Op) {
        switch op {
        case .add: accumulate(&acc, b, AddOp.self)
        case .subtract: accumulate(&acc, b, SubtractOp.self)
        case .multiply: accumulate(&acc, b, MultiplyOp.self)
        case .maximum: accumulate(&acc, b, MaximumOp.self)
        case .minimum: accumulate(&acc, b, MinimumOp.self)
        case .prelu: accumulate(&acc, b, PReLUOp.self)
        }
    }

    private static func accumulate<O: BroadcastBinaryKernel>(_ acc: inout Tensor, _ b: Tensor, _: O.Type) {
        let n = acc.count
        acc.data.withUnsafeMutableBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                let a = ap.baseAddress!
                let q = bp.baseAddress!
                for i in 0..<n { a[i] = O.apply(a[i], q[i]) }
            }
        }
    }

    private static func combine<O: BroadcastBinaryKernel>(_ a: Tensor, _ b: Tensor, _: O.Type) -> Tensor {
        let rank = a.rank
        var outShape = [Int](repeating: 1, count: rank)
        for d in 0..<rank { outShape[d] = a.shape[d] == 1 ? b.shape[d] : a.shape[d] }
        if a.shape == b.shape {
            let n = a.count
            return Tensor(shape: outShape) { out in
                a.data.withUnsafeBufferPointer { ap in
                    b.data.withUnsafeBufferPointer { bp in
                        let o = out.baseAddress!
                        let x = ap.baseAddress!
                        let y = bp.baseAddress!
                        for i in 0..<n { o[i] = O.apply(x[i], y[i]) }
                    }
                }
            }
        }
        // Collapse the output's axes into runs where each operand either varies or is broadcast throughout,
        // so the innermost loop is as long as possible and has a constant stride (0 or 1) per operand.
        var sizes: [Int] = []
        var aVaries: [Bool] = []
        var bVaries: [Bool] = []
        for d in 0..<rank where outShape[d] != 1 {
            let av = a.shape[d] != 1
            let bv = b.shape[d] != 1
            if let last = sizes.indices.last, aVaries[last] == av, bVaries[last] == bv {
                sizes[last] *= outShape[d]
            } else {
                sizes.append(outShape[d])
                aVaries.append(av)
                bVaries.append(bv)
            }
        }
        let k = sizes.count
        var aStride = [Int](repeating: 0, count: k)
        var bStride = [Int](repeating: 0, count: k)
        var accA = 1
        var accB = 1
        for d in stride(from: k - 1, through: 0, by: -1) {
            if aVaries[d] { aStride[d] = accA; accA *= sizes[d] }
            if bVaries[d] { bStride[d] = accB; accB *= sizes[d] }
        }
        let total = Tensor.elementCount(outShape)
        return Tensor(shape: outShape) { out in
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    let o = out.baseAddress!
                    let x = ap.baseAddress!
                    let y = bp.baseAddress!
                    if k == 0 {
                        if total == 1 { o[0] = O.apply(x[0], y[0]) }
                        return
                    }
                    let run = sizes[k - 1]
                    let ax = aVaries[k - 1]
                    let bx = bVaries[k - 1]
                    var idx = [Int](repeating: 0, count: k)
                    var pa = 0
                    var pb = 0
                    var po = 0
                    while po < total {
                        let xa = x + pa
                        let yb = y + pb
                        let oo = o + po
                        if ax && bx {
                            for i in 0..<run { oo[i] = O.apply(xa[i], yb[i]) }
                        } else if ax {
                            let v = yb[0]
                            for i in 0..<run { oo[i] = O.apply(xa[i], v) }
                        } else if bx {
                            let v = xa[0]
                            for i in 0..<run { oo[i] = O.apply(v, yb[i]) }
                        } else {
                            let v = O.apply(xa[0], yb[0])
                            for i in 0..<run { oo[i] = v }
                        }
                        po += run
                        var d = k - 2
                        while d >= 0 {
                            idx[d] += 1
                            pa += aStride[d]
                            pb += bStride[d]
                            if idx[d] < sizes[d] { break }
                            pa -= aStride[d] * sizes[d]
                            pb -= bStride[d] * sizes[d]
                            idx[d] = 0
                            d -= 1
                        }
                    }
                }
            }
        }
    }
}

protocol BroadcastBinaryKernel { static func apply(_ a: Float, _ b: Float) -> Float }
private enum AddOp: BroadcastBinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
}
private enum SubtractOp: BroadcastBinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
}
private enum MultiplyOp: BroadcastBinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
}
private enum MaximumOp: BroadcastBinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a < b ? b : a }
}
private enum MinimumOp: BroadcastBinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { b < a ? b : a }
}
private enum PReLUOp: BroadcastBinaryKernel {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a < 0 ? b * a : a }
}

/// Add, Subtract, Multiply, Average, Maximum, Minimum. As in Keras (2 and 3): inputs of lower rank get
/// axes of size 1 inserted after the batch axis, then numpy broadcasting applies, pair by pair from the left.
final class ElementwiseMerge: Layer {
    let op: BroadcastBinary.Op
    let average: Bool

    /// Set when this runs a Keras 3 op node (`keras.ops.add(x, 3.0)`, ...): numpy broadcasting of same-rank
    /// operands, and Python numbers among the operands.
    let isOpNode: Bool
    /// The operands in call order, for an op node with constants: nil for the next input tensor, else the constant
    /// (as float32, as Keras converts it). Empty: the inputs alone.
    private var operands: [Float?] = []

    init(_ s: LayerSpec, _ op: BroadcastBinary.Op, average: Bool = false) {
        self.op = op
        self.average = average
        self.isOpNode = s.config.opModule != nil
        super.init(spec: s)
    }

    /// Reads the call's constant operands. A merge layer takes tensors only; an op node may take numbers, and no
    /// other argument: anything else is refused rather than ignored.
    private func readOperands(_ arguments: CallArguments, tensors: Int) throws(KedgeError) -> [Float?] {
        try rejectKeywordTensors(arguments)
        var list: [Float?] = []
        // A merge layer's call options (Keras 2's `training`, ...) change nothing, as before; an op node has none.
        for k in arguments.options.keys where isOpNode || k == CallKeywords.positionalKey {
            guard isOpNode, k == CallKeywords.positionalKey, let args = arguments.options[k]?.array else {
                throw KedgeError(
                    .unsupportedLayer,
                    "layer '\(name)' (\(className)) is called with argument '\(k)', which Kedge does not support for this class")
            }
            var seen = 0
            for a in args {
                if a.isNull {
                    list.append(nil)
                    seen += 1
                } else if let d = a.double {
                    list.append(Float(d))
                } else {
                    throw KedgeError(
                        .unsupportedLayer,
                        "op node '\(name)' (\(className)) has a non-numeric constant operand; Kedge supports numbers only")
                }
            }
            guard seen == tensors else {
                throw KedgeError(.invalidConfig, "op node '\(name)' (\(className)): the call lists \(seen) tensors, the graph gives \(tensors)")
            }
        }
        return list
    }

    /// The operands' shapes: the inputs', with each constant as a shape of 1s of the inputs' rank.
    private func operandShapes(_ inputShapes: [[Int]]) -> [[Int]] {
        guard !operands.isEmpty else { return inputShapes }
        var rank = 0
        for s in inputShapes { rank = max(rank, s.count) }
        var out: [[Int]] = []
        var next = 0
        for o in operands {
            if o == nil {
                out.append(inputShapes[next])
                next += 1
            } else {
                out.append([Int](repeating: 1, count: rank))
            }
        }
        return out
    }

    override func build(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        operands = try readOperands(arguments, tensors: inputShapes.count)
        return try outputShapes(inputShapes)
    }

    override func outputShapes(_ inputShapes: [[Int]], arguments: CallArguments) throws(KedgeError) -> [[Int]] {
        // A later call of a shared op node must pass the same constants: the layer keeps one list.
        guard try readOperands(arguments, tensors: inputShapes.count) == operands else {
            throw KedgeError(.unsupportedLayer, "layer '\(name)' (\(className)) is called again with other constant operands")
        }
        return try outputShapes(inputShapes)
    }

    private func padded(_ shape: [Int], to rank: Int) -> [Int] {
        guard shape.count < rank, !shape.isEmpty else { return shape }
        return [shape[0]] + [Int](repeating: 1, count: rank - shape.count) + shape.dropFirst()
    }

    override func outputShapes(_ tensorShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let inputShapes = operandShapes(tensorShapes)
        if op == .subtract || isOpNode {
            guard inputShapes.count == 2 else { throw arityError(inputShapes.count, expected: 2) }
        } else if inputShapes.isEmpty {
            throw shapeError("expects at least 1 input")
        }
        if isOpNode && inputShapes[0].count != inputShapes[1].count {
            // numpy aligns shapes of different rank from the right, the merge layers after the batch axis.
            throw shapeError(
                "op operands of rank \(inputShapes[0].count) and \(inputShapes[1].count): Kedge broadcasts op operands of equal rank only")
        }
        var rank = 0
        for s in inputShapes { rank = max(rank, s.count) }
        var out = padded(inputShapes[0], to: rank)
        for s in inputShapes.dropFirst() {
            guard let b = BroadcastBinary.broadcastShape(out, padded(s, to: rank)) else {
                var list = ""
                for (i, t) in inputShapes.enumerated() { list += (i > 0 ? ", " : "") + describeShape(t) }
                throw shapeError("inputs have incompatible shapes \(list)")
            }
            out = b
        }
        return [out]
    }

    override func forward(_ tensors: [Tensor]) throws(KedgeError) -> [Tensor] {
        var shapes: [[Int]] = []
        for x in tensors { shapes.append(x.shape) }
        let rank = try outputShapes(shapes)[0].count
        var inputs = tensors
        if !operands.isEmpty {
            inputs = []
            var next = 0
            for o in operands {
                if let c = o {
                    inputs.append(Tensor(shape: [Int](repeating: 1, count: rank), data: [c]))
                } else {
                    inputs.append(tensors[next])
                    next += 1
                }
            }
        }
        var acc = inputs[0].reshaped(padded(inputs[0].shape, to: rank))
        for (i, x) in inputs.enumerated() where i > 0 {
            let b = x.reshaped(padded(x.shape, to: rank))
            // The first pair writes a fresh buffer; later inputs of the same shape accumulate into it in place.
            if i > 1 && b.shape == acc.shape {
                BroadcastBinary.accumulate(&acc, b, op)
            } else {
                acc = BroadcastBinary.combine(acc, b, op)
            }
        }
        if average {
            // Keras divides the sum (not multiplies by 1/n).
            let n = Float(inputs.count)
            let c = acc.count
            acc.data.withUnsafeMutableBufferPointer { p in
                let q = p.baseAddress!
                for i in 0..<c { q[i] = q[i] / n }
            }
        }
        return [acc]
    }
}

/// Joins inputs along `axis` (any axis, negative counts from the end); the other axes must agree.
final class Concatenate: Layer {
    let axis: Int

    init(_ s: LayerSpec) throws(KedgeError) {
        // keras.ops.concatenate's axis defaults to 0, the Concatenate layer's to -1.
        axis = try s.config.int("axis", default: s.config.opModule != nil ? 0 : -1)
        super.init(spec: s)
    }

    private func resolvedAxis(_ rank: Int) throws(KedgeError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else { throw shapeError("axis \(axis) is out of range for inputs of rank \(rank)") }
        return a
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard !inputShapes.isEmpty else { throw shapeError("expects at least 1 input") }
        let rank = inputShapes[0].count
        let ax = try resolvedAxis(rank)
        var out = inputShapes[0]
        for s in inputShapes.dropFirst() {
            var ok = s.count == rank
            if ok {
                for d in 0..<rank where d != ax {
                    if out[d] >= 0 && s[d] >= 0 && out[d] != s[d] { ok = false }
                    if out[d] < 0 { out[d] = s[d] }
                }
            }
            if !ok {
                var list = ""
                for (i, t) in inputShapes.enumerated() { list += (i > 0 ? ", " : "") + describeShape(t) }
                throw shapeError("inputs must match except on the concatenation axis \(axis); got \(list)")
            }
            out[ax] = out[ax] < 0 || s[ax] < 0 ? -1 : out[ax] + s[ax]
        }
        return [out]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        var shapes: [[Int]] = []
        for x in inputs { shapes.append(x.shape) }
        let outShape = try outputShapes(shapes)[0]
        if inputs.count == 1 { return inputs }
        let ax = try resolvedAxis(outShape.count)
        var outer = 1
        for d in 0..<ax { outer *= outShape[d] }
        var inner = 1
        for d in (ax + 1)..<outShape.count { inner *= outShape[d] }
        let rowOut = outShape[ax] * inner
        var blocks: [Int] = []
        for x in inputs { blocks.append(x.shape[ax] * inner) }
        return [
            Tensor(shape: outShape) { out in
                let o = out.baseAddress!
                var col = 0
                for (k, x) in inputs.enumerated() {
                    let bl = blocks[k]
                    x.data.withUnsafeBufferPointer { xp in
                        guard bl > 0 else { return }
                        let src = xp.baseAddress!
                        for r in 0..<outer {
                            (o + r * rowOut + col).initialize(from: src + r * bl, count: bl)
                        }
                    }
                    col += bl
                }
            }
        ]
    }
}

/// Keras's `batch_dot` of two inputs over `axes` (one per input, never the batch axis), optionally after
/// L2-normalizing each input along its axis (cosine similarity). Output: x's axes without the contracted one,
/// then y's without batch and contracted axis; a rank-1 result becomes (batch, 1).
final class Dot: Layer {
    let axes: [Int]
    let normalize: Bool
    let kerasMajor: Int

    init(_ s: LayerSpec) throws(KedgeError) {
        guard let a = s.config["axes"] else { throw s.config.error("axes", "is missing") }
        if let i = a.int {
            axes = [i, i]
        } else {
            axes = try s.config.ints("axes", count: 2)
        }
        normalize = try s.config.bool("normalize", default: false)
        kerasMajor = s.kerasMajor
        super.init(spec: s)
    }

    private func resolved(_ r1: Int, _ r2: Int) throws(KedgeError) -> (Int, Int) {
        let a0 = axes[0] < 0 ? axes[0] + r1 : axes[0]
        let a1 = axes[1] < 0 ? axes[1] + r2 : axes[1]
        guard a0 > 0 && a0 < r1 && a1 > 0 && a1 < r2 else {
            throw shapeError(
                "axes \(describeAxes(axes)) must name a non-batch axis of each input (ranks \(r1) and \(r2))")
        }
        return (a0, a1)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 2 else { throw arityError(inputShapes.count, expected: 2) }
        let s1 = inputShapes[0]
        let s2 = inputShapes[1]
        guard s1.count >= 2 && s2.count >= 2 else {
            throw shapeError(
                "inputs must have rank >= 2, got \(describeShape(s1)) and \(describeShape(s2))")
        }
        let (a0, a1) = try resolved(s1.count, s2.count)
        if s1[a0] >= 0 && s2[a1] >= 0 && s1[a0] != s2[a1] {
            throw shapeError(
                "axis \(a0) of \(describeShape(s1)) and axis \(a1) of \(describeShape(s2)) differ in size")
        }
        if s1[0] >= 0 && s2[0] >= 0 && s1[0] != s2[0] {
            throw shapeError("inputs have different batch sizes: \(describeShape(s1)) and \(describeShape(s2))")
        }
        var out: [Int] = []
        for d in 0..<s1.count where d != a0 { out.append(s1[d]) }
        for d in 1..<s2.count where d != a1 { out.append(s2[d]) }
        if out.count == 1 { out.append(1) }
        return [out]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let outShape = try outputShapes([inputs[0].shape, inputs[1].shape])[0]
        var x = inputs[0]
        var y = inputs[1]
        let (a0, a1) = try resolved(x.rank, y.rank)
        if normalize {
            l2Normalize(&x, axis: a0)
            l2Normalize(&y, axis: a1)
        }
        // x -> (batch, m, k) with the contracted axis last; y -> (batch, k, n) with it second.
        if a0 != x.rank - 1 {
            var perm: [Int] = []
            for d in 0..<x.rank where d != a0 { perm.append(d) }
            x = transpose(x, axes: perm + [a0])
        }
        if a1 != 1 {
            var perm = [0, a1]
            for d in 1..<y.rank where d != a1 { perm.append(d) }
            y = transpose(y, axes: perm)
        }
        let batch = x.shape[0]
        let k = inputs[0].shape[a0]
        let m = batch * k == 0 ? 0 : x.count / (batch * k)
        let n = batch * k == 0 ? 0 : y.count / (batch * k)
        return [
            Tensor(shape: outShape) { out in
                let o = out.baseAddress!
                for i in 0..<out.count { o[i] = 0 }
                x.data.withUnsafeBufferPointer { xp in
                    y.data.withUnsafeBufferPointer { yp in
                        for b in 0..<batch {
                            let xb = xp.baseAddress! + b * m * k
                            let yb = yp.baseAddress! + b * k * n
                            let ob = o + b * m * n
                            for i in 0..<m {
                                let row = ob + i * n
                                for kk in 0..<k {
                                    let v = xb[i * k + kk]
                                    let yr = yb + kk * n
                                    for j in 0..<n { row[j] += v * yr[j] }
                                }
                            }
                        }
                    }
                }
            }
        ]
    }

    /// `x * rsqrt(sum(x^2))` along `axis`. Keras 3 caps the inverse norm at 1/1e-7 (ops.normalize);
    /// Keras 2 uses tf.linalg.l2_normalize, which floors the squared sum at 1e-12.
    private func l2Normalize(_ t: inout Tensor, axis: Int) {
        let n = t.shape[axis]
        var inner = 1
        for d in (axis + 1)..<t.rank { inner *= t.shape[d] }
        let outer = n * inner == 0 ? 0 : t.count / (n * inner)
        let keras3 = kerasMajor >= 3
        t.data.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = p + o * n * inner + i
                    var ss: Float = 0
                    for j in 0..<n { let v = base[j * inner]; ss += v * v }
                    let inv: Float = keras3 ? min(1 / ss.squareRoot(), 1e7) : 1 / max(ss, 1e-12).squareRoot()
                    for j in 0..<n { base[j * inner] *= inv }
                }
            }
        }
    }
}
