// The SGEMM register block: MR rows of A times an NR-column panel of B, accumulated in SIMD registers.
//
// Two shapes, chosen at compile time because Swift cannot dispatch on CPU features at run time:
// - default (SSE2, wasm simd128, NEON): 6 x 8, twelve 128-bit accumulators, `acc += a * b` (`addingProduct`
//   becomes an `fmaf` call per lane where the target has no FMA instruction, e.g. wasm).
// - `-D KEDGE_FMA` together with `-Xcc -mavx2 -Xcc -mfma`: 6 x 16 with fused multiply-adds on 256-bit registers
//   (the BLIS Haswell shape).
// On arm64 the 6 x 8 shape uses fused multiply-adds, which every arm64 CPU has.
// Fewer than MR rows (the bottom edge, or a whole product with m < 6 such as Dense or a recurrent step on a
// small batch) run the one-row kernel once per row instead of wasting a full register block.

let gemmMR = 6
#if KEDGE_FMA
let gemmNR = 16
#else
let gemmNR = 8
#endif

typealias GEMMVector = SIMD8<Float>

@inline(__always) func loadVector(_ p: UnsafePointer<Float>) -> GEMMVector {
    UnsafeRawPointer(p).loadUnaligned(as: GEMMVector.self)
}

@inline(__always) func loadVector(_ p: UnsafeMutablePointer<Float>) -> GEMMVector {
    UnsafeRawPointer(p).loadUnaligned(as: GEMMVector.self)
}

@inline(__always) func storeVector(_ p: UnsafeMutablePointer<Float>, _ v: GEMMVector) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: GEMMVector.self)
}

@inline(__always) func multiplyAdd(_ acc: inout GEMMVector, _ a: GEMMVector, _ b: GEMMVector) {
    #if KEDGE_FMA || arch(arm64)
    // Every arm64 CPU has fused multiply-add (fmla), so `addingProduct` is one instruction there.
    acc = acc.addingProduct(a, b)
    #elseif KEDGE_RELAXED_SIMD
    acc = relaxedMultiplyAdd(acc, a, b)
    #else
    acc += a * b
    #endif
}

#if KEDGE_FMA
/// `c[0..<6][0..<16] = start + a · b` over `kc` steps, where `start` is `c` itself (`accumulate`) or the
/// `initial` row broadcast down the rows (the bias). `a` is an MR-interleaved A panel, `b` an NR-wide B panel.
@inline(never)
@_optimize(speed)
func gemmMicroKernel(
    _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    accumulate: Bool, initial: UnsafePointer<Float>
) {
    var c00: GEMMVector, c01: GEMMVector, c10: GEMMVector, c11: GEMMVector, c20: GEMMVector, c21: GEMMVector
    var c30: GEMMVector, c31: GEMMVector, c40: GEMMVector, c41: GEMMVector, c50: GEMMVector, c51: GEMMVector
    if accumulate {
        c00 = loadVector(c); c01 = loadVector(c + 8)
        c10 = loadVector(c + ldc); c11 = loadVector(c + ldc + 8)
        c20 = loadVector(c + 2 * ldc); c21 = loadVector(c + 2 * ldc + 8)
        c30 = loadVector(c + 3 * ldc); c31 = loadVector(c + 3 * ldc + 8)
        c40 = loadVector(c + 4 * ldc); c41 = loadVector(c + 4 * ldc + 8)
        c50 = loadVector(c + 5 * ldc); c51 = loadVector(c + 5 * ldc + 8)
    } else {
        let i0 = loadVector(initial), i1 = loadVector(initial + 8)
        c00 = i0; c10 = i0; c20 = i0; c30 = i0; c40 = i0; c50 = i0
        c01 = i1; c11 = i1; c21 = i1; c31 = i1; c41 = i1; c51 = i1
    }
    var ap = a
    var bp = b
    for _ in 0..<kc {
        let b0 = loadVector(bp), b1 = loadVector(bp + 8)
        var x = GEMMVector(repeating: ap[0])
        multiplyAdd(&c00, x, b0); multiplyAdd(&c01, x, b1)
        x = GEMMVector(repeating: ap[1])
        multiplyAdd(&c10, x, b0); multiplyAdd(&c11, x, b1)
        x = GEMMVector(repeating: ap[2])
        multiplyAdd(&c20, x, b0); multiplyAdd(&c21, x, b1)
        x = GEMMVector(repeating: ap[3])
        multiplyAdd(&c30, x, b0); multiplyAdd(&c31, x, b1)
        x = GEMMVector(repeating: ap[4])
        multiplyAdd(&c40, x, b0); multiplyAdd(&c41, x, b1)
        x = GEMMVector(repeating: ap[5])
        multiplyAdd(&c50, x, b0); multiplyAdd(&c51, x, b1)
        ap += 6
        bp += 16
    }
    storeVector(c, c00); storeVector(c + 8, c01)
    storeVector(c + ldc, c10); storeVector(c + ldc + 8, c11)
    storeVector(c + 2 * ldc, c20); storeVector(c + 2 * ldc + 8, c21)
    storeVector(c + 3 * ldc, c30); storeVector(c + 3 * ldc + 8, c31)
    storeVector(c + 4 * ldc, c40); storeVector(c + 4 * ldc + 8, c41)
    storeVector(c + 5 * ldc, c50); storeVector(c + 5 * ldc + 8, c51)
}
#else
/// `c[0..<6][0..<8] = start + a · b` over `kc` steps, where `start` is `c` itself (`accumulate`) or the
/// `initial` row broadcast down the rows (the bias). `a` is an MR-interleaved A panel, `b` an NR-wide B panel.
@inline(never)
@_optimize(speed)
func gemmMicroKernel(
    _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
    accumulate: Bool, initial: UnsafePointer<Float>
) {
    var c0: GEMMVector, c1: GEMMVector, c2: GEMMVector, c3: GEMMVector, c4: GEMMVector, c5: GEMMVector
    if accumulate {
        c0 = loadVector(c); c1 = loadVector(c + ldc); c2 = loadVector(c + 2 * ldc)
        c3 = loadVector(c + 3 * ldc); c4 = loadVector(c + 4 * ldc); c5 = loadVector(c + 5 * ldc)
    } else {
        let i0 = loadVector(initial)
        c0 = i0; c1 = i0; c2 = i0; c3 = i0; c4 = i0; c5 = i0
    }
    var ap = a
    var bp = b
    for _ in 0..<kc {
        let b0 = loadVector(bp)
        multiplyAdd(&c0, GEMMVector(repeating: ap[0]), b0)
        multiplyAdd(&c1, GEMMVector(repeating: ap[1]), b0)
        multiplyAdd(&c2, GEMMVector(repeating: ap[2]), b0)
        multiplyAdd(&c3, GEMMVector(repeating: ap[3]), b0)
        multiplyAdd(&c4, GEMMVector(repeating: ap[4]), b0)
        multiplyAdd(&c5, GEMMVector(repeating: ap[5]), b0)
        ap += 6
        bp += 8
    }
    storeVector(c, c0); storeVector(c + ldc, c1); storeVector(c + 2 * ldc, c2)
    storeVector(c + 3 * ldc, c3); storeVector(c + 4 * ldc, c4); storeVector(c + 5 * ldc, c5)
}
#endif

