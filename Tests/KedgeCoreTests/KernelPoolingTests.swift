import Testing

@testable import KedgeCore

@Suite struct KernelPoolingTests {
    @Test(arguments: [1, 2, 3])
    func poolingMatchesReference(rank: Int) {
        var rng = KernelRNG(UInt64(40 + rank))
        for _ in 0..<40 {
            var cc = ConvCase(&rng, rank: rank, allowCausal: false)
            cc.dilation = [Int](repeating: 1, count: rank)
            for a in 0..<rank where cc.padding == "valid" { cc.input[a] = max(cc.input[a], cc.window[a]) }
            let kind: PoolKind = rng.bool() ? .max : .average
            let c = cc.channels
            let x = rng.floats(cc.batch * cc.input.reduce(1, *) * c)
            let outPixels = cc.batch * cc.outputAndPad.map { $0.0 }.reduce(1, *)
            var acc = [Double](repeating: kind == .max ? -Double.infinity : 0, count: outPixels * c)
            var count = [Int](repeating: 0, count: outPixels)
            forEachConvTap(cc) { o, i, _ in
                count[o] += 1
                for ch in 0..<c {
                    let v = Double(x[i * c + ch])
                    acc[o * c + ch] = kind == .max ? max(acc[o * c + ch], v) : acc[o * c + ch] + v
                }
            }
            let want = (0..<(outPixels * c)).map { j in Float(kind == .max ? acc[j] : acc[j] / Double(count[j / c])) }
            var got = [Float](repeating: .nan, count: outPixels * c)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { op in
                    pool(xp.baseAddress!, channels: c, geometry: cc.geometry, kind: kind, out: op.baseAddress!)
                }
            }
            expectClose(got, want, "\(kind) pool \(cc.description)")
        }
    }

    @Test func globalPoolingMatchesReference() {
        var rng = KernelRNG(44)
        for _ in 0..<10 {
            let batch = rng.int(1, 3), pixels = rng.int(1, 40), c = rng.int(1, 12)
            let x = rng.floats(batch * pixels * c)
            for kind in [PoolKind.max, .average] {
                var want = [Float]()
                for b in 0..<batch {
                    for ch in 0..<c {
                        let vs = (0..<pixels).map { x[(b * pixels + $0) * c + ch] }
                        want.append(kind == .max ? vs.max()! : Float(vs.reduce(0.0) { $0 + Double($1) } / Double(pixels)))
                    }
                }
                var got = [Float](repeating: .nan, count: batch * c)
                x.withUnsafeBufferPointer { xp in
                    got.withUnsafeMutableBufferPointer { op in
                        globalPool(xp.baseAddress!, batch: batch, pixels: pixels, channels: c, kind: kind, out: op.baseAddress!)
                    }
                }
                expectClose(got, want, "global \(kind) batch \(batch) pixels \(pixels) c \(c)")
            }
        }
    }
}

