// Keras's normalization layers (keras/src/layers/normalization). The preprocessing layer `Normalization`
// lives in Preprocessing.swift. Every formula here is computed in Float32 in the order Keras's TensorFlow
// backend uses: `inv = rsqrt(var + eps) * gamma`, `y = x * inv + (beta - mean * inv)`.

let normalizationBuilders: [LayerBuilder] = [
    LayerBuilder(["BatchNormalization"], weights: BatchNormalization.weightNames) { s throws(KedgeError) in
        try BatchNormalization(s)
    },
    LayerBuilder(
        ["LayerNormalization"],
        weights: { c throws(KedgeError) in
            let rms = try c.bool("rms_scaling", default: false)
            var names: [String] = []
            if try c.bool("scale", default: true) || rms { names.append("gamma") }
            if try c.bool("center", default: true) && !rms { names.append("beta") }
            return names
        }
    ) { s throws(KedgeError) in try LayerNormalization(s) },
    LayerBuilder(
        ["GroupNormalization"],
        weights: { c throws(KedgeError) in
            var names: [String] = []
            if try c.bool("scale", default: true) { names.append("gamma") }
            if try c.bool("center", default: true) { names.append("beta") }
            return names
        }
    ) { s throws(KedgeError) in try GroupNormalization(s) },
    LayerBuilder(["RMSNormalization"], weights: { _ throws(KedgeError) in ["scale"] }) { s throws(KedgeError) in
        try RMSNormalization(s)
    },
    LayerBuilder(["UnitNormalization"]) { s throws(KedgeError) in try UnitNormalization(s) },
]

/// Helpers shared by the normalization layers.
private enum NormalizationMath {
    /// An `axis` config value: one int or a list of ints.
    static func axisList(_ c: LayerConfig, default d: [Int]) throws(KedgeError) -> [Int] {
        guard let v = c["axis"] else { return d }
        if let i = v.int { return [i] }
        guard v.array != nil else { throw c.error("axis", "must be an integer or a list of integers") }
        let l = try c.shape("axis")
        guard !l.isEmpty else { throw c.error("axis", "must not be empty") }
        return l
    }

    /// Axes resolved against a rank: non-negative, sorted, checked for range and repeats.
    static func resolveAxes(_ axes: [Int], rank: Int, layer: Layer) throws(KedgeError) -> [Int] {
        var out: [Int] = []
        for a in axes {
            let d = a < 0 ? a + rank : a
            guard d >= 0 && d < rank else {
                throw layer.shapeError("axis \(a) is out of range for an input of rank \(rank)")
            }
            guard !out.contains(d) else { throw layer.configError("axis \(describeAxes(axes)) repeats an axis") }
            out.append(d)
        }
        return out.sorted()
    }

    /// Number of elements over `axes` of `shape`, or -1 if one of them is unknown.
    static func sizeOver(_ axes: [Int], of shape: [Int]) -> Int {
        var n = 1
        for d in axes {
            if shape[d] < 0 { return -1 }
            n *= shape[d]
        }
        return n
    }

    @inline(__always) static func rsqrt(_ x: Float) -> Float { 1 / x.squareRoot() }

    /// Sum of `n` floats with 8 lanes of partial sums (as a vectorised reduction does; more accurate than one chain).
    @inline(__always) static func laneSum(
        _ p: UnsafePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>, _ g: (Float) -> Float
    ) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= n {
            acc += f(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            i += 8
        }
        var s = acc.sum()
        while i < n { s += g(p[i]); i += 1 }
        return s
    }

    /// Mean and (two-pass, as tf.nn.moments) variance of `n` contiguous floats.
    @inline(__always) static func meanVariance(_ p: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        let fn = Float(n)
        let mean = NormalizationMath.laneSum(p, n, { $0 }, { $0 }) / fn
        let mv = SIMD8<Float>(repeating: mean)
        let v = NormalizationMath.laneSum(p, n, { ($0 - mv) * ($0 - mv) }, { ($0 - mean) * ($0 - mean) }) / fn
        return (mean, v)
    }

    /// `dst = src * scale[c] + shift[c]` over a (outer, c, inner) layout; src and dst may be the same memory.
    @inline(never)
    @_optimize(speed)
    static func scaleShift(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, outer: Int, c: Int, inner: Int,
        _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>
    ) {
        if inner == 1 {
            for r in 0..<outer {
                let x = src + r * c
                let y = dst + r * c
                for j in 0..<c { y[j] = x[j] * scale[j] + shift[j] }
            }
            return
        }
        for r in 0..<outer {
            for j in 0..<c {
                let x = src + (r * c + j) * inner
                let y = dst + (r * c + j) * inner
                let sj = scale[j]
                let hj = shift[j]
                for i in 0..<inner { y[i] = x[i] * sj + hj }
            }
        }
    }

