// Keras preprocessing layers that are part of a model's forward pass (keras/src/layers/preprocessing).

let preprocessingBuilders: [LayerBuilder] = [
    LayerBuilder(["Rescaling"], make: { s throws(KedgeError) in try Rescaling(s) }),
    LayerBuilder(
        ["Normalization"],
        // Adapted layers store mean/variance/count as weights; layers given mean and variance in the config have none.
        weights: { c throws(KedgeError) in c.has("mean") ? [] : ["mean", "variance", "count"] },
        make: { s throws(KedgeError) in try Normalization(s) }),
]

/// A config value that is a number or a (nested) list of numbers, flattened.
func numbers(_ j: JSON?, key: String, layer: Layer) throws(KedgeError) -> [Float] {
    var out: [Float] = []
    func walk(_ v: JSON) -> Bool {
        if let d = v.double { out.append(Float(d)); return true }
        if let a = v.array { for e in a { if !walk(e) { return false } }; return true }
        return false
    }
    guard let j, walk(j) else { throw layer.configError("'\(key)' must be a number or a list of numbers") }
    return out
}

/// Broadcasts per-axis parameters of `paramShape` (Keras's broadcast shape: 1 on reduced axes) over `shape`
/// and applies `f(x, index into params)` element by element.
func forEachBroadcast(_ shape: [Int], paramShape: [Int], _ body: (Int, Int) -> Void) {
    let rank = shape.count
    var pStrides = [Int](repeating: 0, count: rank)
    var acc = 1
    for d in stride(from: rank - 1, through: 0, by: -1) {
        pStrides[d] = paramShape[d] == 1 ? 0 : acc
        acc *= paramShape[d]
    }
    let n = Tensor.elementCount(shape)
    var idx = [Int](repeating: 0, count: rank)
    var p = 0
    for i in 0..<n {
        body(i, p)
        var d = rank - 1
        while d >= 0 {
            idx[d] += 1
            p += pStrides[d]
            if idx[d] < shape[d] { break }
            p -= pStrides[d] * shape[d]
            idx[d] = 0
            d -= 1
        }
    }
}

/// `x * scale + offset`; scale and offset are scalars or per-channel lists.
final class Rescaling: Layer {
    var scale: [Float] = [1]
    var offset: [Float] = [0]

    init(_ s: LayerSpec) throws(KedgeError) {
        super.init(spec: s)
        let sc = s.config["scale"]
        scale = sc == nil ? [1] : try numbers(sc, key: "scale", layer: self)
        let of = s.config["offset"]
        offset = of == nil ? [0] : try numbers(of, key: "offset", layer: self)
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        var y = inputs[0]
        let c = y.shape.last ?? 1
        for p in [scale, offset] where p.count != 1 && p.count != c {
            throw shapeError("scale/offset has \(p.count) values for \(c) channels")
        }
        let sc = scale, of = offset
        y.data.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count {
                let ch = i % c
                b[i] = b[i] * sc[sc.count == 1 ? 0 : ch] + of[of.count == 1 ? 0 : ch]
            }
        }
        return [y]
    }
}

/// `(x - mean) / max(sqrt(variance), 1e-7)` (or its inverse), with mean and variance kept on `axis`.
final class Normalization: Layer {
    let axes: [Int]
    let invert: Bool
    var mean: [Float]
    var variance: [Float]
    var divisor: [Float] = []

    init(_ s: LayerSpec) throws(KedgeError) {
        var ax: [Int] = []
        if let a = s.config["axis"] {
            if let i = a.int { ax = [i] } else if let l = a.array { for e in l { if let i = e.int { ax.append(i) } } }
        } else if !s.config.json.keys.contains("axis") {
            ax = [-1]
        }
        axes = ax
        invert = try s.config.bool("invert", default: false)
        if s.config.has("mean") {
            mean = []
            variance = []
        } else {
            mean = try s.weight("mean").data
            variance = try s.weight("variance").data
        }
        super.init(spec: s)
        if s.config.has("mean") {
            mean = try numbers(s.config["mean"], key: "mean", layer: self)
            variance = try numbers(s.config["variance"], key: "variance", layer: self)
        }
        guard mean.count == variance.count else { throw configError("mean and variance differ in size") }
        divisor = variance.map { max($0.squareRoot(), 1e-7) }
    }

    func paramShape(_ shape: [Int]) throws(KedgeError) -> [Int] {
        let rank = shape.count
        var keep = [Bool](repeating: false, count: rank)
        for a in axes {
            let d = a < 0 ? a + rank : a
            guard d >= 0 && d < rank else { throw shapeError("axis \(a) is out of range for rank \(rank)") }
            keep[d] = true
        }
        var ps = [Int](repeating: 1, count: rank)
        var n = 1
        for d in 0..<rank where keep[d] { ps[d] = shape[d]; n *= shape[d] }
        if mean.count == 1 { return [Int](repeating: 1, count: rank) }
        guard n == mean.count else {
            throw shapeError("mean has \(mean.count) values, the input's kept axes have \(n)")
        }
        return ps
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        // Validate mean/variance against the kept axes now when they are statically known.
        var known = inputShapes[0]
        if known.first == -1 { known[0] = 1 }
        if !known.contains(where: { $0 < 0 }) { _ = try paramShape(known) }
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        var y = inputs[0]
        let ps = try paramShape(y.shape)
        let m = mean, dv = divisor, inv = invert
        y.data.withUnsafeMutableBufferPointer { b in
            forEachBroadcast(y.shape, paramShape: ps) { i, p in
                b[i] = inv ? m[p] + b[i] * dv[p] : (b[i] - m[p]) / dv[p]
            }
        }
        return [y]
    }
}
