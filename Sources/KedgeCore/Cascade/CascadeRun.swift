/// One run of a cascade on one volume, one stage per `step()`: `Cascade.run` loops over it, and the wasm module
/// calls it stage by stage so that a worker can time each stage and post progress between calls (the module has no
/// clock). Keeping a single implementation is what makes the one-call and the stepped reports byte-identical.
public final class CascadeRun {
    public static let stages = ["sex", "roi", "candidates", "fp", "select", "box", "malignancy", "meta"]

    public let cascade: Cascade
    let volume: Volume
    public private(set) var result = Cascade.Result()
    /// The index in `stages` of the stage the next `step()` runs; `stages.count` when done.
    public private(set) var next = 0
    private var candidates: [CascadeCandidate] = []
    private var logits: [Float] = []
    private var nodules: [CascadeNodule] = []

    /// Checks the volume's shape against cascade.json before any stage runs.
    public init(cascade: Cascade, volume t: Tensor) throws(KedgeError) {
        let c = cascade.config
        guard t.shape == c.shape else {
            if t.rank == 2 || (t.rank == 3 && t.shape[0] == 1) {
                throw KedgeError(
                    .invalidInput,
                    "this is a single slice \(describeShape(t.shape)); the cascade needs a whole chest CT volume of \(describeShape(c.shape)) (z, y, x) voxels"
                )
            }
            throw KedgeError(
                .invalidInput,
                "the volume has shape \(describeShape(t.shape)); this cascade expects \(describeShape(c.shape)) (z, y, x) in HU at spacing \(Int(c.spacing[0] * 10))/10 x \(Int(c.spacing[1] * 10))/10 x \(Int(c.spacing[2] * 10))/10 mm"
            )
        }
        self.cascade = cascade
        volume = try Volume(t)
    }

    public var done: Bool { next >= CascadeRun.stages.count }
    public var nextStage: String? { done ? nil : CascadeRun.stages[next] }

    /// Runs the next stage (nothing once done).
    public func step() throws(KedgeError) {
        guard let stage = nextStage else { return }
        let c = cascade.config
        let vol = volume
        let Z = c.shape[0]
        let Y = c.shape[1]
        let X = c.shape[2]
        switch stage {
        case "sex":
            result.sexMaleProb = Double(
                try cascade.run("sex", Glue.window(vol.data, c.sexWindow), shape: [1, Z, Y, X, 1]).data[0])
        case "roi":
            let heat = try cascade.run("roi", Glue.window(vol.data, c.roiWindow), shape: [Z, Y, X, 1])
            guard heat.count == Z * Y * X else {
                throw KedgeError(
                    .shapeMismatch, "cascade model 'roi' gives \(describeShape(heat.shape)), not one value per voxel")
            }
            result.heatmap = heat.data
            let t32 = Float(c.threshold)
            for v in heat.data where v >= t32 { result.heatmapAboveThreshold += 1 }
        case "candidates":
            candidates = Glue.candidates(result.heatmap, shape: c.shape, config: c)
            result.candidates = candidates
        case "fp":
            if !candidates.isEmpty {
                var batch: [Float] = []
                for cd in candidates {
                    batch += Glue.window(Glue.crop3d(vol, center: cd.center, size: c.fpCube, pad: c.fpPad), c.fpWindow)
                }
                logits = try cascade.run("fp", batch, shape: [candidates.count] + c.fpCube + [1]).data
                guard logits.count == candidates.count else {
                    throw KedgeError(
                        .shapeMismatch, "cascade model 'fp' gives \(logits.count) values for \(candidates.count) cubes")
                }
            }
            for i in candidates.indices {
                candidates[i].fpLogit = Double(logits[i])
                candidates[i].fpProb = Glue.sigmoid(Double(logits[i]))
            }
            result.candidates = candidates
        case "select":
            nodules = []
            for i in Glue.selectNodules(candidates, logits: logits, config: c) {
                nodules.append(
                    CascadeNodule(
                        candidate: i, center: candidates[i].center, fpLogit: candidates[i].fpLogit,
                        fpProb: candidates[i].fpProb))
            }
            result.nodules = nodules
        case "box":
            if !nodules.isEmpty {
                let heat = Volume(depth: Z, height: Y, width: X, data: result.heatmap)
                var batch: [Float] = []
                for n in nodules { batch += Glue.boxInput(vol, heat: heat, center: n.center, config: c) }
                let channels = c.boxOffsets.count + c.boxHeatmapOffsets.count
                let out = try cascade.run("box", batch, shape: [nodules.count] + c.boxPatch + [channels]).data
                guard out.count == 4 * nodules.count else {
                    throw KedgeError(.shapeMismatch, "cascade model 'box' must give 4 values per patch")
                }
                for i in nodules.indices {
                    nodules[i].boxRaw = Array(out[(4 * i)..<(4 * i + 4)])
                    nodules[i].box = CascadeBox(
                        center: nodules[i].center, size: c.boxPatch, raw: nodules[i].boxRaw, spacing: c.spacing)
                }
            }
            result.nodules = nodules
        case "malignancy":
            if !nodules.isEmpty {
                var batch: [Float] = []
                for n in nodules {
                    let p = Glue.crop2d(
                        vol, center: n.box!.patchCenter, size: c.malignancyPatch, offsets: c.malignancyOffsets,
                        pad: c.malignancyPad)
                    batch += Glue.window(p, c.malignancyWindow)
                }
                let out = try cascade.run(
                    "malignancy", batch, shape: [nodules.count] + c.malignancyPatch + [c.malignancyOffsets.count]
                ).data
                guard out.count == nodules.count else {
                    throw KedgeError(.shapeMismatch, "cascade model 'malignancy' must give 1 value per patch")
                }
                for i in nodules.indices { nodules[i].malignancy = Double(out[i]) }
            }
            result.nodules = nodules
        default:  // "meta"
            let f = CascadeFeatures.compute(sex: result.sexMaleProb, logits: logits, nodules: nodules)
            var vec: [Float] = []
            result.features = []
            for name in c.features {
                result.features.append((name, f[name]!))
                vec.append(Float(f[name]!))
            }
            let p = try cascade.run("meta", vec, shape: [1, vec.count])
            guard p.count == 1 else {
                throw KedgeError(.shapeMismatch, "cascade model 'meta' must give 1 probability, gives \(p.count) values")
            }
            result.probability = Double(p.data[0])
        }
        next += 1
    }
}
