// Depthwise convolution (DepthwiseConv1D/2D, the first half of SeparableConv): each channel is convolved with
// its own filter, so there is nothing to share between channels and no GEMM: a direct loop over output pixels
// and taps, SIMD across channels (channels-last keeps them contiguous).

/// `out[p, c] = activation(bias[c] + sum_tap x[in(p, tap), c] * kernel[tap, c])`, both with `channels` channels.
/// A depth multiplier is handled by the caller (`expandChannels`): Keras's (k..., in, multiplier) kernel,
/// flattened per tap, is already in the order of the expanded channels `c * multiplier + m`.
@_optimize(speed)
func depthwiseConvolve(
    _ x: UnsafePointer<Float>, channels: Int, geometry g: ConvGeometry, kernel: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, activation: Activation, out: UnsafeMutablePointer<Float>
) {
    let c = channels
    let vec = GEMMVector.scalarCount
    let cv = c / vec * vec
    let applyAct = activation.isPointwise && !activation.isLinear
    let taps = TapTable(g, channels: c)
    let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
    var op = out
    for b in 0..<g.batch {
        for zo in 0..<g.output.d {
            let z0 = zo * g.stride.d - g.padBefore.d
            for yo in 0..<g.output.h {
                let y0 = yo * g.stride.h - g.padBefore.h
                for xo in 0..<g.output.w {
                    let x0 = xo * g.stride.w - g.padBefore.w
                    if let bias {
                        for i in 0..<c { op[i] = bias[i] }
                    } else {
                        for i in 0..<c { op[i] = 0 }
                    }
                    for t in 0..<taps.offset.count {
                        let z = z0 + taps.dz[t], y = y0 + taps.dy[t], xx = x0 + taps.dx[t]
                        if z < 0 || z >= id || y < 0 || y >= ih || xx < 0 || xx >= iw { continue }
                        let xp = x + (((b * id + z) * ih + y) * iw + xx) * c
                        let wp = kernel + t * c
                        var i = 0
                        while i < cv {
                            var acc = loadVector(op + i)
                            multiplyAdd(&acc, loadVector(xp + i), loadVector(wp + i))
                            storeVector(op + i, acc)
                            i += vec
                        }
                        while i < c {
                            op[i] += xp[i] * wp[i]
                            i += 1
                        }
                    }
                    if applyAct { activation.applyPointwise(op, count: c) }
                    op += c
                }
            }
        }
    }
}

/// Repeats each channel `multiplier` times in place order (c0 c0 c1 c1 ... for 2): the input layout a depthwise
/// kernel with a depth multiplier reads.
@_optimize(speed)
func expandChannels(_ x: UnsafePointer<Float>, pixels: Int, channels: Int, multiplier: Int, out: UnsafeMutablePointer<Float>)
{
    var o = out
    for p in 0..<pixels {
        let src = x + p * channels
        for ch in 0..<channels {
            let v = src[ch]
            for _ in 0..<multiplier {
                o.pointee = v
                o += 1
            }
        }
    }
}
