// Kernel micro-benchmarks (GFLOP/s), built by tools/bench/kernels.sh together with the core's sources.
// Not a test: timings depend on the machine. Single thread.

func seconds(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    var best = Double.infinity
    body()
    for _ in 0..<7 {
        let t = clock.measure(body)
        best = min(best, Double(t.components.seconds) + Double(t.components.attoseconds) / 1e18)
    }
    return best
}

func randomArray(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(s >> 41)) / Float(1 << 23) - 0.5
    }
}

func benchGEMM(_ m: Int, _ n: Int, _ k: Int) {
    let a = randomArray(m * k, seed: 1)
    let w = PackedWeights(k: k, n: n, rowMajor: randomArray(k * n, seed: 2), bias: nil)
    var c = [Float](repeating: 0, count: m * n)
    let t = seconds {
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                gemm(m: m, a: ap.baseAddress!, lda: k, weights: w, c: cp.baseAddress!, ldc: n, activation: .linear)
            }
        }
    }
    print("sgemm \(m)x\(n)x\(k): \(Int(2.0 * Double(m * n * k) / t / 1e9)) GFLOP/s")
}

let args = CommandLine.arguments.dropFirst()
benchGEMM(512, 512, 512)
