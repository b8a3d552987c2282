// Max and average pooling over channels-last windows, with TensorFlow's padding: padded positions never win a
// max and are not counted in an average.

enum PoolKind {
    case max
    case average
}

/// `out` (batch, output..., channels) pooled from `x` (batch, input..., channels).
@_optimize(speed)
func pool(
    _ x: UnsafePointer<Float>, channels: Int, geometry g: ConvGeometry, kind: PoolKind, out: UnsafeMutablePointer<Float>
) {
    let c = channels
    let vec = GEMMVector.scalarCount
    let cv = c / vec * vec
    let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
    var op = out
    for b in 0..<g.batch {
        for zo in 0..<g.output.d {
            let z0 = zo * g.stride.d - g.padBefore.d
            let zs = max(z0, 0), ze = min(z0 + g.window.d, id)
            for yo in 0..<g.output.h {
                let y0 = yo * g.stride.h - g.padBefore.h
                let ys = max(y0, 0), ye = min(y0 + g.window.h, ih)
                for xo in 0..<g.output.w {
                    let x0 = xo * g.stride.w - g.padBefore.w
                    let xs = max(x0, 0), xe = min(x0 + g.window.w, iw)
                    let count = max(ze - zs, 0) * max(ye - ys, 0) * max(xe - xs, 0)
                    let start: Float = kind == .max ? -Float.infinity : 0
                    for i in 0..<c { op[i] = start }
                    if count > 0 {
                        for z in zs..<ze {
                            for y in ys..<ye {
                                for xx in xs..<xe {
                                    let xp = x + (((b * id + z) * ih + y) * iw + xx) * c
                                    var i = 0
                                    if kind == .max {
                                        while i < cv {
                                            storeVector(op + i, pointwiseMax(loadVector(op + i), loadVector(xp + i)))
                                            i += vec
                                        }
                                        while i < c {
                                            op[i] = Swift.max(op[i], xp[i])
                                            i += 1
                                        }
                                    } else {
                                        while i < cv {
                                            storeVector(op + i, loadVector(op + i) + loadVector(xp + i))
                                            i += vec
                                        }
                                        while i < c {
                                            op[i] += xp[i]
                                            i += 1
                                        }
                                    }
                                }
                            }
                        }
                        if kind == .average {
                            let n = Float(count)
                            for i in 0..<c { op[i] /= n }
                        }
                    }
                    op += c
                }
            }
        }
    }
}

/// Max or mean over all spatial positions: (batch, pixels, channels) -> (batch, channels).
@_optimize(speed)
func globalPool(
    _ x: UnsafePointer<Float>, batch: Int, pixels: Int, channels c: Int, kind: PoolKind, out: UnsafeMutablePointer<Float>
) {
    for b in 0..<batch {
        let o = out + b * c
        let start: Float = kind == .max ? -Float.infinity : 0
        for i in 0..<c { o[i] = start }
        for p in 0..<pixels {
            let xp = x + (b * pixels + p) * c
            if kind == .max {
                for i in 0..<c { o[i] = Swift.max(o[i], xp[i]) }
            } else {
                for i in 0..<c { o[i] += xp[i] }
            }
        }
        if kind == .average && pixels > 0 {
            let n = Float(pixels)
            for i in 0..<c { o[i] /= n }
        }
    }
}
