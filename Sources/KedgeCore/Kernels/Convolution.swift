// Convolution (Conv1D/2D/3D, grouped) on channels-last data, lowered to the packed GEMM: the rows of the
// virtual im2col matrix (one per output pixel, columns ordered tap-major then input channel, which is the
// order of Keras's kernel (k..., in/groups, out) flattened) are gathered block by block straight into the
// GEMM's packed A buffer. A 1x1, stride-1 convolution skips the gather: its input already is that matrix.

/// A convolution kernel packed for the GEMM: one `PackedWeights` per group.
struct ConvWeights {
    let window: Dims3
    let inChannelsPerGroup: Int
    let outChannels: Int
    let groups: Int
    var groupWeights: [PackedWeights]

    /// `kernel` is Keras's (kd, kh, kw, in/groups, out) tensor, flattened; `bias` has `outChannels` values or is nil.
    init(kernel: [Float], window: Dims3, inChannelsPerGroup cg: Int, outChannels: Int, groups: Int, bias: [Float]?) {
        self.window = window
        self.inChannelsPerGroup = cg
        self.outChannels = outChannels
        self.groups = groups
        let ng = outChannels / groups
        let k = window.product * cg
        var packed: [PackedWeights] = []
        for g in 0..<groups {
            let groupBias: [Float]? = bias.map { Array($0[(g * ng)..<((g + 1) * ng)]) }
            packed.append(
                PackedWeights(k: k, n: ng, bias: groupBias) { r, c in kernel[r * outChannels + g * ng + c] })
        }
        groupWeights = packed
    }

    var inChannels: Int { inChannelsPerGroup * groups }
}

/// Input offsets of each window tap, precomputed once per call so that the gather does no division per element.
struct TapTable {
    var dz: [Int] = []
    var dy: [Int] = []
    var dx: [Int] = []
    /// Offset in floats of the tap's input pixel from the window origin's.
    var offset: [Int] = []

    init(_ g: ConvGeometry, channels: Int) {
        for td in 0..<g.window.d {
            for th in 0..<g.window.h {
                for tw in 0..<g.window.w {
                    let z = td * g.dilation.d, y = th * g.dilation.h, x = tw * g.dilation.w
                    dz.append(z)
                    dy.append(y)
                    dx.append(x)
                    offset.append(((z * g.input.h + y) * g.input.w + x) * channels)
                }
            }
        }
    }
}

/// `out` (batch, od, oh, ow, outChannels) = activation(conv(x) + bias); `x` is (batch, id, ih, iw, channels).
func convolve(
    _ x: UnsafePointer<Float>, geometry g: ConvGeometry, weights: ConvWeights, activation: Activation,
    out: UnsafeMutablePointer<Float>
) {
    let c = weights.inChannels
    let cg = weights.inChannelsPerGroup
    let ng = weights.outChannels / weights.groups
    let m = g.outputPixels
    let pointwise =
        g.window.product == 1 && g.stride == Dims3(1, 1, 1) && g.padBefore == Dims3(0, 0, 0)
        && g.output == g.input
    if pointwise {
        for (gi, w) in weights.groupWeights.enumerated() {
            gemm(
                m: m, a: x + gi * cg, lda: c, weights: w, c: out + gi * ng, ldc: weights.outChannels,
                activation: activation)
        }
        return
    }
    let taps = TapTable(g, channels: c)
    taps.dz.withUnsafeBufferPointer { dzb in
        taps.dy.withUnsafeBufferPointer { dyb in
            taps.dx.withUnsafeBufferPointer { dxb in
                taps.offset.withUnsafeBufferPointer { offb in
                    let gather = Im2ColGather(
                        x: x, geometry: g, channels: c, channelsPerGroup: cg, tapCount: g.taps,
                        dz: dzb.baseAddress!, dy: dyb.baseAddress!, dx: dxb.baseAddress!, offset: offb.baseAddress!)
                    for (gi, w) in weights.groupWeights.enumerated() {
                        gemm(m: m, weights: w, c: out + gi * ng, ldc: weights.outChannels, activation: activation) {
                            dst, m0, mc, k0, kc in
                            gather.pack(dst, group: gi, m0: m0, mc: mc, k0: k0, kc: kc)
                        }
                    }
                }
            }
        }
    }
}

/// Gathers im2col rows into the GEMM's MR-interleaved A panels (see `GEMMPackA`).
struct Im2ColGather {
    let x: UnsafePointer<Float>
    let geometry: ConvGeometry
    let channels: Int
    let channelsPerGroup: Int
    let tapCount: Int
    let dz: UnsafePointer<Int>
    let dy: UnsafePointer<Int>
    let dx: UnsafePointer<Int>
    let offset: UnsafePointer<Int>

    func pack(_ dst: UnsafeMutablePointer<Float>, group: Int, m0: Int, mc: Int, k0: Int, kc: Int) {
        let g = geometry
        let mr = gemmMR
        let cg = channelsPerGroup
        let c = channels
        let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
        let (od, oh, ow) = (g.output.d, g.output.h, g.output.w)
        // Extent of the dilated window minus one, for the interior test.
        let ez = dz[tapCount - 1], ey = dy[tapCount - 1], ex = dx[tapCount - 1]
        let end = k0 + kc
        let firstTap = k0 / cg
        let firstChannel = k0 - firstTap * cg
        let rowsPadded = (mc + mr - 1) / mr * mr
        for r in 0..<rowsPadded {
            let panel = dst + (r / mr) * mr * kc + (r % mr)
            if r >= mc {
                for kk in 0..<kc { panel[kk * mr] = 0 }
                continue
            }
            var p = m0 + r
            let wo = p % ow
            p /= ow
            let ho = p % oh
            p /= oh
            let dO = p % od
            let b = p / od
            let z0 = dO * g.stride.d - g.padBefore.d
            let y0 = ho * g.stride.h - g.padBefore.h
            let x0 = wo * g.stride.w - g.padBefore.w
            let interior = z0 >= 0 && y0 >= 0 && x0 >= 0 && z0 + ez < id && y0 + ey < ih && x0 + ex < iw
            // Float offset of the window origin (may lie outside the input when not interior; only used in range).
            let base = (((b * id + z0) * ih + y0) * iw + x0) * c + group * cg
            var kk = k0
            var tap = firstTap
            var ci = firstChannel
            if cg == 1 {
                // One channel per tap: a plain gather along the tap table.
                while kk < end {
                    let inside =
                        interior
                        || (z0 + dz[tap] >= 0 && z0 + dz[tap] < id && y0 + dy[tap] >= 0 && y0 + dy[tap] < ih
                            && x0 + dx[tap] >= 0 && x0 + dx[tap] < iw)
                    panel[(kk - k0) * mr] = inside ? x[base + offset[tap]] : 0
                    kk += 1
                    tap += 1
                }
                continue
            }
            while kk < end {
                let run = min(cg - ci, end - kk)
                let d = panel + (kk - k0) * mr
                let inside =
                    interior
                    || (z0 + dz[tap] >= 0 && z0 + dz[tap] < id && y0 + dy[tap] >= 0 && y0 + dy[tap] < ih
                        && x0 + dx[tap] >= 0 && x0 + dx[tap] < iw)
                if inside {
                    let src = x + (base + offset[tap] + ci)
                    for q in 0..<run { d[q * mr] = src[q] }
                } else {
                    for q in 0..<run { d[q * mr] = 0 }
                }
                kk += run
                tap += 1
                ci = 0
            }
        }
    }
}
