// Convolution (Conv1D/2D/3D, grouped) on channels-last data, lowered to GEMM without an im2col matrix: the
// A operand's rows (one per output pixel, columns ordered tap-major then input channel, which is the order of
// Keras's kernel (k..., in/groups, out) flattened) are read in place through per-tap row pointers (an indirect
// GEMM, as XNNPACK does). A 1x1, stride-1 convolution is a plain GEMM: its input already is that matrix.

/// Below this many channels per group and tap, convolutions gather im2col panels instead of the indirect GEMM.
let indirectMinChannels = 3

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
@_optimize(speed)
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
    if cg < indirectMinChannels {
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
        return
    }
    for (gi, w) in weights.groupWeights.enumerated() {
        indirectConvolve(
            x, geometry: g, channels: c, channelOffset: gi * cg, channelsPerGroup: cg, taps: taps, weights: w,
            out: out + gi * ng, ldc: weights.outChannels, activation: activation)
    }
}

/// One group of a convolution as an indirect GEMM: per block of output pixels, a table of MR row pointers per tap
/// (into `x`, or to zeros where the window hangs over the padding) feeds `indirectMicroKernel`. Taps are
/// blocked so that a block's slice of B stays near `gemmKC` rows, as in `gemm`.
@_optimize(speed)
func indirectConvolve(
    _ x: UnsafePointer<Float>, geometry g: ConvGeometry, channels c: Int, channelOffset: Int, channelsPerGroup cg: Int,
    taps: TapTable, weights: PackedWeights, out: UnsafeMutablePointer<Float>, ldc: Int, activation: Activation
) {
    let mr = gemmMR
    let nr = gemmNR
    let m = g.outputPixels
    let n = weights.n
    let k = weights.k
    let tapCount = g.taps
    let act = activation
    let applyAct = act.isPointwise && !act.isLinear
    if m == 0 || n == 0 { return }
    let zeros = UnsafeMutablePointer<Float>.allocate(capacity: max(cg, 1))
    zeros.initialize(repeating: 0, count: max(cg, 1))
    defer { zeros.deallocate() }
    let panelsPerBlock = (gemmMC + mr - 1) / mr
    let ind = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: panelsPerBlock * tapCount * mr)
    defer { ind.deallocate() }
    let tile = UnsafeMutablePointer<Float>.allocate(capacity: mr * nr)
    defer { tile.deallocate() }
    let tapBlock = max(1, gemmKC / max(cg, 1))
    let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
    let (od, oh, ow) = (g.output.d, g.output.h, g.output.w)
    let panelCount = (n + nr - 1) / nr
    weights.bias.withUnsafeBufferPointer { biasBuf in
        weights.panels.withUnsafeBufferPointer { panelBuf in
            taps.dz.withUnsafeBufferPointer { dz in
                taps.dy.withUnsafeBufferPointer { dy in
                    taps.dx.withUnsafeBufferPointer { dx in
                        taps.offset.withUnsafeBufferPointer { off in
                            let bias = biasBuf.baseAddress!
                            let panels = panelBuf.baseAddress!
                            let ez = dz[tapCount - 1], ey = dy[tapCount - 1], ex = dx[tapCount - 1]
                            var m0 = 0
                            while m0 < m {
                                let mc = min(gemmMC, m - m0)
                                let rowsPadded = (mc + mr - 1) / mr * mr
                                // The indirection table: [panel][tap][row in panel].
                                for r in 0..<rowsPadded {
                                    let slot = ind + ((r / mr) * tapCount) * mr + r % mr
                                    if r >= mc {
                                        for t in 0..<tapCount { slot[t * mr] = UnsafePointer(zeros) }
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
                                    let interior =
                                        z0 >= 0 && y0 >= 0 && x0 >= 0 && z0 + ez < id && y0 + ey < ih && x0 + ex < iw
                                    let base = (((b * id + z0) * ih + y0) * iw + x0) * c + channelOffset
                                    for t in 0..<tapCount {
                                        let inside =
                                            interior
                                            || (z0 + dz[t] >= 0 && z0 + dz[t] < id && y0 + dy[t] >= 0
                                                && y0 + dy[t] < ih && x0 + dx[t] >= 0 && x0 + dx[t] < iw)
                                        slot[t * mr] = inside ? x + (base + off[t]) : UnsafePointer(zeros)
                                    }
                                }
                                var t0 = 0
                                while t0 < tapCount {
                                    let tb = min(tapBlock, tapCount - t0)
                                    let accumulate = t0 > 0
                                    let last = t0 + tb == tapCount
                                    for j in 0..<panelCount {
                                        let bp = panels + (j * k + t0 * cg) * nr
                                        let cols = min(nr, n - j * nr)
                                        let initial = bias + j * nr
                                        var r0 = 0
                                        while r0 < mc {
                                            let rows = min(mr, mc - r0)
                                            let ip = UnsafePointer(ind + ((r0 / mr) * tapCount + t0) * mr)
                                            let cp = out + (m0 + r0) * ldc + j * nr
                                            if rows == mr && cols == nr {
                                                indirectMicroKernel(
                                                    tb, cg, ip, bp, cp, ldc, accumulate: accumulate, initial: initial)
                                                if last && applyAct {
                                                    for r in 0..<mr { act.applyPointwise(cp + r * ldc, count: nr) }
                                                }
                                            } else {
                                                if accumulate {
                                                    for r in 0..<rows {
                                                        for q in 0..<cols { tile[r * nr + q] = cp[r * ldc + q] }
                                                    }
                                                }
                                                indirectMicroKernel(
                                                    tb, cg, ip, bp, tile, nr, accumulate: accumulate, initial: initial)
                                                for r in 0..<rows {
                                                    let dst = cp + r * ldc
                                                    for q in 0..<cols { dst[q] = tile[r * nr + q] }
                                                    if last && applyAct { act.applyPointwise(dst, count: cols) }
                                                }
                                            }
                                            r0 += mr
                                        }
                                    }
                                    t0 += tb
                                }
                                m0 += mc
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Gathers im2col rows into the GEMM's MR-interleaved A panels (see `GEMMPackA`). Used instead of the indirect
/// GEMM when a tap has fewer than `indirectMinChannels` channels (a first layer on a one-channel CT volume):
/// the micro-kernel then runs one long loop over a packed panel instead of a pointer reload per tap.
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

    @_optimize(speed)
    func pack(_ dst: UnsafeMutablePointer<Float>, group: Int, m0: Int, mc: Int, k0: Int, kc: Int) {
        let g = geometry
        let mr = gemmMR
        let cg = channelsPerGroup
        let c = channels
        let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
        let (od, oh, ow) = (g.output.d, g.output.h, g.output.w)
        // Extent of the dilated window minus one, for the interior test.
        let ez = dz[tapCount - 1], ey = dy[tapCount - 1], ex = dx[tapCount - 1]
        // Per row of an MR panel: the window origin, the float offset of its first channel, and 1 for real rows.
        let rowInfo = UnsafeMutablePointer<Int>.allocate(capacity: 5 * mr)
        defer { rowInfo.deallocate() }
        let z0 = rowInfo, y0 = rowInfo + mr, x0 = rowInfo + 2 * mr, base = rowInfo + 3 * mr, valid = rowInfo + 4 * mr
        var p0 = 0
        while p0 < mc {
            var allInterior = true
            for r in 0..<mr {
                guard p0 + r < mc else {
                    allInterior = false
                    valid[r] = 0
                    base[r] = 0
                    continue
                }
                var p = m0 + p0 + r
                let wo = p % ow
                p /= ow
                let ho = p % oh
                p /= oh
                let dO = p % od
                let b = p / od
                let z = dO * g.stride.d - g.padBefore.d
                let y = ho * g.stride.h - g.padBefore.h
                let xx = wo * g.stride.w - g.padBefore.w
                z0[r] = z
                y0[r] = y
                x0[r] = xx
                valid[r] = 1
                base[r] = (((b * id + z) * ih + y) * iw + xx) * c + group * cg
                if !(z >= 0 && y >= 0 && xx >= 0 && z + ez < id && y + ey < ih && xx + ex < iw) { allInterior = false }
            }
            let panel = dst + p0 * kc
            var tap = k0 / cg
            var ci = k0 - tap * cg
            if allInterior {
                // The common case, kept in registers: six row origins, one offset per column.
                let b0 = base[0], b1 = base[1], b2 = base[2], b3 = base[3], b4 = base[4], b5 = base[5]
                var d = panel
                for _ in 0..<kc {
                    let o = offset[tap] + ci
                    d[0] = x[b0 + o]
                    d[1] = x[b1 + o]
                    d[2] = x[b2 + o]
                    d[3] = x[b3 + o]
                    d[4] = x[b4 + o]
                    d[5] = x[b5 + o]
                    d += mr
                    ci += 1
                    if ci == cg {
                        ci = 0
                        tap += 1
                    }
                }
                p0 += mr
                continue
            }
            for kk in 0..<kc {
                let o = offset[tap] + ci
                let d = panel + kk * mr
                let tz = dz[tap], ty = dy[tap], tx = dx[tap]
                for r in 0..<mr {
                    let z = z0[r] + tz, y = y0[r] + ty, xx = x0[r] + tx
                    let inside = valid[r] != 0 && z >= 0 && z < id && y >= 0 && y < ih && xx >= 0 && xx < iw
                    d[r] = inside ? x[base[r] + o] : 0
                }
                ci += 1
                if ci == cg {
                    ci = 0
                    tap += 1
                }
            }
            p0 += mr
        }
    }
}
