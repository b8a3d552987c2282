// The glue steps between the cascade's models, mirroring tools/cascade/glue.py step for step (docs/CASCADE.md):
// float32 tensors for the models, Double for bookkeeping, floor(c + 0.5) to round to a voxel, and a defined
// order with a tie-break for every list.

/// A (z, y, x) volume in HU, float32.
public struct Volume {
    public var depth: Int
    public var height: Int
    public var width: Int
    public var data: [Float]

    public init(_ t: Tensor) throws(KedgeError) {
        guard t.rank == 3 else {
            throw KedgeError(.invalidInput, "a CT volume must be 3-D (z, y, x); got shape \(describeShape(t.shape))")
        }
        depth = t.shape[0]
        height = t.shape[1]
        width = t.shape[2]
        data = t.data
    }

    init(depth: Int, height: Int, width: Int, data: [Float]) {
        self.depth = depth
        self.height = height
        self.width = width
        self.data = data
    }

    @inline(__always) func at(_ z: Int, _ y: Int, _ x: Int) -> Float { data[(z * height + y) * width + x] }
}

enum Glue {
    /// clamp to [lo, hi], then (v - lo) / (hi - lo), in float32 like numpy does.
    static func window(_ v: [Float], _ w: CascadeConfig.Window) -> [Float] {
        let scale = w.hi - w.lo
        return v.map { (min(max($0, w.lo), w.hi) - w.lo) / scale }
    }

    static func roundHalfUp(_ c: Double) -> Int { Int((c + 0.5).rounded(.down)) }

    /// The cube of `size` starting at center - size/2 (integer division), `pad` outside the volume.
    static func crop3d(_ v: Volume, center: [Int], size: [Int], pad: Float) -> [Float] {
        var out = [Float](repeating: pad, count: size[0] * size[1] * size[2])
        let z0 = center[0] - size[0] / 2
        let y0 = center[1] - size[1] / 2
        let x0 = center[2] - size[2] / 2
        for dz in 0..<size[0] {
            let z = z0 + dz
            if z < 0 || z >= v.depth { continue }
            for dy in 0..<size[1] {
                let y = y0 + dy
                if y < 0 || y >= v.height { continue }
                for dx in 0..<size[2] {
                    let x = x0 + dx
                    if x < 0 || x >= v.width { continue }
                    out[(dz * size[1] + dy) * size[2] + dx] = v.at(z, y, x)
                }
            }
        }
        return out
    }

    /// An (h, w, offsets.count) patch: channel k is slice z + offsets[k]; `pad` outside the volume.
    static func crop2d(_ v: Volume, center: [Int], size: [Int], offsets: [Int], pad: Float) -> [Float] {
        let h = size[0]
        let w = size[1]
        let c = offsets.count
        var out = [Float](repeating: pad, count: h * w * c)
        let y0 = center[1] - h / 2
        let x0 = center[2] - w / 2
        for (k, dz) in offsets.enumerated() {
            let z = center[0] + dz
            if z < 0 || z >= v.depth { continue }
            for r in 0..<h {
                let y = y0 + r
                if y < 0 || y >= v.height { continue }
                for q in 0..<w {
                    let x = x0 + q
                    if x < 0 || x >= v.width { continue }
                    out[(r * w + q) * c + k] = v.at(z, y, x)
                }
            }
        }
        return out
    }

    /// The box model's input for one nodule: the windowed HU channels (`dz_offsets`), then the ROI heatmap
    /// channels (`heatmap_dz_offsets`, `heatmap_pad` outside, not windowed), interleaved per pixel (channels last).
    static func boxInput(_ v: Volume, heat: Volume, center: [Int], config c: CascadeConfig) -> [Float] {
        let hu = window(crop2d(v, center: center, size: c.boxPatch, offsets: c.boxOffsets, pad: c.boxPad), c.boxWindow)
        if c.boxHeatmapOffsets.isEmpty { return hu }
        let hm = crop2d(heat, center: center, size: c.boxPatch, offsets: c.boxHeatmapOffsets, pad: c.boxHeatmapPad)
        let a = c.boxOffsets.count
        let b = c.boxHeatmapOffsets.count
        var out: [Float] = []
        out.reserveCapacity(hu.count + hm.count)
        for p in 0..<(c.boxPatch[0] * c.boxPatch[1]) {
            out += hu[(p * a)..<(p * a + a)]
            out += hm[(p * b)..<(p * b + b)]
        }
        return out
    }

