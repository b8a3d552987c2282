import Testing

@testable import KedgeCore

/// A random convolution problem over (batch, d, h, w, c) data, 1D/2D/3D as size-1 leading axes.
struct ConvCase {
    var batch: Int
    var input: [Int]
    var window: [Int]
    var stride: [Int]
    var dilation: [Int]
    var padding: String
    var channels: Int

    init(_ rng: inout KernelRNG, rank: Int, allowCausal: Bool = true) {
        batch = rng.int(1, 2)
        channels = rng.int(1, 11)
        padding = rng.pick(rank == 1 && allowCausal ? ["valid", "same", "causal"] : ["valid", "same"])
        input = []
        window = []
        stride = []
        dilation = []
        let dilated = rng.int(0, 3) == 0
        for _ in 0..<rank {
            window.append(rng.int(1, 4))
            stride.append(dilated ? 1 : rng.int(1, 3))
            dilation.append(dilated ? rng.int(1, 3) : 1)
            input.append(rng.int(1, 9))
        }
        for i in 0..<rank where padding == "valid" {
            input[i] = max(input[i], (window[i] - 1) * dilation[i] + 1)
        }
    }

    var geometry: ConvGeometry {
        ConvGeometry(
            batch: batch, input: Dims3(trailing: input, fill: 1), window: Dims3(trailing: window, fill: 1),
            stride: Dims3(trailing: stride, fill: 1), dilation: Dims3(trailing: dilation, fill: 1),
            padding: PaddingMode.parse(padding)!)
    }

    /// Output sizes and leading pads, per axis, from the test's own formula.
    var outputAndPad: [(Int, Int)] {
        (0..<input.count).map {
            referenceConvLength(
                input[$0], window: window[$0], stride: stride[$0], dilation: dilation[$0], padding: padding)
        }
    }

    var description: String {
        "batch \(batch) input \(input) c \(channels) window \(window) stride \(stride) dilation \(dilation) \(padding)"
    }
}

/// Visits every output position and every in-range tap: body(outIndex, inIndex, tapIndex) with flat spatial
/// indices (batch included for in/out).
func forEachConvTap(_ cc: ConvCase, _ body: (Int, Int, Int) -> Void) {
    let op = cc.outputAndPad
    let rank = cc.input.count
    let outSizes = op.map { $0.0 }
    let outCount = outSizes.reduce(1, *)
    let tapCount = cc.window.reduce(1, *)
    for b in 0..<cc.batch {
        for o in 0..<outCount {
            var oc = [Int](repeating: 0, count: rank)
            var r = o
            for a in Swift.stride(from: rank - 1, through: 0, by: -1) { oc[a] = r % outSizes[a]; r /= outSizes[a] }
            for t in 0..<tapCount {
                var tc = [Int](repeating: 0, count: rank)
                var q = t
                for a in Swift.stride(from: rank - 1, through: 0, by: -1) { tc[a] = q % cc.window[a]; q /= cc.window[a] }
                var inFlat = 0
                var inside = true
                for a in 0..<rank {
                    let i = oc[a] * cc.stride[a] - op[a].1 + tc[a] * cc.dilation[a]
                    if i < 0 || i >= cc.input[a] { inside = false }
                    inFlat = inFlat * cc.input[a] + i
                }
                if inside { body(b * outCount + o, b * cc.input.reduce(1, *) + inFlat, t) }
            }
        }
    }
}

