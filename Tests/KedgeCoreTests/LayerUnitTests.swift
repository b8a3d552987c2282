import Testing

@testable import KedgeCore

/// Activation, regularization, normalization and merging layers, each built through the catalog from a JSON
/// config and hand-made weights and checked against a plain formula written out here (whole-model parity with
/// real Keras is the parity runner's job).
@Suite struct LayerUnitTests {
    // MARK: helpers

    /// Builds a layer as the graph does: weight names from the catalog, then `make`.
    static func layer(
        _ className: String, _ config: String = "{}", weights: [String: Tensor] = [:], keras: Int = 3
    ) throws -> Layer {
        guard let obj = try JSONParser.parse(config).object else { throw KedgeError(.invalidJSON, "config") }
        let c = LayerConfig(layerName: "l", className: className, json: obj)
        let names = try LayerCatalog.weightNames(c)
        #expect(Set(names) == Set(weights.keys), "weights of \(className)")
        return try LayerCatalog.make(LayerSpec(name: "l", className: className, config: c, kerasMajor: keras, weights: weights))
    }

    /// Builds with unknown batch, then runs.
    static func run(_ l: Layer, _ xs: [Tensor]) throws -> Tensor {
        var shapes: [[Int]] = []
        for x in xs { var s = x.shape; s[0] = -1; shapes.append(s) }
        let out = try l.build(shapes)
        let y = try l.forward(xs)
        #expect(y.count == 1)
        var want = out[0]
        want[0] = y[0].shape[0]
        #expect(y[0].shape == want, "static shape \(out[0]) vs run shape \(y[0].shape)")
        return y[0]
    }

    /// Deterministic values in [-2, 2) (no Foundation random).
    static func tensor(_ shape: [Int], seed: UInt32 = 1) -> Tensor {
        var s = seed &* 2_654_435_761 &+ 12345
        return Tensor(shape: shape, data: (0..<Tensor.elementCount(shape)).map { _ in
            s = s &* 1_664_525 &+ 1_013_904_223
            return Float(s >> 8) / Float(1 << 24) * 4 - 2
        })
    }

    static func positive(_ shape: [Int], seed: UInt32) -> Tensor {
        var t = tensor(shape, seed: seed)
        for i in 0..<t.count { t.data[i] = abs(t.data[i]) + 0.1 }
        return t
    }

    static func expectClose(_ a: Tensor, _ b: [Float], tol: Float = 1e-5, _ what: String = "") {
        #expect(a.count == b.count, "\(what): count")
        guard a.count == b.count else { return }
        var worst: Float = 0
        for i in 0..<b.count { worst = max(worst, abs(a.data[i] - b[i]) / max(1, abs(b[i]))) }
        #expect(worst <= tol, "\(what): worst relative difference \(worst)")
    }

