/// Turns an xgboost model (its JSON or UBJSON save format, xgboost 1.x-3.x) into a bundle: a small functional
/// `model.json` (input `features` -> `XGBoostTrees` named `margin` -> `XGBoostObjective` named `probability`)
/// and float32 tensors for the trees. See /shared/facts/xgboost.md for the margin rule reproduced here.
public enum XGBoostImport {
    public struct Result {
        public var modelJSON: String
        /// (layer name, weight name, tensor) in bundle order.
        public var tensors: [(String, String, Tensor)]
        public var numFeatures: Int
        public var objective: String
    }

    /// True when the bytes look like an xgboost model (JSON with a `learner`, or UBJSON starting with `{`).
    public static func looksLikeXGBoost(_ bytes: [UInt8]) -> Bool {
        guard let j = try? parseAny(bytes) else { return false }
        return j["learner"] != nil
    }

    static func parseAny(_ bytes: [UInt8]) throws(KedgeError) -> JSON {
        var i = 0
        while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09) { i += 1 }
        // UBJSON objects start with '{' too; JSON's next byte is whitespace or '"', UBJSON's a length type or '$'/'#'.
        if i + 1 < bytes.count && bytes[i] == UInt8(ascii: "{") {
            let n = bytes[i + 1]
            let jsonish = n == UInt8(ascii: "\"") || n == 0x20 || n == 0x0A || n == 0x0D || n == 0x09 || n == UInt8(ascii: "}")
            if !jsonish { return try UBJSONParser.parse(bytes) }
        }
        return try JSONParser.parse(bytes, what: "xgboost model")
    }

    public static func convert(_ bytes: [UInt8]) throws(KedgeError) -> Result {
        let j = try parseAny(bytes)
        func fail(_ m: String) -> KedgeError { KedgeError(.invalidFile, "xgboost model: " + m) }
        guard let learner = j["learner"] else { throw fail("no 'learner' object; is this an xgboost save_model file?") }
        guard let objective = learner["objective"]?["name"]?.string else { throw fail("no learner.objective.name") }
        let params = learner["learner_model_param"]
        func intParam(_ k: String) -> Int? {
            if let s = params?[k]?.string { return Int(s) }
            return params?[k]?.int
        }
        guard let numFeature = intParam("num_feature"), numFeature > 0 else { throw fail("no num_feature") }
        let numClass = intParam("num_class") ?? 0
        let groups = objective.hasPrefix("multi:") ? max(numClass, 1) : 1
        guard let booster = learner["gradient_booster"] else { throw fail("no gradient_booster") }
        let boosterName = booster["name"]?.string ?? "gbtree"
        guard boosterName == "gbtree" || boosterName == "dart" else {
            throw fail("booster '\(boosterName)' is not supported; supported: gbtree")
        }
        let model = booster["model"] ?? booster["gbtree"]?["model"]
        guard let trees = model?["trees"]?.array else { throw fail("no gradient_booster.model.trees") }
        let treeInfo = model?["tree_info"]?.array ?? []

        // base_score: "[4.4E-1]" (3.x, one per class) or "0.5" (1.x/2.x), in prediction space.
        var baseScores: [Float] = []
        if let text = params?["base_score"]?.string {
            var cleaned = ""
            for c in text where c != "[" && c != "]" { cleaned.append(c) }
            for part in cleaned.split(separator: ",") {
                let v = try JSONParser.parse(String(part), what: "base_score")
                guard let d = v.double else { throw fail("base_score '\(text)' is not a number") }
                baseScores.append(Float(d))
            }
        } else if let d = params?["base_score"]?.double {
            baseScores = [Float(d)]
        }
        if baseScores.isEmpty { baseScores = [0.5] }
        var baseMargin: [Float] = []
        for g in 0..<groups {
            let s = baseScores[min(g, baseScores.count - 1)]
            switch objective {
            case "binary:logistic", "reg:logistic":
                // ProbToMargin, in float32 as xgboost computes it.
                baseMargin.append(-logf(1 / s - 1))
            default:
                baseMargin.append(s)
            }
        }

        var offsets: [Float] = [0]
        var treeGroups: [Float] = []
        var left: [Float] = []
        var right: [Float] = []
        var split: [Float] = []
        var cond: [Float] = []
        var defLeft: [Float] = []
        for (t, tree) in trees.enumerated() {
            func arr(_ k: String) throws(KedgeError) -> [JSON] {
                guard let a = tree[k]?.array else { throw fail("tree \(t) has no '\(k)'") }
                return a
            }
            let l = try arr("left_children")
            let r = try arr("right_children")
            let si = try arr("split_indices")
            let sc = try arr("split_conditions")
            let dl = try arr("default_left")
            let n = l.count
            guard r.count == n, si.count == n, sc.count == n, dl.count == n, n > 0 else {
                throw fail("tree \(t) has node arrays of different lengths")
            }
            if let st = tree["split_type"]?.array, st.contains(where: { $0.int == 1 }) {
                throw fail("tree \(t) has categorical splits, which Kedge does not support yet")
            }
            for i in 0..<n {
                guard let a = l[i].int, let b = r[i].int, let f = si[i].int, let c = sc[i].double else {
                    throw fail("tree \(t) node \(i) has a non-numeric field")
                }
                left.append(Float(a))
                right.append(Float(b))
                split.append(Float(f))
                cond.append(Float(c))
                defLeft.append((dl[i].int ?? (dl[i].bool == true ? 1 : 0)) != 0 ? 1 : 0)
            }
            offsets.append(Float(left.count))
            let g = t < treeInfo.count ? (treeInfo[t].int ?? 0) : 0
            treeGroups.append(Float(g))
        }
        guard left.count < 1 << 24 else { throw fail("more than 2^24 nodes") }

        let margin = "margin"
        var tensors: [(String, String, Tensor)] = []
        func add(_ w: String, _ v: [Float]) { tensors.append((margin, w, Tensor(shape: [v.count], data: v))) }
        add("base_margin", baseMargin)
        add("tree_offsets", offsets)
        add("tree_groups", treeGroups)
        add("left_children", left)
        add("right_children", right)
        add("split_indices", split)
        add("split_conditions", cond)
        add("default_left", defLeft)

        let ref = { (name: String) in
            #"[{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [""# + name + #"", 0, 0]}}], "kwargs": {}}]"#
        }
        let modelJSON =
            #"{"class_name": "Functional", "config": {"name": "xgboost", "layers": ["#
            + #"{"class_name": "InputLayer", "name": "features", "config": {"name": "features", "batch_shape": [null, "#
            + String(numFeature) + #"]}, "inbound_nodes": []}, "#
            + #"{"class_name": "XGBoostTrees", "name": "margin", "config": {"name": "margin", "num_feature": "#
            + String(numFeature) + #", "num_groups": "# + String(groups) + #"}, "inbound_nodes": "# + ref("features")
            + #"}, {"class_name": "XGBoostObjective", "name": "probability", "config": {"name": "probability", "objective": ""#
            + objective + #""}, "inbound_nodes": "# + ref("margin") + "}], "
            + #""input_layers": [["features", 0, 0]], "output_layers": [["probability", 0, 0], ["margin", 0, 0]]}}"#
        return Result(modelJSON: modelJSON, tensors: tensors, numFeatures: numFeature, objective: objective)
    }
}
