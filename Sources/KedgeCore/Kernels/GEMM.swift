// C[m x n] = A[m x k] · B[k x n] + bias, then a pointwise activation: the workhorse of Dense, convolutions and
// transposed convolutions. B (the weights) is packed once at load; A is packed block by block by a caller-given
// closure, so a convolution can gather its im2col rows straight into the packed buffer without ever
// materialising the whole im2col matrix (which would not fit in memory for 3D volumes).
//
// Blocking (BLIS-style): rows in blocks of `gemmMC`, depth in blocks of `gemmKC`; inside, each NR-wide B panel
// (kc x NR, L1-resident) meets every MR-row A panel of the block (mc x kc, L2-resident).

let gemmKC = 256
let gemmMC = 120

/// The B operand of a GEMM (the weights), packed into column panels of `gemmNR`: panel j holds columns
/// j*NR ..< (j+1)*NR as k rows of NR floats, zero-padded past `n`. The bias travels with it, padded likewise.
public struct PackedWeights {
    public let k: Int
    public let n: Int
    var panels: [Float]
    var bias: [Float]

    /// Packs B given element by element: `element(row, column)` for row < k, column < n.
    init(k: Int, n: Int, bias: [Float]?, element: (Int, Int) -> Float) {
        self.k = k
        self.n = n
        let panelCount = (n + gemmNR - 1) / gemmNR
        let nr = gemmNR
        panels = [Float](unsafeUninitializedCapacity: panelCount * k * nr) { buf, initialized in
            for j in 0..<panelCount {
                for r in 0..<k {
                    let row = (j * k + r) * nr
                    for c in 0..<nr {
                        let col = j * nr + c
                        buf[row + c] = col < n ? element(r, col) : 0
                    }
                }
            }
            initialized = panelCount * k * nr
        }
        var b = [Float](repeating: 0, count: panelCount * nr)
        if let bias { for i in 0..<n { b[i] = bias[i] } }
        self.bias = b
    }

    /// Packs a row-major k x n matrix.
    init(k: Int, n: Int, rowMajor b: [Float], bias: [Float]?) {
        self.init(k: k, n: n, bias: bias) { r, c in b[r * n + c] }
    }
}

/// Writes the MR-interleaved packing of A's rows `m0 ..< m0+mc`, columns `k0 ..< k0+kc` into `dst`:
/// panel p (rows m0 + p*MR ...) starts at `dst + p*MR*kc`, element (row r, depth kk) at `kk*MR + r`.
/// Rows past `mc` in the last panel must be zero.
typealias GEMMPackA = (_ dst: UnsafeMutablePointer<Float>, _ m0: Int, _ mc: Int, _ k0: Int, _ kc: Int) -> Void

/// `c[i*ldc + j] = act(sum_k A[i,k] B[k,j] + bias[j])` for i < m, j < weights.n.
/// Non-pointwise activations (softmax) are left to the caller.
@inline(__always)
@_optimize(speed)
func gemm(
    m: Int, weights: PackedWeights, c: UnsafeMutablePointer<Float>, ldc: Int, activation: Activation,
    packA: GEMMPackA
) {
    let k = weights.k
    let n = weights.n
    let mr = gemmMR
    let nr = gemmNR
    let act = activation
    let applyAct = act.isPointwise && !act.isLinear
    if m == 0 || n == 0 { return }
    weights.bias.withUnsafeBufferPointer { biasBuf in
        let bias = biasBuf.baseAddress!
        if k == 0 {
            for i in 0..<m {
                let row = c + i * ldc
                for j in 0..<n { row[j] = bias[j] }
                if applyAct { act.applyPointwise(row, count: n) }
            }
            return
        }
        weights.panels.withUnsafeBufferPointer { panelBuf in
            let panels = panelBuf.baseAddress!
            let panelCount = (n + nr - 1) / nr
            let aBuf = UnsafeMutablePointer<Float>.allocate(capacity: gemmMC * min(gemmKC, k) + mr * gemmKC)
            defer { aBuf.deallocate() }
            // A tile for the ragged right and bottom edges, written whole and then copied out.
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: mr * nr)
            defer { tile.deallocate() }
            var m0 = 0
            while m0 < m {
                let mc = min(gemmMC, m - m0)
                var k0 = 0
                while k0 < k {
                    let kc = min(gemmKC, k - k0)
                    let accumulate = k0 > 0
                    let last = k0 + kc == k
                    packA(aBuf, m0, mc, k0, kc)
                    for j in 0..<panelCount {
                        let bp = panels + (j * k + k0) * nr
                        let cols = min(nr, n - j * nr)
                        let initial = bias + j * nr
                        var r0 = 0
                        while r0 < mc {
                            let rows = min(mr, mc - r0)
                            let ap = aBuf + r0 * kc
                            let cp = c + (m0 + r0) * ldc + j * nr
                            if rows == mr && cols == nr {
                                gemmMicroKernel(kc, ap, bp, cp, ldc, accumulate: accumulate, initial: initial)
                                if last && applyAct {
                                    for r in 0..<mr { act.applyPointwise(cp + r * ldc, count: nr) }
                                }
                            } else {
                                if accumulate {
                                    for r in 0..<rows { for q in 0..<cols { tile[r * nr + q] = cp[r * ldc + q] } }
                                }
                                if rows < mr {
                                    for r in 0..<rows {
                                        gemmRowKernel(
                                            kc, ap + r, aStride: mr, bp, tile + r * nr, accumulate: accumulate,
                                            initial: initial)
                                    }
                                } else {
                                    gemmMicroKernel(kc, ap, bp, tile, nr, accumulate: accumulate, initial: initial)
                                }
                                for r in 0..<rows {
                                    let dst = cp + r * ldc
                                    for q in 0..<cols { dst[q] = tile[r * nr + q] }
                                    if last && applyAct { act.applyPointwise(dst, count: cols) }
                                }
                            }
                            r0 += mr
                        }
                    }
                    k0 += kc
                }
                m0 += mc
            }
        }
    }
}