    /// Runs `body` over rows holding the elements of `axes` (sorted, resolved) contiguously: the tensor is
    /// transposed so those axes come last (a no-op when they already are) and transposed back afterwards.
    static func overRows(
        _ x: Tensor, axes: [Int], _ body: (UnsafeMutablePointer<Float>, _ rows: Int, _ n: Int) -> Void
    ) -> Tensor {
        let rank = x.rank
        var perm: [Int] = []
        for d in 0..<rank where !axes.contains(d) { perm.append(d) }
        perm += axes
        var identity = true
        for (i, p) in perm.enumerated() where p != i { identity = false }
        var t = identity ? x : transpose(x, axes: perm)
        var n = 1
        for d in axes { n *= x.shape[d] }
        let rows = n == 0 ? 0 : t.count / n
        t.data.withUnsafeMutableBufferPointer { b in
            if rows > 0 { body(b.baseAddress!, rows, n) }
        }
        if identity { return t }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return transpose(t, axes: inverse)
    }
}

/// Inference batch normalization: `x * scale + shift` per feature, with `scale = gamma / sqrt(var + eps)`
/// and `shift = beta - mean * scale` precomputed at load (as tf.nn.batch_normalization computes them).
/// `axis` may be one axis or (Keras 2) several; then the weights hold one value per element of those axes.
final class BatchNormalization: Layer {
    let axes: [Int]
    let scale: [Float]
    let shift: [Float]
    let weightCount: Int
    /// Set at build: the only axis is the last one, so a preceding conv/dense can absorb this layer.
    private var foldable = false

    static func isKeras1(_ c: LayerConfig) -> Bool { c.has("mode") && !c.has("center") }

