/// The per-stage report of one cascade run, with the keys of tools/cascade/reference.py's `report()`, built in
/// the core so that the CLI and the wasm module print the same thing.
extension Cascade.Result {
    public func report(timings: [(String, Double)] = []) -> JSON {
        func n(_ v: Double) -> JSON { .number(v) }
        func ints(_ a: [Int]) -> JSON { .array(a.map { .number(Double($0)) }) }
        func doubles(_ a: [Double]) -> JSON { .array(a.map { .number($0) }) }
        func object(_ pairs: [(String, JSON)]) -> JSON {
            var o = JSONObject()
            for (k, v) in pairs { o[k] = v }
            return .object(o)
        }
        var heatSum = 0.0
        var heatMax = -Double.infinity
        for v in heatmap {
            heatSum += Double(v)
            heatMax = max(heatMax, Double(v))
        }
        var cands: [JSON] = []
        for (i, c) in candidates.enumerated() {
            cands.append(
                object([
                    ("index", n(Double(i))), ("first_index", n(Double(c.firstIndex))), ("voxels", n(Double(c.voxels))),
                    ("mass", n(c.mass)), ("max_p", n(c.maxP)), ("centroid", doubles(c.centroid)), ("center", ints(c.center)),
                    ("fp_logit", n(c.fpLogit)), ("fp_prob", n(c.fpProb)),
                ]))
        }
        var nods: [JSON] = []
        for nd in nodules {
            var pairs: [(String, JSON)] = [
                ("candidate", n(Double(nd.candidate))), ("center", ints(nd.center)), ("fp_logit", n(nd.fpLogit)),
                ("fp_prob", n(nd.fpProb)), ("box_raw", doubles(nd.boxRaw.map { Double($0) })),
                ("malignancy", n(nd.malignancy)),
            ]
            if let b = nd.box {
                pairs.append(
                    (
                        "box",
                        object([
                            ("z", n(Double(b.z))), ("cy", n(b.cy)), ("cx", n(b.cx)), ("h", n(b.h)), ("w", n(b.w)),
                            ("y0", n(b.y0)), ("x0", n(b.x0)), ("y1", n(b.y1)), ("x1", n(b.x1)),
                            ("diameter_mm", n(b.diameterMM)), ("patch_center", ints(b.patchCenter)),
                        ])
                    ))
            }
            nods.append(object(pairs))
        }
        var pairs: [(String, JSON)] = [
            ("sex", object([("male_prob", n(sexMaleProb))])),
            (
                "roi",
                object([
                    ("heatmap_sum", n(heatSum)), ("heatmap_max", n(heatmap.isEmpty ? 0 : heatMax)),
                    ("above_threshold", n(Double(heatmapAboveThreshold))),
                ])
            ),
            ("candidates", .array(cands)),
            ("nodules", .array(nods)),
            ("features", object(features.map { ($0.0, n($0.1)) })),
            ("feature_vector", doubles(features.map { Double(Float($0.1)) })),
            ("probability", n(probability)),
        ]
        if !timings.isEmpty { pairs.append(("timings_ms", object(timings.map { ($0.0, n($0.1)) }))) }
        return object(pairs)
    }
}