// The indirect variant (XNNPACK's IGEMM) used by convolutions: instead of a packed A panel it reads, for each
// window tap, MR row pointers into the input (or to a zero buffer for padding), each to `cg` contiguous channels.
// This skips building im2col rows altogether; B is the same packed panel (rows in tap-major, channel-minor order).

#if KEDGE_FMA
@inline(never)
@_optimize(speed)
func indirectMicroKernel(
    _ taps: Int, _ cg: Int, _ ind: UnsafePointer<UnsafePointer<Float>>, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool, initial: UnsafePointer<Float>
) {
    var c00: GEMMVector, c01: GEMMVector, c10: GEMMVector, c11: GEMMVector, c20: GEMMVector, c21: GEMMVector
    var c30: GEMMVector, c31: GEMMVector, c40: GEMMVector, c41: GEMMVector, c50: GEMMVector, c51: GEMMVector
    if accumulate {
        c00 = loadVector(c); c01 = loadVector(c + 8)
        c10 = loadVector(c + ldc); c11 = loadVector(c + ldc + 8)
        c20 = loadVector(c + 2 * ldc); c21 = loadVector(c + 2 * ldc + 8)
        c30 = loadVector(c + 3 * ldc); c31 = loadVector(c + 3 * ldc + 8)
        c40 = loadVector(c + 4 * ldc); c41 = loadVector(c + 4 * ldc + 8)
        c50 = loadVector(c + 5 * ldc); c51 = loadVector(c + 5 * ldc + 8)
    } else {
        let i0 = loadVector(initial), i1 = loadVector(initial + 8)
        c00 = i0; c10 = i0; c20 = i0; c30 = i0; c40 = i0; c50 = i0
        c01 = i1; c11 = i1; c21 = i1; c31 = i1; c41 = i1; c51 = i1
    }
    var bp = b
    var ip = ind
    for _ in 0..<taps {
        let a0 = ip[0], a1 = ip[1], a2 = ip[2], a3 = ip[3], a4 = ip[4], a5 = ip[5]
        ip += 6
        for kk in 0..<cg {
            let b0 = loadVector(bp), b1 = loadVector(bp + 8)
            var x = GEMMVector(repeating: a0[kk])
            multiplyAdd(&c00, x, b0); multiplyAdd(&c01, x, b1)
            x = GEMMVector(repeating: a1[kk])
            multiplyAdd(&c10, x, b0); multiplyAdd(&c11, x, b1)
            x = GEMMVector(repeating: a2[kk])
            multiplyAdd(&c20, x, b0); multiplyAdd(&c21, x, b1)
            x = GEMMVector(repeating: a3[kk])
            multiplyAdd(&c30, x, b0); multiplyAdd(&c31, x, b1)
            x = GEMMVector(repeating: a4[kk])
            multiplyAdd(&c40, x, b0); multiplyAdd(&c41, x, b1)
            x = GEMMVector(repeating: a5[kk])
            multiplyAdd(&c50, x, b0); multiplyAdd(&c51, x, b1)
            bp += 16
        }
    }
    storeVector(c, c00); storeVector(c + 8, c01)
    storeVector(c + ldc, c10); storeVector(c + ldc + 8, c11)
    storeVector(c + 2 * ldc, c20); storeVector(c + 2 * ldc + 8, c21)
    storeVector(c + 3 * ldc, c30); storeVector(c + 3 * ldc + 8, c31)
    storeVector(c + 4 * ldc, c40); storeVector(c + 4 * ldc + 8, c41)
    storeVector(c + 5 * ldc, c50); storeVector(c + 5 * ldc + 8, c51)
}
#else
@inline(never)
@_optimize(speed)
func indirectMicroKernel(
    _ taps: Int, _ cg: Int, _ ind: UnsafePointer<UnsafePointer<Float>>, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool, initial: UnsafePointer<Float>
) {
    var c0: GEMMVector, c1: GEMMVector, c2: GEMMVector, c3: GEMMVector, c4: GEMMVector, c5: GEMMVector
    if accumulate {
        c0 = loadVector(c); c1 = loadVector(c + ldc); c2 = loadVector(c + 2 * ldc)
        c3 = loadVector(c + 3 * ldc); c4 = loadVector(c + 4 * ldc); c5 = loadVector(c + 5 * ldc)
    } else {
        let i0 = loadVector(initial)
        c0 = i0; c1 = i0; c2 = i0; c3 = i0; c4 = i0; c5 = i0
    }
    var bp = b
    var ip = ind
    for _ in 0..<taps {
        let a0 = ip[0], a1 = ip[1], a2 = ip[2], a3 = ip[3], a4 = ip[4], a5 = ip[5]
        ip += 6
        for kk in 0..<cg {
            let b0 = loadVector(bp)
            multiplyAdd(&c0, GEMMVector(repeating: a0[kk]), b0)
            multiplyAdd(&c1, GEMMVector(repeating: a1[kk]), b0)
            multiplyAdd(&c2, GEMMVector(repeating: a2[kk]), b0)
            multiplyAdd(&c3, GEMMVector(repeating: a3[kk]), b0)
            multiplyAdd(&c4, GEMMVector(repeating: a4[kk]), b0)
            multiplyAdd(&c5, GEMMVector(repeating: a5[kk]), b0)
            bp += 8
        }
    }
    storeVector(c, c0); storeVector(c + ldc, c1); storeVector(c + 2 * ldc, c2)
    storeVector(c + 3 * ldc, c3); storeVector(c + 4 * ldc, c4); storeVector(c + 5 * ldc, c5)
}
#endif