    static func weightNames(_ c: LayerConfig) throws(KedgeError) -> [String] {
        // Keras 1 always had gamma and beta, and stored the moving variance under the name running_std.
        if isKeras1(c) { return ["gamma", "beta", "running_mean", "running_std"] }
        var names: [String] = []
        if try c.bool("scale", default: true) { names.append("gamma") }
        if try c.bool("center", default: true) { names.append("beta") }
        names += ["moving_mean", "moving_variance"]
        // Batch renormalization's statistics are only read in training, but they are in the file.
        if try c.bool("renorm", default: false) { names += ["moving_stddev", "renorm_mean", "renorm_stddev"] }
        return names
    }

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        let keras1 = BatchNormalization.isKeras1(c)
        if keras1 {
            let mode = try c.int("mode", default: 0)
            guard mode == 0 else {
                throw KedgeError(
                    .unsupportedLayer,
                    "layer '\(s.name)' (BatchNormalization): Keras 1 mode \(mode) normalizes with batch statistics at inference; only mode 0 is supported"
                )
            }
        }
        axes = try NormalizationMath.axisList(c, default: [-1])
        let eps = Float(try c.double("epsilon", default: 1e-3))
        let mean = try s.weight(keras1 ? "running_mean" : "moving_mean")
        let n = mean.count
        func param(_ name: String) throws(KedgeError) -> [Float] {
            let w = try s.weight(name)
            guard w.count == n else {
                throw KedgeError(
                    .shapeMismatch,
                    "layer '\(s.name)' (BatchNormalization): weight '\(name)' has shape \(describeShape(w.shape)) but the moving mean has \(n) values"
                )
            }
            return w.data
        }
        let variance = try param(keras1 ? "running_std" : "moving_variance")
        let hasGamma = try c.bool("scale", default: true) || keras1
        let hasBeta = try c.bool("center", default: true) || keras1
        let gamma: [Float]? = hasGamma ? try param("gamma") : nil
        let beta: [Float]? = hasBeta ? try param("beta") : nil
        var sc = [Float](repeating: 0, count: n)
        var sh = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var inv = NormalizationMath.rsqrt(variance[i] + eps)
            if let gamma { inv *= gamma[i] }
            sc[i] = inv
            sh[i] = beta.map { $0[i] - mean.data[i] * inv } ?? -mean.data[i] * inv
        }
        scale = sc
        shift = sh
        var total = 0
        for (_, w) in s.weights { total += w.count }
        weightCount = total
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let shape = inputShapes[0]
        let ax = try NormalizationMath.resolveAxes(axes, rank: shape.count, layer: self)
        if ax.contains(0) { throw configError("axis \(describeAxes(axes)) includes the batch axis") }
        let n = NormalizationMath.sizeOver(ax, of: shape)
        if n >= 0 && n != scale.count {
            throw shapeError(
                "input \(describeShape(shape)) has \(n) features on axis \(describeAxes(axes)) but the weights have \(scale.count)"
            )
        }
        return inputShapes
    }

    override func build(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        let out = try outputShapes(inputShapes)
        let rank = inputShapes[0].count
        foldable = try NormalizationMath.resolveAxes(axes, rank: rank, layer: self) == [rank - 1]
        return out
    }

    override var scaleShiftForFolding: ([Float], [Float])? { foldable ? (scale, shift) : nil }

    override var parameterCount: Int { weightCount }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        _ = try outputShapes([x.shape])
        let ax = try NormalizationMath.resolveAxes(axes, rank: x.rank, layer: self)
        let sc = scale
        let sh = shift
        // Parameter stride of every axis (0 off the normalized axes); parameters are in C order over them.
        var pStride = [Int](repeating: 0, count: x.rank)
        var acc = 1
        for d in ax.reversed() { pStride[d] = acc; acc *= x.shape[d] }
        let y = Tensor(shape: x.shape) { out in
            x.data.withUnsafeBufferPointer { xb in
                sc.withUnsafeBufferPointer { sb in
                    sh.withUnsafeBufferPointer { hb in
                        guard out.count > 0 else { return }
                        let o = out.baseAddress!
                        let xp = xb.baseAddress!
                        let s = sb.baseAddress!
                        let h = hb.baseAddress!
                        if ax.count == 1 {
                            let c = x.shape[ax[0]]
                            var inner = 1
                            for d in (ax[0] + 1)..<x.rank { inner *= x.shape[d] }
                            NormalizationMath.scaleShift(xp, o, outer: x.count / (c * inner), c: c, inner: inner, s, h)
                            return
                        }
                        // Several axes: odometer over all but the last axis, strided run along it.
                        let rank = x.rank
                        let run = x.shape[rank - 1]
                        let ps = pStride[rank - 1]
                        var idx = [Int](repeating: 0, count: rank)
                        var p = 0
                        var pos = 0
                        let n = x.count
                        while pos < n {
                            var q = p
                            for i in 0..<run {
                                o[pos + i] = xp[pos + i] * s[q] + h[q]
                                q += ps
                            }
                            pos += run
                            var d = rank - 2
                            while d >= 0 {
                                idx[d] += 1
                                p += pStride[d]
                                if idx[d] < x.shape[d] { break }
                                p -= pStride[d] * x.shape[d]
                                idx[d] = 0
                                d -= 1
                            }
                        }
                    }
                }
            }
        }
        return [y]
    }
}

/// Per-sample normalization over `axis` (one or several axes), with gamma/beta laid out in C order over those
/// axes. `rms_scaling` (Keras 3, deprecated) scales by rsqrt(variance) without centring, gamma only.
final class LayerNormalization: Layer {
    let axes: [Int]
    let epsilon: Float
    let gamma: [Float]?
    let beta: [Float]?
    let rmsScaling: Bool

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        axes = try NormalizationMath.axisList(c, default: [-1])
        epsilon = Float(try c.double("epsilon", default: 1e-3))
        rmsScaling = try c.bool("rms_scaling", default: false)
        gamma = try c.bool("scale", default: true) || rmsScaling ? try s.weight("gamma").data : nil
        beta = try c.bool("center", default: true) && !rmsScaling ? try s.weight("beta").data : nil
        super.init(spec: s)
        if let g = gamma, let b = beta, g.count != b.count {
            throw shapeError("weights 'gamma' and 'beta' differ in size (\(g.count) and \(b.count))")
        }
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let shape = inputShapes[0]
        let ax = try NormalizationMath.resolveAxes(axes, rank: shape.count, layer: self)
        let n = NormalizationMath.sizeOver(ax, of: shape)
        if let p = gamma ?? beta, n >= 0 && n != p.count {
            throw shapeError(
                "input \(describeShape(shape)) has \(n) elements on axis \(describeAxes(axes)) but the weights have \(p.count)"
            )
        }
        return inputShapes
    }

    override var parameterCount: Int { (gamma?.count ?? 0) + (beta?.count ?? 0) }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        _ = try outputShapes([x.shape])
        let ax = try NormalizationMath.resolveAxes(axes, rank: x.rank, layer: self)
        let eps = epsilon
        let n = NormalizationMath.sizeOver(ax, of: x.shape)
        // Absent gamma/beta act as 1 and 0, which leaves every rounding step of Keras's formula unchanged.
        let g = gamma ?? [Float](repeating: 1, count: n)
        let b = beta ?? [Float](repeating: 0, count: n)
        let rms = rmsScaling
        return [
            NormalizationMath.overRows(x, axes: ax) { p, rows, n in
                g.withUnsafeBufferPointer { gb in
                    b.withUnsafeBufferPointer { bb in
                        let gp = gb.baseAddress!
                        let bp = bb.baseAddress!
                        for r in 0..<rows {
                            let row = p + r * n
                            let (mean, variance) = NormalizationMath.meanVariance(row, n)
                            let inv = NormalizationMath.rsqrt(variance + eps)
                            if rms {
                                for j in 0..<n { row[j] = row[j] * inv * gp[j] }
                            } else {
                                for j in 0..<n {
                                    let iv = inv * gp[j]
                                    row[j] = row[j] * iv + (-mean * iv + bp[j])
                                }
                            }
                        }
                    }
                }
            }
        ]
    }
}

