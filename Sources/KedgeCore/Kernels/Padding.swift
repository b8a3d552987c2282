// Zero padding and cropping (ZeroPadding1D/2D/3D, Cropping1D/2D/3D) as one region copy on channels-last data.

/// out[b, z, y, x, :] = x[b, z + origin.d, y + origin.h, x + origin.w, :] where that lies inside the input,
/// else 0. A positive origin crops, a negative one pads.
@_optimize(speed)
func copyRegion(
    _ x: UnsafePointer<Float>, batch: Int, input: Dims3, channels c: Int, output: Dims3, origin: Dims3,
    out: UnsafeMutablePointer<Float>
) {
    // The output's x range that reads the input.
    let xs = min(max(-origin.w, 0), output.w)
    let xe = max(min(input.w - origin.w, output.w), xs)
    var op = out
    for b in 0..<batch {
        for z in 0..<output.d {
            let zi = z + origin.d
            for y in 0..<output.h {
                let yi = y + origin.h
                let rowLen = output.w * c
                if zi < 0 || zi >= input.d || yi < 0 || yi >= input.h {
                    op.update(repeating: 0, count: rowLen)
                } else {
                    let src = x + (((b * input.d + zi) * input.h + yi) * input.w + xs + origin.w) * c
                    op.update(repeating: 0, count: xs * c)
                    (op + xs * c).update(from: src, count: (xe - xs) * c)
                    (op + xe * c).update(repeating: 0, count: (output.w - xe) * c)
                }
                op += rowLen
            }
        }
    }
}