@Suite struct KernelResizeTests {
    @Test func repeatMatchesReference() {
        var rng = KernelRNG(50)
        for _ in 0..<20 {
            let batch = rng.int(1, 2), c = rng.int(1, 5)
            let input = Dims3(rng.int(1, 4), rng.int(1, 4), rng.int(1, 4))
            let f = Dims3(rng.int(1, 3), rng.int(1, 3), rng.int(1, 3))
            let x = rng.floats(batch * input.product * c)
            let o = Dims3(input.d * f.d, input.h * f.h, input.w * f.w)
            var want = [Float]()
            for b in 0..<batch {
                for z in 0..<o.d {
                    for y in 0..<o.h {
                        for xx in 0..<o.w {
                            for ch in 0..<c {
                                want.append(
                                    x[((((b * input.d + z / f.d) * input.h + y / f.h) * input.w) + xx / f.w) * c + ch])
                            }
                        }
                    }
                }
            }
            var got = [Float](repeating: .nan, count: want.count)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { op in
                    repeatUpsample(xp.baseAddress!, batch: batch, input: input, channels: c, factor: f, out: op.baseAddress!)
                }
            }
            #expect(got == want)
        }
    }

    @Test func bilinearMatchesHalfPixelReference() {
        var rng = KernelRNG(51)
        for _ in 0..<20 {
            let batch = rng.int(1, 2), c = rng.int(1, 4), h = rng.int(1, 6), w = rng.int(1, 6)
            let fh = rng.int(1, 4), fw = rng.int(1, 4)
            let x = rng.floats(batch * h * w * c)
            func at(_ b: Int, _ y: Int, _ xx: Int, _ ch: Int) -> Double { Double(x[((b * h + y) * w + xx) * c + ch]) }
            var want = [Float]()
            for b in 0..<batch {
                for oy in 0..<(h * fh) {
                    let sy = max((Double(oy) + 0.5) / Double(fh) - 0.5, 0)
                    let y0 = min(Int(sy), h - 1), y1 = min(y0 + 1, h - 1), ly = sy - Double(Int(sy))
                    for ox in 0..<(w * fw) {
                        let sx = max((Double(ox) + 0.5) / Double(fw) - 0.5, 0)
                        let x0 = min(Int(sx), w - 1), x1 = min(x0 + 1, w - 1), lx = sx - Double(Int(sx))
                        for ch in 0..<c {
                            let top = at(b, y0, x0, ch) * (1 - lx) + at(b, y0, x1, ch) * lx
                            let bottom = at(b, y1, x0, ch) * (1 - lx) + at(b, y1, x1, ch) * lx
                            want.append(Float(top * (1 - ly) + bottom * ly))
                        }
                    }
                }
            }
            var got = [Float](repeating: .nan, count: want.count)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { op in
                    resizeBilinear(
                        xp.baseAddress!, batch: batch, inH: h, inW: w, channels: c, outH: h * fh, outW: w * fw,
                        out: op.baseAddress!)
                }
            }
            expectClose(got, want, "bilinear \(h)x\(w) x(\(fh),\(fw)) c \(c)")
        }
    }

    @Test func bicubicKeepsConstantsAndMatchesKeysInTheInterior() {
        // A constant image stays constant (weights renormalised at the borders); a linear ramp stays linear
        // away from the borders (Keys' cubic reproduces linear functions).
        let h = 5, w = 6, f = 2
        let constant = [Float](repeating: 0.75, count: h * w)
        var got = [Float](repeating: .nan, count: h * f * w * f)
        constant.withUnsafeBufferPointer { xp in
            got.withUnsafeMutableBufferPointer { op in
                resizeBicubic(xp.baseAddress!, batch: 1, inH: h, inW: w, channels: 1, outH: h * f, outW: w * f, out: op.baseAddress!)
            }
        }
        expectClose(got, [Float](repeating: 0.75, count: got.count), "bicubic constant")
        let ramp = (0..<(h * w)).map { Float($0 % w) }
        ramp.withUnsafeBufferPointer { xp in
            got.withUnsafeMutableBufferPointer { op in
                resizeBicubic(xp.baseAddress!, batch: 1, inH: h, inW: w, channels: 1, outH: h * f, outW: w * f, out: op.baseAddress!)
            }
        }
        for oy in 0..<(h * f) {
            for ox in 3..<(w * f - 3) {
                let want = (Float(ox) + 0.5) / Float(f) - 0.5
                #expect(abs(got[oy * w * f + ox] - want) < 1e-3, "bicubic ramp at \(oy), \(ox)")
            }
        }
    }
}

@Suite struct KernelPaddingTests {
    @Test func copyRegionPadsAndCrops() {
        var rng = KernelRNG(60)
        for _ in 0..<30 {
            let batch = rng.int(1, 2), c = rng.int(1, 4)
            let input = Dims3(rng.int(1, 5), rng.int(1, 5), rng.int(1, 5))
            let origin = Dims3(rng.int(-2, 2), rng.int(-2, 2), rng.int(-2, 2))
            let output = Dims3(rng.int(1, 7), rng.int(1, 7), rng.int(1, 7))
            let x = rng.floats(batch * input.product * c)
            var want = [Float]()
            for b in 0..<batch {
                for z in 0..<output.d {
                    for y in 0..<output.h {
                        for xx in 0..<output.w {
                            let (zi, yi, xi) = (z + origin.d, y + origin.h, xx + origin.w)
                            let inside = zi >= 0 && zi < input.d && yi >= 0 && yi < input.h && xi >= 0 && xi < input.w
                            for ch in 0..<c {
                                want.append(inside ? x[(((b * input.d + zi) * input.h + yi) * input.w + xi) * c + ch] : 0)
                            }
                        }
                    }
                }
            }
            var got = [Float](repeating: .nan, count: want.count)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { op in
                    copyRegion(xp.baseAddress!, batch: batch, input: input, channels: c, output: output, origin: origin, out: op.baseAddress!)
                }
            }
            #expect(got == want, "input \(input) output \(output) origin \(origin)")
        }
    }
}