/// Normalization over groups of channels: channel axis `axis` splits into `groups` groups; mean and variance
/// run over every non-batch element of a group; gamma/beta are per channel. `groups = -1` is instance norm.
final class GroupNormalization: Layer {
    let groupsConfig: Int
    let axis: Int
    let epsilon: Float
    let gamma: [Float]?
    let beta: [Float]?

    init(_ s: LayerSpec) throws(KedgeError) {
        let c = s.config
        groupsConfig = try c.int("groups", default: 32)
        axis = try c.int("axis", default: -1)
        epsilon = Float(try c.double("epsilon", default: 1e-3))
        gamma = try c.bool("scale", default: true) ? try s.weight("gamma").data : nil
        beta = try c.bool("center", default: true) ? try s.weight("beta").data : nil
        super.init(spec: s)
        if groupsConfig == 0 || groupsConfig < -1 { throw configError("groups must be positive or -1") }
    }

    private func layout(_ shape: [Int]) throws(KedgeError) -> (axis: Int, groups: Int) {
        let ax = axis < 0 ? axis + shape.count : axis
        guard ax > 0 && ax < shape.count else {
            throw shapeError("axis \(axis) is not a non-batch axis of an input of shape \(describeShape(shape))")
        }
        let c = shape[ax]
        guard c >= 0 else { throw shapeError("axis \(axis) of input \(describeShape(shape)) must have a known size") }
        let g = groupsConfig == -1 ? c : groupsConfig
        guard g <= c && c % g == 0 else {
            throw shapeError("\(c) channels on axis \(axis) cannot be split into \(g) groups")
        }
        for p in [gamma, beta] {
            if let p, p.count != c { throw shapeError("weights have \(p.count) values for \(c) channels") }
        }
        return (ax, g)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        _ = try layout(inputShapes[0])
        return inputShapes
    }