/// `gemm` with A a row-major matrix with leading dimension `lda`. With few B panels, packing A would cost as much
/// as the product itself (it is not reused across panels), so the rows are read in place through the indirect
/// micro-kernel instead.
@_optimize(speed)
func gemm(
    m: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedWeights, c: UnsafeMutablePointer<Float>, ldc: Int,
    activation: Activation
) {
    if weights.n <= gemmUnpackedMaxColumns && weights.k > 0 {
        gemmUnpackedA(m: m, a: a, lda: lda, weights: weights, c: c, ldc: ldc, activation: activation)
        return
    }
    gemm(m: m, weights: weights, c: c, ldc: ldc, activation: activation) { dst, m0, mc, k0, kc in
        packRowMajorA(dst, a: a, lda: lda, m0: m0, mc: mc, k0: k0, kc: kc)
    }
}

let gemmUnpackedMaxColumns = 2 * gemmNR

/// The GEMM loop nest over A read in place: each MR-row step hands the indirect micro-kernel the rows' pointers.
@_optimize(speed)
func gemmUnpackedA(
    m: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedWeights, c: UnsafeMutablePointer<Float>, ldc: Int,
    activation: Activation
) {
    let k = weights.k
    let n = weights.n
    let mr = gemmMR
    let nr = gemmNR
    let act = activation
    let applyAct = act.isPointwise && !act.isLinear
    if m == 0 || n == 0 { return }
    let rowsPtr = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: mr)
    defer { rowsPtr.deallocate() }
    let tile = UnsafeMutablePointer<Float>.allocate(capacity: mr * nr)
    defer { tile.deallocate() }
    let panelCount = (n + nr - 1) / nr
    weights.bias.withUnsafeBufferPointer { biasBuf in
        weights.panels.withUnsafeBufferPointer { panelBuf in
            let bias = biasBuf.baseAddress!
            let panels = panelBuf.baseAddress!
            var m0 = 0
            while m0 < m {
                let mc = min(gemmMC, m - m0)
                var k0 = 0
                while k0 < k {
                    let kc = min(gemmKC, k - k0)
                    let accumulate = k0 > 0
                    let last = k0 + kc == k
                    for j in 0..<panelCount {
                        let bp = panels + (j * k + k0) * nr
                        let cols = min(nr, n - j * nr)
                        let initial = bias + j * nr
                        var r0 = 0
                        while r0 < mc {
                            let rows = min(mr, mc - r0)
                            let ap = a + (m0 + r0) * lda + k0
                            let cp = c + (m0 + r0) * ldc + j * nr
                            if rows == mr && cols == nr {
                                for r in 0..<mr { rowsPtr[r] = ap + r * lda }
                                indirectMicroKernel(1, kc, rowsPtr, bp, cp, ldc, accumulate: accumulate, initial: initial)
                                if last && applyAct {
                                    for r in 0..<mr { act.applyPointwise(cp + r * ldc, count: nr) }
                                }
                            } else {
                                if accumulate {
                                    for r in 0..<rows { for q in 0..<cols { tile[r * nr + q] = cp[r * ldc + q] } }
                                }
                                if rows < mr {
                                    for r in 0..<rows {
                                        gemmRowKernel(
                                            kc, ap + r * lda, aStride: 1, bp, tile + r * nr, accumulate: accumulate,
                                            initial: initial)
                                    }
                                } else {
                                    for r in 0..<mr { rowsPtr[r] = ap + r * lda }
                                    indirectMicroKernel(
                                        1, kc, rowsPtr, bp, tile, nr, accumulate: accumulate, initial: initial)
                                }
                                for r in 0..<rows {
                                    let dst = cp + r * ldc
                                    for q in 0..<cols { dst[q] = tile[r * nr + q] }
                                    if last && applyAct { act.applyPointwise(dst, count: cols) }
                                }
                            }
                            r0 += mr
                        }
                    }
                    k0 += kc
                }
                m0 += mc
            }
        }
    }
}

@inline(__always)
@_optimize(speed)
func packRowMajorA(
    _ dst: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, lda: Int, m0: Int, mc: Int, k0: Int, kc: Int
) {
    let mr = gemmMR
    var r0 = 0
    while r0 < mc {
        let panel = dst + r0 * kc
        let rows = min(mr, mc - r0)
        for r in 0..<rows {
            let src = a + (m0 + r0 + r) * lda + k0
            for kk in 0..<kc { panel[kk * mr + r] = src[kk] }
        }
        if rows < mr { for r in rows..<mr { for kk in 0..<kc { panel[kk * mr + r] = 0 } } }
        r0 += mr
    }
}
