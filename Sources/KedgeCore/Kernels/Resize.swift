// Upsampling kernels: nearest (Keras's `repeat` along each axis) for UpSampling1D/2D/3D, and bilinear and
// bicubic image resizes exactly as TensorFlow's `tf.image.resize` runs them for UpSampling2D (Keras 3 through
// `ops.image.resize`, tf-keras through `backend.resize_images`): half-pixel centers, no antialiasing.

/// out[b, z, y, x, :] = x[b, z / factor.d, y / factor.h, x / factor.w, :].
@_optimize(speed)
func repeatUpsample(
    _ x: UnsafePointer<Float>, batch: Int, input: Dims3, channels c: Int, factor: Dims3, out: UnsafeMutablePointer<Float>
) {
    var op = out
    for b in 0..<batch {
        for z in 0..<(input.d * factor.d) {
            for y in 0..<(input.h * factor.h) {
                let row = x + ((b * input.d + z / factor.d) * input.h + y / factor.h) * input.w * c
                for xi in 0..<input.w {
                    let src = row + xi * c
                    for _ in 0..<factor.w {
                        op.update(from: src, count: c)
                        op += c
                    }
                }
            }
        }
    }
}

/// TensorFlow's half-pixel source coordinate: (out + 0.5) * in/out - 0.5, in Float as TF computes it.
@inline(__always) func halfPixelSource(_ o: Int, scale: Float) -> Float {
    (Float(o) + 0.5) * scale - 0.5
}

/// `tf.image.resize(..., "bilinear")` of (batch, inH, inW, c) to (batch, outH, outW, c).
@_optimize(speed)
func resizeBilinear(
    _ x: UnsafePointer<Float>, batch: Int, inH: Int, inW: Int, channels c: Int, outH: Int, outW: Int,
    out: UnsafeMutablePointer<Float>
) {
    // Per output coordinate: lower and upper source index and the weight of the upper one (TF's
    // compute_interpolation_weights with HalfPixelScaler).
    func weights(_ n: Int, _ inSize: Int) -> (lo: [Int], hi: [Int], frac: [Float]) {
        let scale = Float(inSize) / Float(n)
        var lo = [Int](), hi = [Int](), frac = [Float]()
        for o in 0..<n {
            let s = halfPixelSource(o, scale: scale)
            let f = floorf(s)
            lo.append(max(Int(f), 0))
            hi.append(min(Int(ceilf(s)), inSize - 1))
            frac.append(s - f)
        }
        return (lo, hi, frac)
    }
    let ys = weights(outH, inH)
    let xs = weights(outW, inW)
    var op = out
    for b in 0..<batch {
        let img = x + b * inH * inW * c
        for y in 0..<outH {
            let top = img + ys.lo[y] * inW * c
            let bottom = img + ys.hi[y] * inW * c
            let yl = ys.frac[y]
            for xo in 0..<outW {
                let l = xs.lo[xo] * c, r = xs.hi[xo] * c
                let xl = xs.frac[xo]
                for ch in 0..<c {
                    let tl = top[l + ch], tr = top[r + ch], bl = bottom[l + ch], br = bottom[r + ch]
                    let t = tl + (tr - tl) * xl
                    let bo = bl + (br - bl) * xl
                    op[ch] = t + (bo - t) * yl
                }
                op += c
            }
        }
    }
}

/// `tf.image.resize(..., "bicubic")` without antialiasing: TF's resize_bicubic with half-pixel centers, Keys'
/// cubic with a = -0.5 read from TF's 1024-entry table, taps outside the image weighted 0 and the rest
/// renormalised.
@_optimize(speed)
func resizeBicubic(
    _ x: UnsafePointer<Float>, batch: Int, inH: Int, inW: Int, channels c: Int, outH: Int, outW: Int,
    out: UnsafeMutablePointer<Float>
) {
    let tableSize = 1024
    let a: Float = -0.5
    var table = [Float](repeating: 0, count: (tableSize + 1) * 2)
    for i in 0...tableSize {
        var t = Float(i) / Float(tableSize)
        table[i * 2] = ((a + 2) * t - (a + 3)) * t * t + 1
        t += 1
        table[i * 2 + 1] = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    }
    func weights(_ n: Int, _ inSize: Int) -> (index: [Int], weight: [Float]) {
        let scale = Float(inSize) / Float(n)
        var index = [Int](), weight = [Float]()
        for o in 0..<n {
            let s = halfPixelSource(o, scale: scale)
            let base = Int(floorf(s))
            let delta = s - floorf(s)
            let offset = Int(roundf(delta * Float(tableSize)))  // lrintf; ties never arise for these scales
            let raw: [Float] = [
                table[offset * 2 + 1], table[offset * 2], table[(tableSize - offset) * 2],
                table[(tableSize - offset) * 2 + 1],
            ]
            var w = [Float](repeating: 0, count: 4)
            var sum: Float = 0
            for k in 0..<4 {
                let i = base - 1 + k
                let bounded = min(max(i, 0), inSize - 1)
                index.append(bounded)
                w[k] = bounded == i ? raw[k] : 0
                sum += w[k]
            }
            if abs(sum) >= 1000 * Float.leastNormalMagnitude { for k in 0..<4 { w[k] *= 1 / sum } }
            weight += w
        }
        return (index, weight)
    }
    let ys = weights(outH, inH)
    let xs = weights(outW, inW)
    var op = out
    for b in 0..<batch {
        let img = x + b * inH * inW * c
        for y in 0..<outH {
            for xo in 0..<outW {
                for ch in 0..<c {
                    var rows: (Float, Float, Float, Float) = (0, 0, 0, 0)
                    for k in 0..<4 {
                        let row = img + ys.index[y * 4 + k] * inW * c + ch
                        let v =
                            xs.weight[xo * 4] * row[xs.index[xo * 4] * c]
                            + xs.weight[xo * 4 + 1] * row[xs.index[xo * 4 + 1] * c]
                            + xs.weight[xo * 4 + 2] * row[xs.index[xo * 4 + 2] * c]
                            + xs.weight[xo * 4 + 3] * row[xs.index[xo * 4 + 3] * c]
                        switch k {
                        case 0: rows.0 = v
                        case 1: rows.1 = v
                        case 2: rows.2 = v
                        default: rows.3 = v
                        }
                    }
                    op[ch] =
                        ys.weight[y * 4] * rows.0 + ys.weight[y * 4 + 1] * rows.1 + ys.weight[y * 4 + 2] * rows.2
                        + ys.weight[y * 4 + 3] * rows.3
                }
                op += c
            }
        }
    }
}
