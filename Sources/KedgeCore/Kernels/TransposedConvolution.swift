// Transposed convolution (Conv1D/2D/3DTranspose) as TensorFlow's `conv_transpose` computes it: every input pixel
// scatters `x · kernel[tap]` to `out[in * stride - padBefore + tap * dilation]`. Lowered to the GEMM
// (input pixels x in-channels) · (in-channels x taps*out-channels), then a col2im scatter-add, in row chunks so
// the intermediate stays small.

/// Keras's (k..., out, in) transposed-convolution kernel packed as the (in, taps*out) GEMM operand.
struct TransposedConvWeights {
    let window: Dims3
    let inChannels: Int
    let outChannels: Int
    var packed: PackedWeights

    init(kernel: [Float], window: Dims3, inChannels: Int, outChannels: Int) {
        self.window = window
        self.inChannels = inChannels
        self.outChannels = outChannels
        let co = outChannels
        let ci = inChannels
        packed = PackedWeights(k: ci, n: window.product * co, bias: nil) { r, col in
            // col = tap * out + o; kernel index (tap, o, r)
            kernel[col * ci + r]
        }
    }
}

/// `out` (batch, output..., outChannels) = activation(conv_transpose(x) + bias); `x` is (batch, input..., in).
@_optimize(speed)
func convolveTransposed(
    _ x: UnsafePointer<Float>, geometry g: ConvGeometry, weights: TransposedConvWeights, bias: UnsafePointer<Float>?,
    activation: Activation, out: UnsafeMutablePointer<Float>
) {
    let co = weights.outChannels
    let ci = weights.inChannels
    let outPixels = g.outputPixels
    for p in 0..<outPixels {
        let o = out + p * co
        if let bias { for j in 0..<co { o[j] = bias[j] } } else { for j in 0..<co { o[j] = 0 } }
    }
    let taps = TapTable(g, channels: co)
    let tapCount = g.taps
    let width = tapCount * co
    let inPixels = g.batch * g.input.product
    let chunk = max(1, min(inPixels, (1 << 18) / max(width, 1)))
    let cols = UnsafeMutablePointer<Float>.allocate(capacity: chunk * width)
    defer { cols.deallocate() }
    let (od, oh, ow) = (g.output.d, g.output.h, g.output.w)
    let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
    let vec = GEMMVector.scalarCount
    let cv = co / vec * vec
    var r0 = 0
    while r0 < inPixels {
        let rows = min(chunk, inPixels - r0)
        gemm(m: rows, a: x + r0 * ci, lda: ci, weights: weights.packed, c: cols, ldc: width, activation: .linear)
        for r in 0..<rows {
            var p = r0 + r
            let xi = p % iw
            p /= iw
            let yi = p % ih
            p /= ih
            let zi = p % id
            let b = p / id
            let z0 = zi * g.stride.d - g.padBefore.d
            let y0 = yi * g.stride.h - g.padBefore.h
            let x0 = xi * g.stride.w - g.padBefore.w
            let src = cols + r * width
            for t in 0..<tapCount {
                let z = z0 + taps.dz[t], y = y0 + taps.dy[t], xx = x0 + taps.dx[t]
                if z < 0 || z >= od || y < 0 || y >= oh || xx < 0 || xx >= ow { continue }
                let o = out + (((b * od + z) * oh + y) * ow + xx) * co
                let s = src + t * co
                var j = 0
                while j < cv {
                    storeVector(o + j, loadVector(o + j) + loadVector(s + j))
                    j += vec
                }
                while j < co {
                    o[j] += s[j]
                    j += 1
                }
            }
        }
        r0 += rows
    }
    if activation.isPointwise && !activation.isLinear { activation.applyPointwise(out, count: outPixels * co) }
}
