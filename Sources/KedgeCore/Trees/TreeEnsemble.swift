// Gradient-boosted tree ensembles (XGBoost), as two graph layers so that a tree model is an ordinary bundle:
// `XGBoostTrees` sums leaf values into margins, `XGBoostObjective` turns margins into predictions.
// Bundles are made by `XGBoostImport` from xgboost's JSON or UBJSON model files.

let treeBuilders: [LayerBuilder] = [
    LayerBuilder(
        ["XGBoostTrees"],
        weights: { _ throws(KedgeError) in XGBoostTrees.weightNames },
        make: { s throws(KedgeError) in try XGBoostTrees(s) }),
    LayerBuilder(["XGBoostObjective"], make: { s throws(KedgeError) in try XGBoostObjective(s) }),
]

/// All trees of an ensemble in flat node arrays. Integer arrays are stored as float32 tensors in the bundle
/// (exact below 2^24 nodes/features) so the bundle format needs no integer dtype.
final class XGBoostTrees: Layer {
    static let weightNames = [
        "base_margin", "tree_offsets", "tree_groups", "left_children", "right_children", "split_indices",
        "split_conditions", "default_left",
    ]

    let numFeatures: Int
    let numGroups: Int
    let baseMargin: [Float]
    let treeOffsets: [Int32]
    let treeGroups: [Int32]
    let left: [Int32]
    let right: [Int32]
    let feature: [Int32]
    let threshold: [Float]
    let defaultLeft: [Bool]

    init(_ s: LayerSpec) throws(KedgeError) {
        numFeatures = try s.config.int("num_feature")
        guard numFeatures > 0 else {
            throw KedgeError(.invalidConfig, "layer '\(s.name)' (XGBoostTrees): num_feature is \(numFeatures); it must be positive")
        }
        numGroups = max(try s.config.int("num_groups", default: 1), 1)
        baseMargin = try s.weight("base_margin", shape: [numGroups]).data
        // Indices are stored as float32: each must be a whole number in Int32's range (a NaN, an infinity or 1e15
        // from a hostile file would trap in a plain conversion).
        func ints(_ n: String) throws(KedgeError) -> [Int32] {
            let values = try s.weight(n).data
            var out = [Int32](repeating: 0, count: values.count)
            for (i, v) in values.enumerated() {
                guard let k = Int32(exactly: v) else {
                    throw KedgeError(
                        .invalidBundle, "layer '\(s.name)' (XGBoostTrees): weight '\(n)' entry \(i) is not an integer index (NaN, infinite, fractional or beyond Int32)")
                }
                out[i] = k
            }
            return out
        }
        treeOffsets = try ints("tree_offsets")
        treeGroups = try ints("tree_groups")
        left = try ints("left_children")
        right = try ints("right_children")
        feature = try ints("split_indices")
        threshold = try s.weight("split_conditions").data
        defaultLeft = try s.weight("default_left").data.map { $0 != 0 }
        super.init(spec: s)
        try validate()
    }

    /// Checks every index so that evaluation can never read out of bounds or loop.
    func validate() throws(KedgeError) {
        for (i, v) in threshold.enumerated() where !v.isFinite {
            throw configError("split condition \(i) is not finite (NaN or infinite)")
        }
        for (g, v) in baseMargin.enumerated() where !v.isFinite { throw configError("base margin \(g) is not finite") }
        let nodes = left.count
        guard right.count == nodes, feature.count == nodes, threshold.count == nodes, defaultLeft.count == nodes else {
            throw configError("tree node arrays differ in length")
        }
        guard treeOffsets.count == treeGroups.count + 1, treeOffsets.first == 0, Int(treeOffsets.last!) == nodes else {
            throw configError("tree_offsets do not partition the \(nodes) nodes")
        }
        for t in 0..<treeGroups.count {
            let lo = Int(treeOffsets[t])
            let hi = Int(treeOffsets[t + 1])
            guard hi > lo else { throw configError("tree \(t) has no nodes") }
            guard treeGroups[t] >= 0 && Int(treeGroups[t]) < numGroups else {
                throw configError("tree \(t) belongs to class \(treeGroups[t]) of \(numGroups)")
            }
            for n in lo..<hi {
                let l = Int(left[n])
                let r = Int(right[n])
                if l == -1 { continue }
                // Children come after their parent in xgboost's numbering; this also rules out cycles.
                guard l > n - lo, r > n - lo, l < hi - lo, r < hi - lo else {
                    throw configError("tree \(t) node \(n - lo) has children outside the tree")
                }
                guard feature[n] >= 0 && Int(feature[n]) < numFeatures else {
                    throw configError("tree \(t) node \(n - lo) splits on feature \(feature[n]) of \(numFeatures)")
                }
            }
        }
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        guard s.count == 2, s[1] < 0 || s[1] == numFeatures else {
            throw shapeError("input has shape \(describeShape(s)); the trees take (None, \(numFeatures)) features")
        }
        return [numGroups == 1 ? [s[0]] : [s[0], numGroups]]
    }

    /// margin[g] = base_margin[g] + sum of the leaves reached in the trees of group g, in tree order and in
    /// float32, as xgboost accumulates (NaN features follow `default_left`).
    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        let x = inputs[0]
        let rows = x.shape[0]
        let shape = try outputShapes([x.shape])[0]
        let g = numGroups
        let out = Tensor(shape: shape) { o in
            for r in 0..<rows {
                for k in 0..<g { o[r * g + k] = baseMargin[k] }
                for t in 0..<treeGroups.count {
                    let base = Int(treeOffsets[t])
                    var n = 0
                    while left[base + n] != -1 {
                        let v = x.data[r * numFeatures + Int(feature[base + n])]
                        let goLeft = v.isNaN ? defaultLeft[base + n] : v < threshold[base + n]
                        n = Int(goLeft ? left[base + n] : right[base + n])
                    }
                    o[r * g + Int(treeGroups[t])] += threshold[base + n]
                }
            }
        }
        return [out]
    }

    override var parameterCount: Int { left.count }
}

/// The objective's link function: margins to predictions.
final class XGBoostObjective: Layer {
    enum Link { case identity, sigmoid, softmax }
    let link: Link

    init(_ s: LayerSpec) throws(KedgeError) {
        let objective = try s.config.string("objective")
        switch objective {
        case "binary:logistic", "reg:logistic": link = .sigmoid
        case "multi:softprob": link = .softmax
        case "reg:squarederror", "reg:linear", "binary:logitraw", "reg:pseudohubererror", "reg:absoluteerror": link = .identity
        default:
            throw KedgeError(
                .unsupportedLayer,
                "xgboost objective '\(objective)' is not supported; supported: binary:logistic, reg:logistic, binary:logitraw, multi:softprob, reg:squarederror, reg:absoluteerror, reg:pseudohubererror"
            )
        }
        super.init(spec: s)
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        var y = inputs[0]
        switch link {
        case .identity: break
        case .sigmoid: Activation.sigmoid.apply(&y)
        case .softmax: Activation.softmax(axis: -1).apply(&y)
        }
        return [y]
    }
}