@Suite struct KernelConvolutionTests {
    @Test(arguments: [1, 2, 3])
    func convolutionMatchesReference(rank: Int) {
        var rng = KernelRNG(UInt64(10 + rank))
        for _ in 0..<40 {
            var cc = ConvCase(&rng, rank: rank)
            let groups = rng.pick([1, 1, 2, 3])
            let cg = rng.int(1, 5)
            cc.channels = cg * groups
            let filters = groups * rng.int(1, 7)
            let ng = filters / groups
            let taps = cc.window.reduce(1, *)
            let kernel = rng.floats(taps * cg * filters)
            let bias: [Float]? = rng.bool() ? rng.floats(filters) : nil
            let x = rng.floats(cc.batch * cc.input.reduce(1, *) * cc.channels)
            let outPixels = cc.batch * cc.outputAndPad.map { $0.0 }.reduce(1, *)
            var want = [Double](repeating: 0, count: outPixels * filters)
            for p in 0..<outPixels { for f in 0..<filters { want[p * filters + f] = Double(bias?[f] ?? 0) } }
            forEachConvTap(cc) { o, i, t in
                for f in 0..<filters {
                    let g = f / ng
                    for ci in 0..<cg {
                        want[o * filters + f] +=
                            Double(x[i * cc.channels + g * cg + ci]) * Double(kernel[(t * cg + ci) * filters + f])
                    }
                }
            }
            let w = ConvWeights(
                kernel: kernel, window: Dims3(trailing: cc.window, fill: 1), inChannelsPerGroup: cg,
                outChannels: filters, groups: groups, bias: bias)
            let g = cc.geometry
            #expect(g.outputPixels == outPixels, "\(cc.description)")
            var got = [Float](repeating: .nan, count: outPixels * filters)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { op in
                    convolve(xp.baseAddress!, geometry: g, weights: w, activation: .linear, out: op.baseAddress!)
                }
            }
            expectClose(got, want.map { Float($0) }, "conv \(cc.description) groups \(groups) filters \(filters)")
        }
    }

    @Test func pointwiseConvolutionTakesTheGEMMPath() {
        var rng = KernelRNG(5)
        for _ in 0..<10 {
            let pixels = rng.int(1, 50), c = rng.int(1, 20), f = rng.int(1, 20)
            let x = rng.floats(pixels * c), k = rng.floats(c * f), bias = rng.floats(f)
            var want = [Float](repeating: 0, count: pixels * f)
            for p in 0..<pixels {
                for j in 0..<f {
                    var s = Double(bias[j])
                    for i in 0..<c { s += Double(x[p * c + i]) * Double(k[i * f + j]) }
                    want[p * f + j] = max(Float(s), 0)
                }
            }
            let g = ConvGeometry(
                batch: 1, input: Dims3(1, 1, pixels), window: Dims3(1, 1, 1), stride: Dims3(1, 1, 1),
                dilation: Dims3(1, 1, 1), padding: .same)
            let w = ConvWeights(
                kernel: k, window: Dims3(1, 1, 1), inChannelsPerGroup: c, outChannels: f, groups: 1, bias: bias)
            var got = [Float](repeating: .nan, count: pixels * f)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { op in
                    convolve(xp.baseAddress!, geometry: g, weights: w, activation: .plainReLU, out: op.baseAddress!)
                }
            }
            expectClose(got, want, "1x1 conv pixels \(pixels) c \(c) f \(f)")
        }
    }

    @Test(arguments: [1, 2, 3])
    func depthwiseMatchesReference(rank: Int) {
        var rng = KernelRNG(UInt64(20 + rank))
        for _ in 0..<40 {
            let cc = ConvCase(&rng, rank: rank, allowCausal: false)
            let mult = rng.int(1, 3)
            let c = cc.channels
            let co = c * mult
            let taps = cc.window.reduce(1, *)
            let kernel = rng.floats(taps * co)
            let bias: [Float]? = rng.bool() ? rng.floats(co) : nil
            let inPixels = cc.batch * cc.input.reduce(1, *)
            let x = rng.floats(inPixels * c)
            let outPixels = cc.batch * cc.outputAndPad.map { $0.0 }.reduce(1, *)
            var want = [Double](repeating: 0, count: outPixels * co)
            for p in 0..<outPixels { for j in 0..<co { want[p * co + j] = Double(bias?[j] ?? 0) } }
            forEachConvTap(cc) { o, i, t in
                for ch in 0..<c {
                    for m in 0..<mult {
                        want[o * co + ch * mult + m] += Double(x[i * c + ch]) * Double(kernel[(t * c + ch) * mult + m])
                    }
                }
            }
            var expanded = [Float](repeating: 0, count: inPixels * co)
            x.withUnsafeBufferPointer { xp in
                expanded.withUnsafeMutableBufferPointer { ep in
                    expandChannels(
                        xp.baseAddress!, pixels: inPixels, channels: c, multiplier: mult, out: ep.baseAddress!)
                }
            }
            var got = [Float](repeating: .nan, count: outPixels * co)
            expanded.withUnsafeBufferPointer { xp in
                kernel.withUnsafeBufferPointer { kp in
                    got.withUnsafeMutableBufferPointer { op in
                        if let bias {
                            bias.withUnsafeBufferPointer { bp in
                                depthwiseConvolve(
                                    xp.baseAddress!, channels: co, geometry: cc.geometry, kernel: kp.baseAddress!,
                                    bias: bp.baseAddress!, activation: .linear, out: op.baseAddress!)
                            }
                        } else {
                            depthwiseConvolve(
                                xp.baseAddress!, channels: co, geometry: cc.geometry, kernel: kp.baseAddress!,
                                bias: nil, activation: .linear, out: op.baseAddress!)
                        }
                    }
                }
            }
            expectClose(got, want.map { Float($0) }, "depthwise \(cc.description) multiplier \(mult)")
        }
    }

    @Test(arguments: [1, 2, 3])
    func transposedMatchesReference(rank: Int) {
        var rng = KernelRNG(UInt64(30 + rank))
        for _ in 0..<40 {
            let batch = rng.int(1, 2)
            let ci = rng.int(1, 9), co = rng.int(1, 9)
            let padding = rng.pick(["valid", "same"])
            var input: [Int] = [], window: [Int] = [], strides: [Int] = [], dilation: [Int] = [], outPad: [Int?] = []
            let dilated = rng.int(0, 3) == 0
            let withOutputPadding = rng.bool()
            for _ in 0..<rank {
                input.append(rng.int(1, 6))
                window.append(rng.int(1, 4))
                strides.append(dilated ? 1 : rng.int(1, 3))
                dilation.append(dilated ? rng.int(1, 2) : 1)
                outPad.append(withOutputPadding ? rng.int(0, strides.last! - 1) : nil)
            }
            // Keras's output length (compute_conv_transpose_output_shape) and TF's implied leading pad.
            var outSizes: [Int] = [], pads: [Int] = []
            for a in 0..<rank {
                let eff = (window[a] - 1) * dilation[a] + 1
                let len: Int
                if padding == "same" {
                    len = outPad[a].map { (input[a] - 1) * strides[a] + eff % 2 + $0 } ?? input[a] * strides[a]
                } else {
                    len = (input[a] - 1) * strides[a] + eff + (outPad[a] ?? max(eff, strides[a]) - eff)
                }
                outSizes.append(len)
                pads.append(padding == "same" ? max((input[a] - 1) * strides[a] + eff - len, 0) / 2 : 0)
            }
            let taps = window.reduce(1, *)
            let kernel = rng.floats(taps * co * ci)  // (k..., out, in)
            let bias = rng.floats(co)
            let inCount = input.reduce(1, *), outCount = outSizes.reduce(1, *)
            let x = rng.floats(batch * inCount * ci)
            var want = [Double](repeating: 0, count: batch * outCount * co)
            for p in 0..<(batch * outCount) { for j in 0..<co { want[p * co + j] = Double(bias[j]) } }
            for b in 0..<batch {
                for i in 0..<inCount {
                    var ic = [Int](repeating: 0, count: rank)
                    var r = i
                    for a in Swift.stride(from: rank - 1, through: 0, by: -1) { ic[a] = r % input[a]; r /= input[a] }
                    for t in 0..<taps {
                        var tc = [Int](repeating: 0, count: rank)
                        var q = t
                        for a in Swift.stride(from: rank - 1, through: 0, by: -1) { tc[a] = q % window[a]; q /= window[a] }
                        var o = 0
                        var inside = true
                        for a in 0..<rank {
                            let v = ic[a] * strides[a] - pads[a] + tc[a] * dilation[a]
                            if v < 0 || v >= outSizes[a] { inside = false }
                            o = o * outSizes[a] + v
                        }
                        if !inside { continue }
                        for j in 0..<co {
                            for c in 0..<ci {
                                want[(b * outCount + o) * co + j] +=
                                    Double(x[(b * inCount + i) * ci + c]) * Double(kernel[(t * co + j) * ci + c])
                            }
                        }
                    }
                }
            }
            let d3 = { (v: [Int]) in Dims3(trailing: v, fill: 1) }
            var lengths: [(Int, Int)] = []
            for a in 0..<rank {
                let r = convTransposeOutputLength(
                    input[a], window: window[a], stride: strides[a], dilation: dilation[a],
                    padding: PaddingMode.parse(padding)!, outputPadding: outPad[a])
                lengths.append((r.length, r.padBefore))
            }
            #expect(lengths.map { $0.0 } == outSizes)
            #expect(lengths.map { $0.1 } == pads)
            let g = ConvGeometry(
                batch: batch, input: d3(input), output: d3(outSizes), window: d3(window), stride: d3(strides),
                dilation: d3(dilation), padBefore: Dims3(trailing: pads, fill: 0))
            let w = TransposedConvWeights(kernel: kernel, window: d3(window), inChannels: ci, outChannels: co)
            var got = [Float](repeating: .nan, count: batch * outCount * co)
            x.withUnsafeBufferPointer { xp in
                bias.withUnsafeBufferPointer { bp in
                    got.withUnsafeMutableBufferPointer { op in
                        convolveTransposed(
                            xp.baseAddress!, geometry: g, weights: w, bias: bp.baseAddress!, activation: .linear,
                            out: op.baseAddress!)
                    }
                }
            }
            expectClose(
                got, want.map { Float($0) },
                "transposed input \(input) window \(window) strides \(strides) dilation \(dilation) \(padding) outPad \(outPad)")
        }
    }
}
