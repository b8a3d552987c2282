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

/// A same-padded, stride-1 convolution over (1, d, h, w, c) -> (1, d, h, w, f).
func benchConv(_ name: String, input: Dims3, c: Int, f: Int, window: Dims3) {
    let g = ConvGeometry(
        batch: 1, input: input, window: window, stride: Dims3(1, 1, 1), dilation: Dims3(1, 1, 1), padding: .same)
    let x = randomArray(input.product * c, seed: 3)
    let w = ConvWeights(
        kernel: randomArray(window.product * c * f, seed: 4), window: window, inChannelsPerGroup: c, outChannels: f,
        groups: 1, bias: randomArray(f, seed: 5))
    var out = [Float](repeating: 0, count: g.outputPixels * f)
    let t = seconds {
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                convolve(xp.baseAddress!, geometry: g, weights: w, activation: .plainReLU, out: op.baseAddress!)
            }
        }
    }
    let flops = 2.0 * Double(g.outputPixels * f * window.product * c)
    print("\(name): \(Int(flops / t / 1e9)) GFLOP/s (\(Int(t * 1e6)) us)")
}

/// A same-padded depthwise 3x3 convolution over (1, h, w, c), ReLU6 fused (MobileNet's shape).
func benchDepthwise(_ name: String, h: Int, w: Int, c: Int, stride: Int) {
    let g = ConvGeometry(
        batch: 1, input: Dims3(1, h, w), window: Dims3(1, 3, 3), stride: Dims3(1, stride, stride),
        dilation: Dims3(1, 1, 1), padding: .same)
    let x = randomArray(h * w * c, seed: 6), k = randomArray(9 * c, seed: 7), b = randomArray(c, seed: 8)
    var out = [Float](repeating: 0, count: g.outputPixels * c)
    let relu6 = Activation.relu(negativeSlope: 0, maxValue: 6, threshold: 0)
    let t = seconds {
        x.withUnsafeBufferPointer { xp in
            k.withUnsafeBufferPointer { kp in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        depthwiseConvolve(
                            xp.baseAddress!, channels: c, geometry: g, kernel: kp.baseAddress!, bias: bp.baseAddress!,
                            activation: relu6, out: op.baseAddress!)
                    }
                }
            }
        }
    }
    print("\(name): \(Int(2.0 * Double(g.outputPixels * c * 9) / t / 1e9)) GFLOP/s (\(Int(t * 1e6)) us)")
}

/// `kernels.sh [fma] check`: the GEMM and convolution of this build (e.g. the FMA micro-kernels, which
/// `swift test` does not compile) against plain loops on a few odd shapes. Traps on a mismatch.
func check() {
    var bad = 0
    var seed: UInt64 = 11
    for (m, n, k) in [(1, 5, 7), (5, 17, 300), (7, 33, 513), (13, 40, 9), (125, 9, 260), (6, 16, 16)] {
        seed += 1
        let a = randomArray(m * k, seed: seed), b = randomArray(k * n, seed: seed + 100), bias = randomArray(n, seed: 3)
        let w = PackedWeights(k: k, n: n, rowMajor: b, bias: bias)
        var c = [Float](repeating: .nan, count: m * n)
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                gemm(m: m, a: ap.baseAddress!, lda: k, weights: w, c: cp.baseAddress!, ldc: n, activation: .linear)
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                var s = Double(bias[j])
                for q in 0..<k { s += Double(a[i * k + q]) * Double(b[q * n + j]) }
                if !(abs(Double(c[i * n + j]) - s) <= 1e-4 * max(1, abs(s))) { bad += 1 }
            }
        }
    }
    for (h, wd, cin, f) in [(5, 7, 1, 3), (6, 5, 4, 19), (9, 9, 16, 33)] {
        let g = ConvGeometry(
            batch: 2, input: Dims3(1, h, wd), window: Dims3(1, 3, 3), stride: Dims3(1, 1, 2), dilation: Dims3(1, 1, 1),
            padding: .same)
        let x = randomArray(2 * h * wd * cin, seed: 5), k = randomArray(9 * cin * f, seed: 6)
        let w = ConvWeights(kernel: k, window: Dims3(1, 3, 3), inChannelsPerGroup: cin, outChannels: f, groups: 1, bias: nil)
        var out = [Float](repeating: .nan, count: g.outputPixels * f)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                convolve(xp.baseAddress!, geometry: g, weights: w, activation: .linear, out: op.baseAddress!)
            }
        }
        for b in 0..<2 {
            for oy in 0..<g.output.h {
                for ox in 0..<g.output.w {
                    for j in 0..<f {
                        var s = 0.0
                        for ty in 0..<3 {
                            for tx in 0..<3 {
                                let y = oy - g.padBefore.h + ty, xx = ox * 2 - g.padBefore.w + tx
                                if y < 0 || y >= h || xx < 0 || xx >= wd { continue }
                                for ci in 0..<cin {
                                    s += Double(x[((b * h + y) * wd + xx) * cin + ci]) * Double(k[((ty * 3 + tx) * cin + ci) * f + j])
                                }
                            }
                        }
                        let got = out[((b * g.output.h + oy) * g.output.w + ox) * f + j]
                        if !(abs(Double(got) - s) <= 1e-4 * max(1, abs(s))) { bad += 1 }
                    }
                }
            }
        }
    }
    print(bad == 0 ? "check: gemm and conv match the plain loops (NR = \(gemmNR))" : "check: \(bad) mismatches")
    if bad > 0 { fatalError("kernel check failed") }
}

/// Every benchmark, or those whose name contains the first argument.
let filter = CommandLine.arguments.dropFirst().first ?? ""
if filter == "check" { check() }
func run(_ name: String, _ body: () -> Void) {
    if filter != "check" && (filter.isEmpty || name.contains(filter)) { body() }
}
run("sgemm 512") { benchGEMM(512, 512, 512) }
run("sgemm tall") { benchGEMM(32768, 16, 432) }
run("sgemm row") { benchGEMM(1, 1024, 1024) }
run("sgemm rows4") { benchGEMM(4, 1024, 1024) }
run("conv2d 56") { benchConv("conv2d 56x56x64 -> 64, 3x3", input: Dims3(1, 56, 56), c: 64, f: 64, window: Dims3(1, 3, 3)) }
run("conv2d 112") { benchConv("conv2d 112x112x3 -> 32, 3x3", input: Dims3(1, 112, 112), c: 3, f: 32, window: Dims3(1, 3, 3)) }
run("conv2d 28 1x1") { benchConv("conv2d 28x28x128 -> 128, 1x1", input: Dims3(1, 28, 28), c: 128, f: 128, window: Dims3(1, 1, 1)) }
run("conv3d 32") { benchConv("conv3d 32^3x16 -> 16, 3x3x3", input: Dims3(32, 32, 32), c: 16, f: 16, window: Dims3(3, 3, 3)) }
run("conv3d 64") { benchConv("conv3d 64^3x1 -> 8, 3x3x3", input: Dims3(64, 64, 64), c: 1, f: 8, window: Dims3(3, 3, 3)) }
run("depthwise 112") { benchDepthwise("depthwise 112x112x32 3x3", h: 112, w: 112, c: 32, stride: 1) }
run("depthwise 14") { benchDepthwise("depthwise 14x14x576 3x3", h: 14, w: 14, c: 576, stride: 1) }
