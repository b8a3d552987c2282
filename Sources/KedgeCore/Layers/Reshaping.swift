// Keras's spatial reshaping layers (keras/src/layers/reshaping): Cropping1D/2D/3D, ZeroPadding1D/2D/3D and
// UpSampling1D/2D/3D (nearest; UpSampling2D also bilinear and bicubic as tf.image.resize computes them).
// Channels-first data is handled in place as a batch of single-channel images.

let reshapingBuilders: [LayerBuilder] = [
    LayerBuilder(["Cropping1D"]) { s throws(KedgeError) in try RegionCopy(s, rank: 1, cropping: true) },
    LayerBuilder(["Cropping2D"]) { s throws(KedgeError) in try RegionCopy(s, rank: 2, cropping: true) },
    LayerBuilder(["Cropping3D"]) { s throws(KedgeError) in try RegionCopy(s, rank: 3, cropping: true) },
    LayerBuilder(["ZeroPadding1D"]) { s throws(KedgeError) in try RegionCopy(s, rank: 1, cropping: false) },
    LayerBuilder(["ZeroPadding2D"]) { s throws(KedgeError) in try RegionCopy(s, rank: 2, cropping: false) },
    LayerBuilder(["ZeroPadding3D"]) { s throws(KedgeError) in try RegionCopy(s, rank: 3, cropping: false) },
    LayerBuilder(["UpSampling1D"]) { s throws(KedgeError) in try UpSampling(s, rank: 1) },
    LayerBuilder(["UpSampling2D"]) { s throws(KedgeError) in try UpSampling(s, rank: 2) },
    LayerBuilder(["UpSampling3D"]) { s throws(KedgeError) in try UpSampling(s, rank: 3) },
]

extension LayerConfig {
    /// Keras's (before, after) amounts per spatial axis: an int for all, one int per axis (symmetric), or one
    /// pair per axis; for one axis a pair is (before, after).
    func beforeAfter(_ key: String, rank: Int, default d: Int) throws(KedgeError) -> [(Int, Int)] {
        guard let v = self[key] else { return [(Int, Int)](repeating: (d, d), count: rank) }
        if let i = v.int { return [(Int, Int)](repeating: (i, i), count: rank) }
        guard let a = v.array else { throw error(key, "must be an integer or a list") }
        if rank == 1 {
            let flat = try ints(key, count: 2)
            guard flat[0] >= 0, flat[1] >= 0 else { throw error(key, "must not be negative") }
            return [(flat[0], flat[1])]
        }
        guard a.count == rank else { throw error(key, "must have \(rank) entries, has \(a.count)") }
        var out: [(Int, Int)] = []
        for e in a {
            if let i = e.int {
                out.append((i, i))
            } else if let p = e.array, p.count == 2, let x = p[0].int, let y = p[1].int {
                out.append((x, y))
            } else {
                throw error(key, "entries must be integers or pairs of integers")
            }
        }
        for (x, y) in out where x < 0 || y < 0 { throw error(key, "must not be negative") }
        return out
    }
}

/// Cropping and zero padding: a shifted copy of the spatial region.
final class RegionCopy: Layer {
    let layout: SpatialLayout
    let cropping: Bool
    let amounts: [(Int, Int)]

    init(_ s: LayerSpec, rank: Int, cropping: Bool) throws(KedgeError) {
        // Cropping1D has no data_format; ZeroPadding1D has one in Keras 3 only (absent means channels_last).
        layout = try s.config.spatialLayout(rank: rank)
        self.cropping = cropping
        amounts = try s.config.beforeAfter(cropping ? "cropping" : "padding", rank: rank, default: cropping ? 0 : 1)
        super.init(spec: s)
    }

    func outputSpatial(_ spatial: [Int]) throws(KedgeError) -> [Int] {
        var out: [Int] = []
        for (i, n) in spatial.enumerated() {
            if n < 0 { out.append(-1); continue }
            let (a, b) = amounts[i]
            let len = cropping ? n - a - b : n + a + b
            if len <= 0 {
                throw shapeError("cropping (\(a), \(b)) leaves nothing of spatial axis \(i + 1) of size \(n)")
            }
            out.append(len)
        }
        return out
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        try layout.checkRank(s, self)
        return [layout.shape(batch: s[0], spatial: try outputSpatial(layout.spatial(s)), channels: layout.channels(s))]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        let x = inputs[0]
        let outShape = try outputShapes([x.shape])[0]
        let v = layout.perChannelView(x.shape)
        let outDims = Dims3(trailing: layout.spatial(outShape), fill: 1)
        let before = amounts.map { cropping ? $0.0 : -$0.0 }
        let origin = Dims3(trailing: before, fill: 0)
        return [
            Tensor(shape: outShape) { out in
                if out.isEmpty { return }
                x.data.withUnsafeBufferPointer { xp in
                    copyRegion(
                        xp.baseAddress!, batch: v.batch, input: v.spatial, channels: v.channels, output: outDims,
                        origin: origin, out: out.baseAddress!)
                }
            }
        ]
    }
}

/// UpSampling1D/2D/3D: each axis repeated `size` times, or for UpSampling2D a bilinear or bicubic resize.
final class UpSampling: Layer {
    enum Interpolation { case nearest, bilinear, bicubic }

    let layout: SpatialLayout
    let size: [Int]
    let interpolation: Interpolation

    init(_ s: LayerSpec, rank: Int) throws(KedgeError) {
        let c = s.config
        layout = try c.spatialLayout(rank: rank)
        let key = c.has("size") ? "size" : "length"
        size = try c.positiveInts(key, count: rank, default: [Int](repeating: 2, count: rank))
        if rank == 2 {
            switch try c.string("interpolation", default: "nearest").asciiLowercased() {
            case "nearest": interpolation = .nearest
            case "bilinear": interpolation = .bilinear
            case "bicubic": interpolation = .bicubic
            default:
                throw c.error("interpolation", "is '\(try c.string("interpolation"))'; supported: nearest, bilinear, bicubic")
            }
        } else {
            interpolation = .nearest
        }
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        try layout.checkRank(s, self)
        let spatial = layout.spatial(s).enumerated().map { $0.element < 0 ? -1 : $0.element * size[$0.offset] }
        return [layout.shape(batch: s[0], spatial: spatial, channels: layout.channels(s))]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        let x = inputs[0]
        let outShape = try outputShapes([x.shape])[0]
        let v = layout.perChannelView(x.shape)
        let factor = Dims3(trailing: size, fill: 1)
        let mode = interpolation
        return [
            Tensor(shape: outShape) { out in
                if out.isEmpty { return }
                x.data.withUnsafeBufferPointer { xp in
                    let (inH, inW) = (v.spatial.h, v.spatial.w)
                    switch mode {
                    case .nearest:
                        repeatUpsample(
                            xp.baseAddress!, batch: v.batch, input: v.spatial, channels: v.channels, factor: factor,
                            out: out.baseAddress!)
                    case .bilinear:
                        resizeBilinear(
                            xp.baseAddress!, batch: v.batch, inH: inH, inW: inW, channels: v.channels,
                            outH: inH * factor.h, outW: inW * factor.w, out: out.baseAddress!)
                    case .bicubic:
                        resizeBicubic(
                            xp.baseAddress!, batch: v.batch, inH: inH, inW: inW, channels: v.channels,
                            outH: inH * factor.h, outW: inW * factor.w, out: out.baseAddress!)
                    }
                }
            }
        ]
    }
}