    override var parameterCount: Int { (gamma?.count ?? 0) + (beta?.count ?? 0) }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let (ax, groups) = try layout(x.shape)
        let c = x.shape[ax]
        let cg = c / groups
        let batch = x.shape[0]
        var pre = 1
        for d in 1..<ax { pre *= x.shape[d] }
        var inner = 1
        for d in (ax + 1)..<x.rank { inner *= x.shape[d] }
        let count = Float(pre * cg * inner)
        let eps = epsilon
        let g = gamma ?? [Float](repeating: 1, count: c)
        let b = beta ?? [Float](repeating: 0, count: c)
        var y = x
        var chSum = [Float](repeating: 0, count: c)
        var chMean = [Float](repeating: 0, count: c)
        var scale = [Float](repeating: 0, count: c)
        var shift = [Float](repeating: 0, count: c)
        let sampleSize = pre * c * inner
        y.data.withUnsafeMutableBufferPointer { buf in
            guard buf.count > 0 else { return }
            // Per-channel sums over one sample's (pre, c, inner) block; `f` maps each element first.
            func channelSums(_ s: UnsafePointer<Float>, _ f: (Float, Int) -> Float) {
                for j in 0..<c { chSum[j] = 0 }
                chSum.withUnsafeMutableBufferPointer { cs in
                    let acc = cs.baseAddress!
                    for q in 0..<pre {
                        let blk = s + q * c * inner
                        if inner == 1 {
                            for j in 0..<c { acc[j] += f(blk[j], j) }
                        } else {
                            for j in 0..<c {
                                let r = blk + j * inner
                                var t: Float = 0
                                for i in 0..<inner { t += f(r[i], j) }
                                acc[j] += t
                            }
                        }
                    }
                }
            }
            for n in 0..<batch {
                let sample = buf.baseAddress! + n * sampleSize
                channelSums(sample) { v, _ in v }
                for k in 0..<groups {
                    var t: Float = 0
                    for j in 0..<cg { t += chSum[k * cg + j] }
                    for j in 0..<cg { chMean[k * cg + j] = t / count }
                }
                chMean.withUnsafeBufferPointer { mb in
                    let m = mb.baseAddress!
                    channelSums(sample) { v, j in (v - m[j]) * (v - m[j]) }
                }
                for k in 0..<groups {
                    var t: Float = 0
                    for j in 0..<cg { t += chSum[k * cg + j] }
                    let inv0 = NormalizationMath.rsqrt(t / count + eps)
                    let mean = chMean[k * cg]
                    for j in 0..<cg {
                        let ch = k * cg + j
                        let inv = inv0 * g[ch]
                        scale[ch] = inv
                        shift[ch] = -mean * inv + b[ch]
                    }
                }
                scale.withUnsafeBufferPointer { sb in
                    shift.withUnsafeBufferPointer { hb in
                        NormalizationMath.scaleShift(
                            sample, sample, outer: pre, c: c, inner: inner, sb.baseAddress!, hb.baseAddress!)
                    }
                }
            }
        }
        return [y]
    }
}

/// `x * rsqrt(mean(x^2) + epsilon) * scale` over `axis` (Keras 3.9+).
final class RMSNormalization: Layer {
    let axes: [Int]
    let epsilon: Float
    let scale: [Float]

    init(_ s: LayerSpec) throws(KedgeError) {
        axes = try NormalizationMath.axisList(s.config, default: [-1])
        epsilon = Float(try s.config.double("epsilon", default: 1e-6))
        scale = try s.weight("scale").data
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let shape = inputShapes[0]
        let ax = try NormalizationMath.resolveAxes(axes, rank: shape.count, layer: self)
        let n = NormalizationMath.sizeOver(ax, of: shape)
        if n >= 0 && n != scale.count {
            throw shapeError(
                "input \(describeShape(shape)) has \(n) elements on axis \(describeAxes(axes)) but 'scale' has \(scale.count)"
            )
        }
        return inputShapes
    }

    override var parameterCount: Int { scale.count }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        _ = try outputShapes([x.shape])
        let eps = epsilon
        let sc = scale
        let ax = try NormalizationMath.resolveAxes(axes, rank: x.rank, layer: self)
        return [
            NormalizationMath.overRows(x, axes: ax) { p, rows, n in
                sc.withUnsafeBufferPointer { sb in
                    let sp = sb.baseAddress!
                    for r in 0..<rows {
                        let row = p + r * n
                        let ms = NormalizationMath.laneSum(row, n, { $0 * $0 }, { $0 * $0 }) / Float(n)
                        let inv = NormalizationMath.rsqrt(ms + eps)
                        for j in 0..<n { row[j] = row[j] * inv * sp[j] }
                    }
                }
            }
        ]
    }
}

/// L2 normalization over `axis`. Keras 3: x * min(rsqrt(sum x^2), 1e12); Keras 2 (tf.math.l2_normalize):
/// x * rsqrt(max(sum x^2, 1e-12)).
final class UnitNormalization: Layer {
    let axes: [Int]
    let keras3: Bool

    init(_ s: LayerSpec) throws(KedgeError) {
        axes = try NormalizationMath.axisList(s.config, default: [-1])
        keras3 = s.kerasMajor >= 3
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        _ = try NormalizationMath.resolveAxes(axes, rank: inputShapes[0].count, layer: self)
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let k3 = keras3
        let ax = try NormalizationMath.resolveAxes(axes, rank: x.rank, layer: self)
        return [
            NormalizationMath.overRows(x, axes: ax) { p, rows, n in
                for r in 0..<rows {
                    let row = p + r * n
                    let ss = NormalizationMath.laneSum(row, n, { $0 * $0 }, { $0 * $0 })
                    let inv = k3 ? min(NormalizationMath.rsqrt(ss), 1e12) : NormalizationMath.rsqrt(max(ss, 1e-12))
                    for j in 0..<n { row[j] = row[j] * inv }
                }
            }
        ]
    }
}