    /// C-order strides.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { s[d] = s[d + 1] * shape[d + 1] }
        return s
    }

    /// Multi-index of flat position `i`.
    static func index(_ i: Int, _ shape: [Int]) -> [Int] {
        let st = strides(shape)
        return st.enumerated().map { d, s in (i / s) % shape[d] }
    }

    static func flat(_ idx: [Int], _ shape: [Int]) -> Int {
        zip(idx, strides(shape)).reduce(0) { $0 + $1.0 * $1.1 }
    }

    static func map(_ x: Tensor, _ f: (Float) -> Float) -> [Float] { x.data.map(f) }

    // MARK: activation layers

    @Test func reluWithCapSlopeAndThreshold() throws {
        let x = Self.tensor([2, 3, 5], seed: 2)
        // Documented formula: max_value above the cap, x from threshold up, slope * (x - threshold) below.
        func ref(_ v: Float, _ m: Float?, _ a: Float, _ t: Float) -> Float {
            if let m, v >= m { return m }
            if v >= t { return v }
            return a * (v - t)
        }
        let plain = try Self.run(try Self.layer("ReLU"), [x])
        Self.expectClose(plain, Self.map(x) { max($0, 0) }, "relu")
        let full = try Self.run(try Self.layer("ReLU", #"{"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.25}"#), [x])
        Self.expectClose(full, Self.map(x) { ref($0, 1.5, 0.1, 0.25) }, "relu full")
        let capped = try Self.run(try Self.layer("ReLU", #"{"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}"#), [Self.tensor([4, 8], seed: 3)])
        #expect(capped.data.allSatisfy { $0 >= 0 && $0 <= 6 })
        #expect(throws: KedgeError.self) { try Self.layer("ReLU", #"{"max_value": -1.0}"#) }
    }

    @Test func leakyReluKeras2AlphaAndKeras3NegativeSlope() throws {
        let x = Self.tensor([3, 4], seed: 4)
        let k2 = try Self.run(try Self.layer("LeakyReLU", #"{"alpha": 0.1}"#, keras: 2), [x])
        Self.expectClose(k2, Self.map(x) { $0 >= 0 ? $0 : 0.1 * $0 }, "keras 2 alpha")
        let k3 = try Self.run(try Self.layer("LeakyReLU", #"{"negative_slope": 0.05}"#), [x])
        Self.expectClose(k3, Self.map(x) { $0 >= 0 ? $0 : 0.05 * $0 }, "keras 3 negative_slope")
        let dflt = try Self.run(try Self.layer("LeakyReLU"), [x])
        Self.expectClose(dflt, Self.map(x) { $0 >= 0 ? $0 : 0.3 * $0 }, "default 0.3")
        #expect(try Self.layer("LeakyReLU").activationForFusion == .relu(negativeSlope: 0.3, maxValue: nil, threshold: 0))
    }

    @Test func eluAndThresholdedRelu() throws {
        let x = Self.tensor([2, 6], seed: 5)
        let elu = try Self.run(try Self.layer("ELU", #"{"alpha": 0.5}"#), [x])
        Self.expectClose(elu, Self.map(x) { $0 > 0 ? $0 : 0.5 * Float(exp(Double($0)) - 1) }, "elu")
        let t = try Self.run(try Self.layer("ThresholdedReLU", #"{"theta": 0.7}"#, keras: 2), [x])
        Self.expectClose(t, Self.map(x) { $0 > 0.7 ? $0 : 0 }, "thresholded")
    }

    @Test func activationLayerParsesAndFuses() throws {
        let x = Self.tensor([2, 5], seed: 6)
        let sig = try Self.layer("Activation", #"{"activation": "sigmoid"}"#)
        #expect(sig.activationForFusion == .sigmoid)
        Self.expectClose(try Self.run(sig, [x]), Self.map(x) { Float(1 / (1 + exp(-Double($0)))) }, "sigmoid")
        let soft = try Self.layer("Activation", #"{"activation": {"module": "keras.activations", "class_name": "function", "config": "softmax"}}"#)
        #expect(soft.activationForFusion == nil)
        let y = try Self.run(soft, [x])
        for r in 0..<2 {
            let row = (0..<5).map { Double(x.data[r * 5 + $0]) }
            let m = row.max()!
            let s = row.reduce(0) { $0 + exp($1 - m) }
            Self.expectClose(Tensor(shape: [5], data: Array(y.data[(r * 5)..<(r * 5 + 5)])), row.map { Float(exp($0 - m) / s) }, "softmax row")
        }
        let linear = try Self.layer("Activation", #"{"activation": "linear"}"#)
        #expect(try Self.run(linear, [x]).data == x.data)
    }

    @Test func softmaxOverOneAxisAndSeveral() throws {
        let x = Self.tensor([2, 3, 4, 2], seed: 7)
        func ref(_ axes: [Int]) -> [Float] {
            var out = [Float](repeating: 0, count: x.count)
            // Group elements that agree on every axis outside `axes`.
            var groups: [[Int]: [Int]] = [:]
            for i in 0..<x.count {
                let idx = Self.index(i, x.shape)
                let key = idx.enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
                groups[key, default: []].append(i)
            }
            for (_, g) in groups {
                let m = g.map { Double(x.data[$0]) }.max()!
                let s = g.reduce(0.0) { $0 + exp(Double(x.data[$1]) - m) }
                for i in g { out[i] = Float(exp(Double(x.data[i]) - m) / s) }
            }
            return out
        }
        Self.expectClose(try Self.run(try Self.layer("Softmax"), [x]), ref([3]), "axis -1")
        Self.expectClose(try Self.run(try Self.layer("Softmax", #"{"axis": 1}"#), [x]), ref([1]), "axis 1")
        Self.expectClose(try Self.run(try Self.layer("Softmax", #"{"axis": [1, 2]}"#), [x]), ref([1, 2]), "axes 1,2")
        Self.expectClose(try Self.run(try Self.layer("Softmax", #"{"axis": [1, -1]}"#), [x]), ref([1, 3]), "axes 1,-1")
        Self.expectClose(try Self.run(try Self.layer("Softmax", #"{"axis": [2]}"#), [x]), ref([2]), "axes [2]")
        #expect(throws: KedgeError.self) { try Self.layer("Softmax", #"{"axis": 4}"#).build([[-1, 3, 4, 2]]) }
    }

    @Test func preluSharedAxesAndFullAlpha() throws {
        let x = Self.tensor([2, 3, 3, 4], seed: 8)
        let alpha = Self.tensor([1, 1, 4], seed: 9)
        let shared = try Self.layer("PReLU", #"{"shared_axes": [1, 2]}"#, weights: ["alpha": alpha])
        let y = try Self.run(shared, [x])
        Self.expectClose(y, (0..<x.count).map { i in x.data[i] >= 0 ? x.data[i] : alpha.data[i % 4] * x.data[i] }, "shared")
        #expect(shared.parameterCount == 4)
        let full = Self.tensor([3, 3, 4], seed: 10)
        let y2 = try Self.run(try Self.layer("PReLU", weights: ["alpha": full]), [x])
        Self.expectClose(y2, (0..<x.count).map { i in x.data[i] >= 0 ? x.data[i] : full.data[i % 36] * x.data[i] }, "full")
        // alpha made for 5 channels cannot serve 4.
        let wrong = try Self.layer("PReLU", #"{"shared_axes": [1, 2]}"#, weights: ["alpha": Self.tensor([1, 1, 5])])
        #expect(throws: KedgeError.self) { try wrong.build([[-1, 3, 3, 4]]) }
    }

    // MARK: regularization

    @Test(arguments: [
        ("Dropout", #"{"rate": 0.5}"#, [2, 3]), ("SpatialDropout1D", #"{"rate": 0.2}"#, [2, 3, 4]),
        ("SpatialDropout2D", #"{"rate": 0.2}"#, [1, 2, 3, 4]), ("SpatialDropout3D", #"{"rate": 0.2}"#, [1, 2, 2, 3, 4]),
        ("GaussianNoise", #"{"stddev": 0.1}"#, [2, 3]), ("GaussianDropout", #"{"rate": 0.1}"#, [2, 3]),
        ("AlphaDropout", #"{"rate": 0.1}"#, [2, 3]), ("ActivityRegularization", #"{"l1": 0.01, "l2": 0.0}"#, [2, 3]),
    ])
    func regularizationIsIdentityAtInference(_ cls: String, _ config: String, _ shape: [Int]) throws {
        let x = Self.tensor(shape, seed: 11)
        #expect(try Self.run(try Self.layer(cls, config), [x]).data == x.data)
    }

    @Test func spatialDropoutChecksRank() throws {
        #expect(throws: KedgeError.self) { try Self.layer("SpatialDropout2D", #"{"rate": 0.2}"#).build([[-1, 3, 4]]) }
    }

    // MARK: batch normalization

    static func bnWeights(_ c: Int, seed: UInt32, gamma: Bool = true, beta: Bool = true) -> [String: Tensor] {
        var w: [String: Tensor] = [
            "moving_mean": tensor([c], seed: seed), "moving_variance": positive([c], seed: seed + 1),
        ]
        if gamma { w["gamma"] = tensor([c], seed: seed + 2) }
        if beta { w["beta"] = tensor([c], seed: seed + 3) }
        return w
    }

    /// gamma * (x - mean) / sqrt(var + eps) + beta in Double, channel of element i given by `channel`.
    static func bnRef(_ x: Tensor, _ w: [String: Tensor], eps: Double, channel: (Int) -> Int) -> [Float] {
        (0..<x.count).map { i in
            let c = channel(i)
            let g = Double(w["gamma"]?.data[c] ?? 1)
            let b = Double(w["beta"]?.data[c] ?? 0)
            let m = Double(w["moving_mean"]!.data[c])
            let v = Double(w["moving_variance"]!.data[c])
            return Float(g * (Double(x.data[i]) - m) / (v + eps).squareRoot() + b)
        }
    }

    @Test func batchNormLastAxisFoldsAndMatchesFormula() throws {
        let x = Self.tensor([2, 3, 3, 5], seed: 12)
        let w = Self.bnWeights(5, seed: 20)
        let l = try Self.layer("BatchNormalization", #"{"axis": -1, "epsilon": 0.001, "center": true, "scale": true}"#, weights: w)
        Self.expectClose(try Self.run(l, [x]), Self.bnRef(x, w, eps: 0.001) { $0 % 5 }, "last axis")
        #expect(l.scaleShiftForFolding != nil)
        #expect(l.parameterCount == 20)
        // Keras 2 writes the resolved axis as a list.
        let k2 = try Self.layer("BatchNormalization", #"{"axis": [3], "epsilon": 1e-5}"#, weights: w, keras: 2)
        Self.expectClose(try Self.run(k2, [x]), Self.bnRef(x, w, eps: 1e-5) { $0 % 5 }, "keras 2 axis [3]")
        #expect(k2.scaleShiftForFolding != nil)
    }

    @Test func batchNormChannelsFirstWithoutScaleOrCenter() throws {
        let x = Self.tensor([2, 4, 3, 3], seed: 13)
        let w = Self.bnWeights(4, seed: 30, gamma: false, beta: false)
        let c = LayerConfig(layerName: "bn", className: "BatchNormalization", json: try JSONParser.parse(#"{"axis": 1, "center": false, "scale": false}"#).object!)
        #expect(try LayerCatalog.weightNames(c) == ["moving_mean", "moving_variance"])
        let l = try Self.layer("BatchNormalization", #"{"axis": 1, "center": false, "scale": false}"#, weights: w)
        Self.expectClose(try Self.run(l, [x]), Self.bnRef(x, w, eps: 0.001) { ($0 / 9) % 4 }, "axis 1")
        #expect(l.scaleShiftForFolding == nil)
        let onlyBeta = Self.bnWeights(4, seed: 31, gamma: false)
        let l2 = try Self.layer("BatchNormalization", #"{"axis": 1, "scale": false}"#, weights: onlyBeta)
        Self.expectClose(try Self.run(l2, [x]), Self.bnRef(x, onlyBeta, eps: 0.001) { ($0 / 9) % 4 }, "beta only")
    }

    @Test func batchNormSeveralAxesAndWeightOrder() throws {
        // Keras 2 multi-axis: weights shaped (1, H, 1, C), one value per (h, c).
        let x = Self.tensor([2, 3, 2, 4], seed: 14)
        var w: [String: Tensor] = [:]
        for (k, name) in ["gamma", "beta", "moving_mean"].enumerated() {
            w[name] = Self.tensor([1, 3, 1, 4], seed: 40 + UInt32(k))
        }
        w["moving_variance"] = Self.positive([1, 3, 1, 4], seed: 44)
        let l = try Self.layer("BatchNormalization", #"{"axis": [1, 3]}"#, weights: w, keras: 2)
        let ref = Self.bnRef(x, w, eps: 0.001) { i in
            let idx = Self.index(i, x.shape)
            return idx[1] * 4 + idx[3]
        }
        Self.expectClose(try Self.run(l, [x]), ref, "axes 1,3")
        #expect(l.scaleShiftForFolding == nil)
        let c = LayerConfig(layerName: "bn", className: "BatchNormalization", json: try JSONParser.parse(#"{"renorm": true}"#).object!)
        #expect(try LayerCatalog.weightNames(c) == ["gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev"])
        let k1 = LayerConfig(layerName: "bn", className: "BatchNormalization", json: try JSONParser.parse(#"{"mode": 0, "axis": -1}"#).object!)
        #expect(try LayerCatalog.weightNames(k1) == ["gamma", "beta", "running_mean", "running_std"])
    }

    @Test func batchNormRejectsWrongChannelCount() throws {
        let l = try Self.layer("BatchNormalization", weights: Self.bnWeights(5, seed: 50))
        #expect(throws: KedgeError.self) { try l.build([[-1, 4, 4, 6]]) }
        var w = Self.bnWeights(5, seed: 50)
        w["beta"] = Self.tensor([4])
        #expect(throws: KedgeError.self) { try Self.layer("BatchNormalization", weights: w) }
    }

    // MARK: layer normalization and friends

    /// Normalizes `x` over `axes` with a plain two-pass Double computation; params indexed in C order over `axes`.
    static func lnRef(
        _ x: Tensor, axes: [Int], eps: Double, gamma: Tensor?, beta: Tensor?, center: Bool = true
    ) -> [Float] {
        var groups: [[Int]: [Int]] = [:]
        for i in 0..<x.count {
            let idx = index(i, x.shape)
            let key = idx.enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
            groups[key, default: []].append(i)
        }
        var out = [Float](repeating: 0, count: x.count)
        let pShape = axes.map { x.shape[$0] }
        for (_, g) in groups {
            let vals = g.map { Double(x.data[$0]) }
            let mean = vals.reduce(0, +) / Double(vals.count)
            let v = vals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(vals.count)
            for i in g {
                let idx = index(i, x.shape)
                let p = flat(axes.map { idx[$0] }, pShape)
                let n = (Double(x.data[i]) - (center ? mean : 0)) / (v + eps).squareRoot()
                out[i] = Float(n * Double(gamma?.data[p] ?? 1) + Double(beta?.data[p] ?? 0))
            }
        }
        return out
    }

    @Test func layerNormLastAxis() throws {
        let x = Self.tensor([2, 3, 13], seed: 15)
        let g = Self.tensor([13], seed: 60)
        let b = Self.tensor([13], seed: 61)
        let l = try Self.layer("LayerNormalization", #"{"axis": [-1], "epsilon": 0.001}"#, weights: ["gamma": g, "beta": b])
        Self.expectClose(try Self.run(l, [x]), Self.lnRef(x, axes: [2], eps: 0.001, gamma: g, beta: b), tol: 2e-5, "axis -1")
        #expect(l.parameterCount == 26)
        let plain = try Self.layer("LayerNormalization", #"{"axis": -1, "center": false, "scale": false, "epsilon": 1e-6}"#)
        Self.expectClose(try Self.run(plain, [x]), Self.lnRef(x, axes: [2], eps: 1e-6, gamma: nil, beta: nil), tol: 2e-5, "no params")
    }

    @Test func layerNormSeveralAndInnerAxes() throws {
        let x = Self.tensor([2, 3, 4, 5], seed: 16)
        let g = Self.tensor([3, 5], seed: 62)
        let b = Self.tensor([3, 5], seed: 63)
        let l = try Self.layer("LayerNormalization", #"{"axis": [3, 1]}"#, weights: ["gamma": g, "beta": b], keras: 2)
        Self.expectClose(try Self.run(l, [x]), Self.lnRef(x, axes: [1, 3], eps: 0.001, gamma: g, beta: b), tol: 2e-5, "axes 1,3")
        let g2 = Self.tensor([4, 5], seed: 64)
        let l2 = try Self.layer("LayerNormalization", #"{"axis": [2, 3], "center": false}"#, weights: ["gamma": g2])
        Self.expectClose(try Self.run(l2, [x]), Self.lnRef(x, axes: [2, 3], eps: 0.001, gamma: g2, beta: nil), tol: 2e-5, "axes 2,3")
        let g3 = Self.tensor([3], seed: 65)
        let l3 = try Self.layer("LayerNormalization", #"{"axis": 1, "scale": true, "center": false}"#, weights: ["gamma": g3])
        Self.expectClose(try Self.run(l3, [x]), Self.lnRef(x, axes: [1], eps: 0.001, gamma: g3, beta: nil), tol: 2e-5, "axis 1")
        #expect(throws: KedgeError.self) { try l3.build([[-1, 4, 4, 5]]) }
    }

    @Test func layerNormRmsScalingIsVarianceScaling() throws {
        let x = Self.tensor([3, 8], seed: 17)
        let g = Self.tensor([8], seed: 66)
        let l = try Self.layer("LayerNormalization", #"{"axis": -1, "rms_scaling": true, "center": true}"#, weights: ["gamma": g])
        Self.expectClose(try Self.run(l, [x]), Self.lnRef(x, axes: [1], eps: 0.001, gamma: g, beta: nil, center: false), tol: 2e-5, "rms_scaling")
    }

    @Test func groupNormChannelsLastAndFirst() throws {
        let x = Self.tensor([2, 3, 3, 6], seed: 18)
        let g = Self.tensor([6], seed: 67)
        let b = Self.tensor([6], seed: 68)
        func ref(_ x: Tensor, axis: Int, groups: Int) -> [Float] {
            let c = x.shape[axis]
            var groupsOf: [[Int]: [Int]] = [:]
            for i in 0..<x.count {
                let idx = Self.index(i, x.shape)
                groupsOf[[idx[0], idx[axis] / (c / groups)], default: []].append(i)
            }
            var out = [Float](repeating: 0, count: x.count)
            for (_, gr) in groupsOf {
                let vals = gr.map { Double(x.data[$0]) }
                let mean = vals.reduce(0, +) / Double(vals.count)
                let v = vals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(vals.count)
                for i in gr {
                    let ch = Self.index(i, x.shape)[axis]
                    out[i] = Float((Double(x.data[i]) - mean) / (v + 0.001).squareRoot() * Double(g.data[ch]) + Double(b.data[ch]))
                }
            }
            return out
        }
        let l = try Self.layer("GroupNormalization", #"{"groups": 3, "axis": -1}"#, weights: ["gamma": g, "beta": b])
        Self.expectClose(try Self.run(l, [x]), ref(x, axis: 3, groups: 3), tol: 2e-5, "channels last")
        let xf = Self.tensor([2, 6, 2, 3], seed: 19)
        let lf = try Self.layer("GroupNormalization", #"{"groups": 2, "axis": 1}"#, weights: ["gamma": g, "beta": b])
        Self.expectClose(try Self.run(lf, [xf]), ref(xf, axis: 1, groups: 2), tol: 2e-5, "channels first")
        let inst = try Self.layer("GroupNormalization", #"{"groups": -1}"#, weights: ["gamma": g, "beta": b])
        Self.expectClose(try Self.run(inst, [x]), ref(x, axis: 3, groups: 6), tol: 2e-5, "instance norm")
        let bad = try Self.layer("GroupNormalization", #"{"groups": 4}"#, weights: ["gamma": g, "beta": b])
        #expect(throws: KedgeError.self) { try bad.build([[-1, 3, 3, 6]]) }
    }

    @Test func rmsAndUnitNormalization() throws {
        let x = Self.tensor([2, 3, 7], seed: 21)
        let s = Self.tensor([7], seed: 69)
        let rms = try Self.layer("RMSNormalization", #"{"axis": -1, "epsilon": 1e-6}"#, weights: ["scale": s])
        Self.expectClose(try Self.run(rms, [x]), (0..<x.count).map { i in
            let r = i / 7
            let ms = (0..<7).reduce(0.0) { $0 + Double(x.data[r * 7 + $1]) * Double(x.data[r * 7 + $1]) } / 7
            return Float(Double(x.data[i]) / (ms + 1e-6).squareRoot() * Double(s.data[i % 7]))
        }, tol: 2e-5, "rms")
        let unit = try Self.layer("UnitNormalization", #"{"axis": [1, 2]}"#)
        let y = try Self.run(unit, [x])
        for b in 0..<2 {
            let norm = (0..<21).reduce(0.0) { $0 + Double(x.data[b * 21 + $1]) * Double(x.data[b * 21 + $1]) }.squareRoot()
            Self.expectClose(Tensor(shape: [21], data: Array(y.data[(b * 21)..<(b * 21 + 21)])), (0..<21).map { Float(Double(x.data[b * 21 + $0]) / norm) }, tol: 2e-5, "unit")
        }
        let zeros = try Self.run(try Self.layer("UnitNormalization"), [Tensor(shape: [1, 3], repeating: 0)])
        #expect(zeros.data == [0, 0, 0])
    }

    // MARK: merging

    @Test func elementwiseMergesOfEqualShapes() throws {
        let a = Self.tensor([2, 3, 4], seed: 22)
        let b = Self.tensor([2, 3, 4], seed: 23)
        let c = Self.tensor([2, 3, 4], seed: 24)
        let i = 0..<a.count
        Self.expectClose(try Self.run(try Self.layer("Add"), [a, b, c]), i.map { a.data[$0] + b.data[$0] + c.data[$0] }, "add")
        Self.expectClose(try Self.run(try Self.layer("Subtract"), [a, b]), i.map { a.data[$0] - b.data[$0] }, "subtract")
        Self.expectClose(try Self.run(try Self.layer("Multiply"), [a, b, c]), i.map { a.data[$0] * b.data[$0] * c.data[$0] }, "multiply")
        Self.expectClose(try Self.run(try Self.layer("Average"), [a, b, c]), i.map { (a.data[$0] + b.data[$0] + c.data[$0]) / 3 }, "average")
        Self.expectClose(try Self.run(try Self.layer("Maximum"), [a, b, c]), i.map { max(a.data[$0], b.data[$0], c.data[$0]) }, "maximum")
        Self.expectClose(try Self.run(try Self.layer("Minimum"), [a, b]), i.map { min(a.data[$0], b.data[$0]) }, "minimum")
        #expect(throws: KedgeError.self) { try Self.layer("Subtract").build([[-1, 3], [-1, 3], [-1, 3]]) }
    }

    @Test func elementwiseMergesBroadcast() throws {
        let big = Self.tensor([2, 3, 4], seed: 25)
        let row = Self.tensor([2, 1, 4], seed: 26)
        let col = Self.tensor([2, 3, 1], seed: 27)
        let vec = Self.tensor([2, 4], seed: 28)
        let add = try Self.run(try Self.layer("Add"), [big, row])
        Self.expectClose(add, (0..<24).map { i in big.data[i] + row.data[(i / 12) * 4 + i % 4] }, "(2,3,4)+(2,1,4)")
        let mul = try Self.run(try Self.layer("Multiply"), [col, big])
        Self.expectClose(mul, (0..<24).map { i in col.data[i / 4] * big.data[i] }, "(2,3,1)*(2,3,4)")
        // A lower-rank input gains axes after the batch axis: (2,4) acts as (2,1,4).
        let sub = try Self.run(try Self.layer("Subtract"), [vec, big])
        Self.expectClose(sub, (0..<24).map { i in vec.data[(i / 12) * 4 + i % 4] - big.data[i] }, "(2,4)-(2,3,4)")
        // Both sides broadcast: (2,3,1) with (2,1,4) gives (2,3,4).
        let mx = try Self.run(try Self.layer("Maximum"), [col, row])
        Self.expectClose(mx, (0..<24).map { i in max(col.data[i / 4], row.data[(i / 12) * 4 + i % 4]) }, "(2,3,1)v(2,1,4)")
        let avg = try Self.run(try Self.layer("Average"), [big, row, col])
        Self.expectClose(avg, (0..<24).map { i in (big.data[i] + row.data[(i / 12) * 4 + i % 4] + col.data[i / 4]) / 3 }, "average 3")
        #expect(throws: KedgeError.self) { try Self.layer("Add").build([[-1, 3, 4], [-1, 2, 4]]) }
        #expect(try Self.layer("Add").build([[-1, -1, 4], [-1, 5, 1]]) == [[-1, 5, 4]])
    }

    @Test func concatenateOnAnyAxis() throws {
        let a = Self.tensor([2, 3, 4], seed: 29)
        let b = Self.tensor([2, 3, 2], seed: 30)
        let c = Self.tensor([2, 1, 4], seed: 31)
        func ref(_ xs: [Tensor], axis: Int) -> [Float] {
            var shape = xs[0].shape
            shape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
            return (0..<Tensor.elementCount(shape)).map { i in
                var idx = Self.index(i, shape)
                var k = 0
                while idx[axis] >= xs[k].shape[axis] { idx[axis] -= xs[k].shape[axis]; k += 1 }
                return xs[k].data[Self.flat(idx, xs[k].shape)]
            }
        }
        let last = try Self.run(try Self.layer("Concatenate", #"{"axis": -1}"#), [a, b])
        #expect(last.shape == [2, 3, 6])
        #expect(last.data == ref([a, b], axis: 2))
        let mid = try Self.run(try Self.layer("Concatenate", #"{"axis": 1}"#), [a, c, a])
        #expect(mid.shape == [2, 7, 4])
        #expect(mid.data == ref([a, c, a], axis: 1))
        let neg = try Self.run(try Self.layer("Concatenate", #"{"axis": -2}"#), [c, a])
        #expect(neg.data == ref([c, a], axis: 1))
        #expect(throws: KedgeError.self) { try Self.layer("Concatenate", #"{"axis": 1}"#).build([[-1, 3, 4], [-1, 3, 2]]) }
        #expect(try Self.layer("Concatenate").build([[-1, 3, 4], [-1, 3, -1]]) == [[-1, 3, -1]])
    }

    /// out[b, rest1..., rest2...] = sum_k x[b, ..k at a0..] * y[b, ..k at a1..], written with index arithmetic.
    static func dotRef(_ x: Tensor, _ y: Tensor, _ a0: Int, _ a1: Int, normalize: Bool) -> [Float] {
        func normalized(_ t: Tensor, _ axis: Int) -> [Double] {
            (0..<t.count).map { i in
                var idx = Self.index(i, t.shape)
                var ss = 0.0
                for k in 0..<t.shape[axis] { idx[axis] = k; let v = Double(t.data[Self.flat(idx, t.shape)]); ss += v * v }
                return Double(t.data[i]) / (normalize ? ss.squareRoot() : 1)
            }
        }
        let xv = normalized(x, a0)
        let yv = normalized(y, a1)
        let r1 = x.shape.enumerated().filter { $0.offset != a0 && $0.offset != 0 }.map(\.element)
        let r2 = y.shape.enumerated().filter { $0.offset != a1 && $0.offset != 0 }.map(\.element)
        let outShape = [x.shape[0]] + r1 + r2
        return (0..<Tensor.elementCount(outShape)).map { i in
            let idx = Self.index(i, outShape)
            var s = 0.0
            for k in 0..<x.shape[a0] {
                var xi: [Int] = [idx[0]]
                var p = 1
                for d in 1..<x.rank { if d == a0 { xi.append(k) } else { xi.append(idx[p]); p += 1 } }
                var yi: [Int] = [idx[0]]
                for d in 1..<y.rank { if d == a1 { yi.append(k) } else { yi.append(idx[p]); p += 1 } }
                s += xv[Self.flat(xi, x.shape)] * yv[Self.flat(yi, y.shape)]
            }
            return Float(s)
        }
    }

    @Test func dotAxesAndNormalize() throws {
        let u = Self.tensor([3, 5], seed: 32)
        let v = Self.tensor([3, 5], seed: 33)
        let uv = try Self.run(try Self.layer("Dot", #"{"axes": -1}"#), [u, v])
        #expect(uv.shape == [3, 1])
        Self.expectClose(uv, Self.dotRef(u, v, 1, 1, normalize: false), "rank 2")
        let cos = try Self.run(try Self.layer("Dot", #"{"axes": 1, "normalize": true}"#), [u, v])
        Self.expectClose(cos, Self.dotRef(u, v, 1, 1, normalize: true), "cosine")
        let a = Self.tensor([2, 3, 4], seed: 34)
        let b = Self.tensor([2, 5, 4], seed: 35)
        let ab = try Self.run(try Self.layer("Dot", #"{"axes": [2, 2]}"#), [a, b])
        #expect(ab.shape == [2, 3, 5])
        Self.expectClose(ab, Self.dotRef(a, b, 2, 2, normalize: false), "(2,3,4).(2,5,4)")
        let c = Self.tensor([2, 4, 6], seed: 36)
        let ac = try Self.run(try Self.layer("Dot", #"{"axes": [2, 1], "normalize": true}"#), [a, c])
        #expect(ac.shape == [2, 3, 6])
        Self.expectClose(ac, Self.dotRef(a, c, 2, 1, normalize: true), "(2,3,4).(2,4,6) normalized")
        let d = Self.tensor([2, 3, 2, 2], seed: 37)
        let ad = try Self.run(try Self.layer("Dot", #"{"axes": [1, 1]}"#), [a, d])
        #expect(ad.shape == [2, 4, 2, 2])
        Self.expectClose(ad, Self.dotRef(a, d, 1, 1, normalize: false), "(2,3,4).(2,3,2,2) axes 1")
        let vec = try Self.run(try Self.layer("Dot", #"{"axes": [1, 2]}"#), [Self.tensor([2, 4], seed: 38), a])
        #expect(vec.shape == [2, 3])
        #expect(throws: KedgeError.self) { try Self.layer("Dot", #"{"axes": 1}"#).build([[-1, 3], [-1, 4]]) }
        #expect(throws: KedgeError.self) { try Self.layer("Dot", #"{"axes": 0}"#).build([[-1, 3], [-1, 3]]) }
    }

    // MARK: fusion through the graph

    @Test func denseBatchNormReluFusedMatchesUnfused() throws {
        let text = #"""
            {"class_name": "Functional", "config": {"name": "m", "layers": [
              {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, 6], "name": "x"}, "inbound_nodes": []},
              {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 4, "activation": "linear"},
               "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}], "kwargs": {}}]},
              {"class_name": "BatchNormalization", "name": "bn", "config": {"name": "bn", "axis": -1, "epsilon": 0.001},
               "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["d", 0, 0]}}], "kwargs": {}}]},
              {"class_name": "ReLU", "name": "r", "config": {"name": "r"},
               "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["bn", 0, 0]}}], "kwargs": {}}]}],
              "input_layers": [["x", 0, 0]], "output_layers": ["r", 0, 0]}}
            """#
        let config = try ModelConfig.parse(try JSONParser.parse(text), kerasVersion: "3.15.1")
        var w = WeightStore()
        w.set(layer: "d", weight: "kernel", Self.tensor([6, 4], seed: 70))
        w.set(layer: "d", weight: "bias", Self.tensor([4], seed: 71))
        for (k, t) in Self.bnWeights(4, seed: 72) { w.set(layer: "bn", weight: k, t) }
        let x = Self.tensor([3, 6], seed: 73)
        let fused = try Model(config: config, weights: w).predict([x])[0]
        let plain = try Model(config: config, weights: w, options: Model.Options(fuse: false)).predict([x])[0]
        Self.expectClose(fused, plain.data, tol: 1e-5, "fused vs unfused")
        #expect(plain.data.contains(0) && plain.data.contains { $0 > 0 })
    }
}