    static func sigmoid(_ v: Double) -> Double {
        if v >= 0 { return 1 / (1 + exp(-v)) }
        let e = exp(v)
        return e / (1 + e)
    }
}

/// One connected component of the thresholded heatmap.
public struct CascadeCandidate {
    public var firstIndex: Int
    public var voxels: Int
    public var mass: Double
    public var maxP: Double
    public var centroid: [Double]
    public var center: [Int]
    public var fpLogit: Double = 0
    public var fpProb: Double = 0
}

extension Glue {
    /// Connected components (6- or 26-connected) of heat >= threshold, each summarised; sorted by mass
    /// descending then first raster index; at most `maxCandidates`.
    static func candidates(_ heat: [Float], shape: [Int], config c: CascadeConfig) -> [CascadeCandidate] {
        let Z = shape[0], Y = shape[1], X = shape[2]
        let t = Float(c.threshold)
        var label = [Int32](repeating: 0, count: heat.count)
        var neighbours: [(Int, Int, Int)] = []
        for dz in -1...1 {
            for dy in -1...1 {
                for dx in -1...1 {
                    let n = abs(dz) + abs(dy) + abs(dx)
                    if n == 0 || (c.connectivity == 6 && n > 1) { continue }
                    neighbours.append((dz, dy, dx))
                }
            }
        }
        var out: [CascadeCandidate] = []
        var stack: [Int] = []
        var members: [Int] = []
        var next: Int32 = 0
        for start in 0..<heat.count where heat[start] >= t && label[start] == 0 {
            next += 1
            label[start] = next
            stack = [start]
            members = []
            while let i = stack.popLast() {
                members.append(i)
                let z = i / (Y * X), y = (i / X) % Y, x = i % X
                for (dz, dy, dx) in neighbours {
                    let zz = z + dz, yy = y + dy, xx = x + dx
                    if zz < 0 || zz >= Z || yy < 0 || yy >= Y || xx < 0 || xx >= X { continue }
                    let j = (zz * Y + yy) * X + xx
                    if heat[j] >= t && label[j] == 0 {
                        label[j] = next
                        stack.append(j)
                    }
                }
            }
            if members.count < c.minVoxels { continue }
            members.sort()  // raster order, as the reference sums in
            var mass = 0.0, sz = 0.0, sy = 0.0, sx = 0.0, mz = 0.0, my = 0.0, mx = 0.0
            var maxP = -Double.infinity
            for i in members {
                let p = Double(heat[i])
                let w = p - c.threshold
                let z = Double(i / (Y * X)), y = Double((i / X) % Y), x = Double(i % X)
                mass += w
                sz += w * z
                sy += w * y
                sx += w * x
                mz += z
                my += y
                mx += x
                maxP = max(maxP, p)
            }
            let n = Double(members.count)
            let cen = mass > 0 ? [sz / mass, sy / mass, sx / mass] : [mz / n, my / n, mx / n]
            out.append(
                CascadeCandidate(
                    firstIndex: members[0], voxels: members.count, mass: mass, maxP: maxP, centroid: cen,
                    center: cen.map(roundHalfUp)))
        }
        out.sort { a, b in a.mass != b.mass ? a.mass > b.mass : a.firstIndex < b.firstIndex }
        if out.count > c.maxCandidates { out.removeLast(out.count - c.maxCandidates) }
        return out
    }

