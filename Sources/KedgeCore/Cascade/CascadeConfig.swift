/// `cascade.json` (docs/CASCADE.md): the models of a cascade and the glue between them, read into typed steps.
public struct CascadeConfig {
    public struct Window {
        public var lo: Float
        public var hi: Float
    }

    public var name: String
    public var shape: [Int]
    public var spacing: [Double]
    /// Model names (keys of `models`), each a bundle the caller loads.
    public var modelNames: [String]
    public var features: [String]

    public var sexWindow: Window
    public var roiWindow: Window
    public var threshold: Double
    public var connectivity: Int
    public var minVoxels: Int
    public var maxCandidates: Int
    public var fpCube: [Int]
    public var fpPad: Float
    public var fpWindow: Window
    public var fpLogitThreshold: Double
    public var nmsRadiusMM: Double
    public var maxNodules: Int
    public var boxPatch: [Int]
    public var boxOffsets: [Int]
    public var boxPad: Float
    /// Heatmap slices appended to the box model's HU channels (docs/CASCADE.md step 6); empty for a 3-channel box model.
    public var boxHeatmapOffsets: [Int]
    public var boxHeatmapPad: Float
    public var boxWindow: Window
    public var malignancyPatch: [Int]
    public var malignancyOffsets: [Int]
    public var malignancyPad: Float
    public var malignancyWindow: Window

    public static func parse(_ bytes: [UInt8]) throws(KedgeError) -> CascadeConfig {
        let j = try JSONParser.parse(bytes, what: "cascade.json")
        func fail(_ m: String) -> KedgeError { KedgeError(.invalidConfig, "cascade.json: " + m) }
        guard j["format"]?.string == "kedge-cascade" else { throw fail("'format' is not \"kedge-cascade\"") }
        guard j["version"]?.int == 1 else { throw fail("'version' must be 1") }
        var steps: [String: JSON] = [:]
        for s in j["steps"]?.array ?? [] { if let n = s["name"]?.string { steps[n] = s } }
        func step(_ n: String) throws(KedgeError) -> JSON {
            guard let s = steps[n] else { throw fail("no step named '\(n)'") }
            return s
        }
        func num(_ s: JSON, _ k: String, _ st: String) throws(KedgeError) -> Double {
            guard let d = s[k]?.double else { throw fail("step '\(st)' has no number '\(k)'") }
            return d
        }
        func ints(_ s: JSON?, _ what: String) throws(KedgeError) -> [Int] {
            guard let a = s?.array else { throw fail("\(what) must be a list of integers") }
            var out: [Int] = []
            for e in a {
                guard let i = e.int else { throw fail("\(what) must be a list of integers") }
                out.append(i)
            }
            return out
        }
        func window(_ st: String) throws(KedgeError) -> Window {
            let s = try step(st)
            guard let a = s["window"]?.array, a.count == 2, let lo = a[0].double, let hi = a[1].double, hi > lo else {
                throw fail("step '\(st)' needs a window [lo, hi] with hi > lo")
            }
            return Window(lo: Float(lo), hi: Float(hi))
        }
        let shape = try ints(j["input"]?["shape"], "input.shape")
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else { throw fail("input.shape must be [z, y, x]") }
        var spacing: [Double] = []
        for v in j["input"]?["spacing_mm"]?.array ?? [] { if let d = v.double { spacing.append(d) } }
        guard spacing.count == 3 else { throw fail("input.spacing_mm must have 3 numbers") }
        var features: [String] = []
        for f in j["features"]?.array ?? [] { if let s = f.string { features.append(s) } }
        for f in features where !CascadeFeatures.names.contains(f) {
            throw fail("feature '\(f)' is unknown; known: \(CascadeFeatures.names.joined(separator: ", "))")
        }
        let models = j["models"]?.object?.keys ?? []
        for m in ["sex", "roi", "fp", "box", "malignancy", "meta"] where !models.contains(m) {
            throw fail("models has no '\(m)'")
        }
        let cand = try step("candidates")
        let fp = try step("fp")
        let sel = try step("select")
        let box = try step("box")
        let mal = try step("malignancy")
        let connectivity = Int(try num(cand, "connectivity", "candidates"))
        guard connectivity == 6 || connectivity == 26 else { throw fail("connectivity must be 6 or 26") }
        let cube = try ints(fp["cube"], "fp.cube")
        let bp = try ints(box["patch"], "box.patch")
        let mp = try ints(mal["patch"], "malignancy.patch")
        guard cube.count == 3, bp.count == 2, mp.count == 2 else { throw fail("cube is [z, y, x], patches [h, w]") }
        return CascadeConfig(
            name: j["name"]?.string ?? "cascade", shape: shape, spacing: spacing, modelNames: models, features: features,
            sexWindow: try window("sex"), roiWindow: try window("roi"),
            threshold: try num(cand, "threshold", "candidates"), connectivity: connectivity,
            minVoxels: Int(try num(cand, "min_voxels", "candidates")),
            maxCandidates: Int(try num(cand, "max_candidates", "candidates")),
            fpCube: cube, fpPad: Float(try num(fp, "pad_hu", "fp")), fpWindow: try window("fp"),
            fpLogitThreshold: try num(sel, "fp_logit_threshold", "select"),
            nmsRadiusMM: try num(sel, "nms_radius_mm", "select"), maxNodules: Int(try num(sel, "max_nodules", "select")),
            boxPatch: bp, boxOffsets: try ints(box["dz_offsets"], "box.dz_offsets"), boxPad: Float(try num(box, "pad_hu", "box")),
            boxHeatmapOffsets: box["heatmap_dz_offsets"] == nil ? [] : try ints(box["heatmap_dz_offsets"], "box.heatmap_dz_offsets"),
            boxHeatmapPad: box["heatmap_pad"] == nil ? 0 : Float(try num(box, "heatmap_pad", "box")),
            boxWindow: try window("box"),
            malignancyPatch: mp, malignancyOffsets: try ints(mal["dz_offsets"], "malignancy.dz_offsets"),
            malignancyPad: Float(try num(mal, "pad_hu", "malignancy")), malignancyWindow: try window("malignancy"))
    }

    /// The bundle-relative model file names as cascade.json gives them (`file`), by model name.
    public static func modelFiles(_ bytes: [UInt8]) throws(KedgeError) -> [(String, String)] {
        let j = try JSONParser.parse(bytes, what: "cascade.json")
        var out: [(String, String)] = []
        guard let o = j["models"]?.object else { return out }
        for (i, k) in o.keys.enumerated() { if let f = o.values[i]["file"]?.string { out.append((k, f)) } }
        return out
    }
}
