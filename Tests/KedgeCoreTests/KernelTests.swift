import Testing

@testable import KedgeCore

// Shared by the Kernel*Tests files: a seeded generator, random tensors, and the comparison every fast kernel is
// held to against its plain nested-loop reference (tract's proptest style: many random shapes, odd sizes).

struct KernelRNG {
    var state: UInt64

    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in lo...hi.
    mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }

    mutating func bool() -> Bool { next() & 1 == 1 }

    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(Int64(next() >> 40)) / Float(1 << 23) - 1 }

    mutating func floats(_ n: Int) -> [Float] { (0..<n).map { _ in float() } }

    mutating func pick<T>(_ items: [T]) -> T { items[int(0, items.count - 1)] }
}

/// Fails (naming `what` and the first bad index) unless every element is within `tolerance` relative (with an
/// absolute floor of `tolerance`) of the reference.
func expectClose(
    _ got: [Float], _ want: [Float], tolerance: Float = 1e-4, _ what: @autoclosure () -> String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard got.count == want.count else {
        Issue.record("\(what()): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return
    }
    for i in 0..<got.count {
        let d = abs(got[i] - want[i])
        if !(d <= tolerance * max(1, abs(want[i]))) {
            Issue.record("\(what()): index \(i): got \(got[i]), expected \(want[i])", sourceLocation: sourceLocation)
            return
        }
    }
}

/// TF's output length and leading padding, written out independently of the kernels' own helper.
func referenceConvLength(_ input: Int, window: Int, stride: Int, dilation: Int, padding: String) -> (Int, Int) {
    let eff = (window - 1) * dilation + 1
    switch padding {
    case "same":
        let out = (input + stride - 1) / stride
        return (out, max((out - 1) * stride + eff - input, 0) / 2)
    case "causal":
        return ((input + eff - 1 - eff) / stride + 1, eff - 1)
    default:
        return (input < eff ? 0 : (input - eff) / stride + 1, 0)
    }
}

@Suite struct KernelGEMMTests {
    @Test func matchesNaiveProductOnRandomShapes() {
        var rng = KernelRNG(1)
        for trial in 0..<60 {
            let m = rng.int(1, 40)
            let n = rng.int(1, 45)
            // Depths past gemmKC exercise the accumulate-into-C path.
            let k = trial % 5 == 0 ? rng.int(gemmKC - 3, 2 * gemmKC + 7) : rng.int(0, 30)
            let lda = k + rng.int(0, 3)
            let ldc = n + rng.int(0, 3)
            let act: Activation = rng.pick([.linear, Activation.plainReLU, .sigmoid, .tanh])
            let a = rng.floats(m * lda)
            let b = rng.floats(k * n)
            let bias: [Float]? = rng.bool() ? rng.floats(n) : nil
            var want = [Float](repeating: -7, count: m * ldc)
            for i in 0..<m {
                for j in 0..<n {
                    var s: Double = Double(bias?[j] ?? 0)
                    for kk in 0..<k { s += Double(a[i * lda + kk]) * Double(b[kk * n + j]) }
                    want[i * ldc + j] = Float(s)
                }
                want.withUnsafeMutableBufferPointer { act.applyPointwise($0.baseAddress! + i * ldc, count: n) }
            }
            let w = PackedWeights(k: k, n: n, rowMajor: b, bias: bias)
            var got = [Float](repeating: -7, count: m * ldc)
            a.withUnsafeBufferPointer { ap in
                got.withUnsafeMutableBufferPointer { cp in
                    gemm(m: m, a: ap.baseAddress!, lda: lda, weights: w, c: cp.baseAddress!, ldc: ldc, activation: act)
                }
            }
            expectClose(got, want, "gemm m=\(m) n=\(n) k=\(k) lda=\(lda) ldc=\(ldc) \(act)")
        }
    }

    @Test func largeMatrixCrossesRowBlocks() {
        var rng = KernelRNG(2)
        let (m, n, k) = (gemmMC * 2 + 5, 37, 300)
        let a = rng.floats(m * k), b = rng.floats(k * n)
        var want = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for kk in 0..<k { s += Double(a[i * k + kk]) * Double(b[kk * n + j]) }
                want[i * n + j] = Float(s)
            }
        }
        let w = PackedWeights(k: k, n: n, rowMajor: b, bias: nil)
        var got = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in
            got.withUnsafeMutableBufferPointer { cp in
                gemm(m: m, a: ap.baseAddress!, lda: k, weights: w, c: cp.baseAddress!, ldc: n, activation: .linear)
            }
        }
        expectClose(got, want, "gemm \(m)x\(n)x\(k)")
    }
}