    /// Keeps candidates whose FP logit passes the threshold, by logit descending (then index), with greedy
    /// non-maximum suppression at `nmsRadiusMM` between centres; at most `maxNodules`.
    static func selectNodules(_ cands: [CascadeCandidate], logits: [Float], config c: CascadeConfig) -> [Int] {
        var idx: [Int] = []
        for i in 0..<cands.count where Double(logits[i]) >= c.fpLogitThreshold { idx.append(i) }
        idx.sort { a, b in logits[a] != logits[b] ? logits[a] > logits[b] : a < b }
        let r2 = c.nmsRadiusMM * c.nmsRadiusMM
        var kept: [Int] = []
        for i in idx {
            var close = false
            for j in kept {
                var d2 = 0.0
                for a in 0..<3 {
                    let d = Double(cands[i].center[a] - cands[j].center[a]) * c.spacing[a]
                    d2 += d * d
                }
                if d2 < r2 { close = true; break }
            }
            if !close {
                kept.append(i)
                if kept.count == c.maxNodules { break }
            }
        }
        return kept
    }
}

/// A decoded box in voxel coordinates of slice `z`.
public struct CascadeBox {
    public var z: Int
    public var cy, cx, h, w: Double
    public var y0, x0, y1, x1: Double
    public var diameterMM: Double
    public var patchCenter: [Int]

    /// `raw` is the box model's (s_cy, s_cx, s_h, s_w); each is clamped to [0, 1] first, as glue.py does, so a
    /// wild regression can't put a box outside its patch.
    init(center: [Int], size: [Int], raw: [Float], spacing: [Double]) {
        let s = raw.map { min(max(Double($0), 0), 1) }
        let ph = Double(size[0]), pw = Double(size[1])
        z = center[0]
        cy = Double(center[1] - size[0] / 2) + s[0] * ph - 0.5
        cx = Double(center[2] - size[1] / 2) + s[1] * pw - 0.5
        h = s[2] * ph
        w = s[3] * pw
        y0 = cy - h / 2
        x0 = cx - w / 2
        y1 = cy + h / 2
        x1 = cx + w / 2
        diameterMM = 0.5 * (h * spacing[1] + w * spacing[2])
        patchCenter = [center[0], Glue.roundHalfUp(cy), Glue.roundHalfUp(cx)]
    }
}

public struct CascadeNodule {
    public var candidate: Int
    public var center: [Int]
    public var fpLogit: Double
    public var fpProb: Double
    public var boxRaw: [Float] = []
    public var box: CascadeBox? = nil
    public var malignancy: Double = 0
}

/// The meta-classifier's features, by the names cascade.json lists.
enum CascadeFeatures {
    static let names = [
        "sex_male_prob", "n_nodules", "max_malignancy", "mean_malignancy", "largest_malignancy", "max_diameter_mm",
        "mean_diameter_mm", "max_fp_prob", "mean_fp_prob",
    ]

    static func compute(sex: Double, logits: [Float], nodules: [CascadeNodule]) -> [String: Double] {
        var f: [String: Double] = [:]
        for n in names { f[n] = 0 }
        f["sex_male_prob"] = sex
        if let m = logits.max() { f["max_fp_prob"] = Glue.sigmoid(Double(m)) }
        if !nodules.isEmpty {
            let mal = nodules.map { $0.malignancy }
            let dia = nodules.map { $0.box?.diameterMM ?? 0 }
            let fp = nodules.map { $0.fpProb }
            var largest = 0
            for i in 1..<dia.count where dia[i] > dia[largest] { largest = i }
            func sum(_ a: [Double]) -> Double { var s = 0.0; for v in a { s += v }; return s }
            let n = Double(nodules.count)
            f["n_nodules"] = n
            f["max_malignancy"] = mal.max()!
            f["mean_malignancy"] = sum(mal) / n
            f["largest_malignancy"] = mal[largest]
            f["max_diameter_mm"] = dia.max()!
            f["mean_diameter_mm"] = sum(dia) / n
            f["mean_fp_prob"] = sum(fp) / n
        }
        return f
    }
}