/// One row of the register block: `c[0..<NR] = start + sum_k a[k * aStride] * b[k]`, for row tails.
@_optimize(speed)
@inline(never)
func gemmRowKernel(
    _ kc: Int, _ a: UnsafePointer<Float>, aStride: Int, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
    accumulate: Bool, initial: UnsafePointer<Float>
) {
    #if KEDGE_FMA
    var c0 = accumulate ? loadVector(c) : loadVector(initial)
    var c1 = accumulate ? loadVector(c + 8) : loadVector(initial + 8)
    var ap = a
    var bp = b
    for _ in 0..<kc {
        let x = GEMMVector(repeating: ap[0])
        multiplyAdd(&c0, x, loadVector(bp))
        multiplyAdd(&c1, x, loadVector(bp + 8))
        ap += aStride
        bp += 16
    }
    storeVector(c, c0)
    storeVector(c + 8, c1)
    #else
    // Two accumulators over alternate k steps hide the add latency.
    var c0 = accumulate ? loadVector(c) : loadVector(initial)
    var c1 = GEMMVector(repeating: 0)
    var ap = a
    var bp = b
    var k = 0
    while k + 1 < kc {
        multiplyAdd(&c0, GEMMVector(repeating: ap[0]), loadVector(bp))
        multiplyAdd(&c1, GEMMVector(repeating: ap[aStride]), loadVector(bp + 8))
        ap += 2 * aStride
        bp += 16
        k += 2
    }
    if k < kc { multiplyAdd(&c0, GEMMVector(repeating: ap[0]), loadVector(bp)) }
    storeVector(c, c0 + c1)
    #endif
}
