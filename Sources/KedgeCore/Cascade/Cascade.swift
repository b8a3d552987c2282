/// Runs a lung-CT cascade (cascade.json + its six models) on one volume, the same way natively and in wasm,
/// and keeps every stage's output so a viewer can show what each model saw.
public final class Cascade {
    public let config: CascadeConfig
    let models: [String: Model]

    /// Everything the cascade produced, stage by stage.
    public struct Result {
        public var sexMaleProb: Double = 0
        /// The ROI network's per-voxel nodule probability, (z, y, x).
        public var heatmap: [Float] = []
        public var heatmapAboveThreshold = 0
        public var candidates: [CascadeCandidate] = []
        public var nodules: [CascadeNodule] = []
        public var features: [(String, Double)] = []
        public var probability: Double = 0
    }

    /// `models` maps each name of cascade.json's `models` to a loaded bundle (the XGBoost one included).
    public init(config: CascadeConfig, models: [String: Model]) throws(KedgeError) {
        self.config = config
        for name in ["sex", "roi", "fp", "box", "malignancy", "meta"] where models[name] == nil {
            throw KedgeError(.invalidConfig, "cascade '\(config.name)': model '\(name)' was not loaded")
        }
        self.models = models
    }

    func run(_ name: String, _ data: [Float], shape: [Int]) throws(KedgeError) -> Tensor {
        let m = models[name]!
        do {
            return try m.predict([Tensor(shape: shape, data: data)])[0]
        } catch {
            throw KedgeError(error.kind, "cascade model '\(name)': \(error.message)")
        }
    }

    /// Runs every stage; `stage` is told each stage's name before it starts (for progress and timing).
    public func run(volume t: Tensor, stage: (String) -> Void = { _ in }) throws(KedgeError) -> Result {
        let c = config
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
        let vol = try Volume(t)
        var r = Result()
        let Z = c.shape[0], Y = c.shape[1], X = c.shape[2]

        stage("sex")
        r.sexMaleProb = Double(try run("sex", Glue.window(vol.data, c.sexWindow), shape: [1, Z, Y, X, 1]).data[0])

        stage("roi")
        let heat = try run("roi", Glue.window(vol.data, c.roiWindow), shape: [Z, Y, X, 1])
        guard heat.count == Z * Y * X else {
            throw KedgeError(.shapeMismatch, "cascade model 'roi' gives \(describeShape(heat.shape)), not one value per voxel")
        }
        r.heatmap = heat.data
        let t32 = Float(c.threshold)
        for v in heat.data where v >= t32 { r.heatmapAboveThreshold += 1 }

        stage("candidates")
        var cands = Glue.candidates(heat.data, shape: c.shape, config: c)

        stage("fp")
        var logits: [Float] = []
        if !cands.isEmpty {
            var batch: [Float] = []
            for cd in cands {
                batch += Glue.window(Glue.crop3d(vol, center: cd.center, size: c.fpCube, pad: c.fpPad), c.fpWindow)
            }
            logits = try run("fp", batch, shape: [cands.count] + c.fpCube + [1]).data
            guard logits.count == cands.count else {
                throw KedgeError(.shapeMismatch, "cascade model 'fp' gives \(logits.count) values for \(cands.count) cubes")
            }
        }
        for i in cands.indices {
            cands[i].fpLogit = Double(logits[i])
            cands[i].fpProb = Glue.sigmoid(Double(logits[i]))
        }
        r.candidates = cands

        stage("select")
        var nodules: [CascadeNodule] = []
        for i in Glue.selectNodules(cands, logits: logits, config: c) {
            nodules.append(CascadeNodule(candidate: i, center: cands[i].center, fpLogit: cands[i].fpLogit, fpProb: cands[i].fpProb))
        }

        stage("box")
        if !nodules.isEmpty {
            var batch: [Float] = []
            for n in nodules {
                let p = Glue.crop2d(vol, center: n.center, size: c.boxPatch, offsets: c.boxOffsets, pad: c.boxPad)
                batch += Glue.window(p, c.boxWindow)
            }
            let out = try run("box", batch, shape: [nodules.count] + c.boxPatch + [c.boxOffsets.count]).data
            guard out.count == 4 * nodules.count else {
                throw KedgeError(.shapeMismatch, "cascade model 'box' must give 4 values per patch")
            }
            for i in nodules.indices {
                nodules[i].boxRaw = Array(out[(4 * i)..<(4 * i + 4)])
                nodules[i].box = CascadeBox(center: nodules[i].center, size: c.boxPatch, raw: nodules[i].boxRaw, spacing: c.spacing)
            }
        }

        stage("malignancy")
        if !nodules.isEmpty {
            var batch: [Float] = []
            for n in nodules {
                let p = Glue.crop2d(
                    vol, center: n.box!.patchCenter, size: c.malignancyPatch, offsets: c.malignancyOffsets, pad: c.malignancyPad)
                batch += Glue.window(p, c.malignancyWindow)
            }
            let out = try run("malignancy", batch, shape: [nodules.count] + c.malignancyPatch + [c.malignancyOffsets.count]).data
            guard out.count == nodules.count else {
                throw KedgeError(.shapeMismatch, "cascade model 'malignancy' must give 1 value per patch")
            }
            for i in nodules.indices { nodules[i].malignancy = Double(out[i]) }
        }
        r.nodules = nodules

        stage("meta")
        let f = CascadeFeatures.compute(sex: r.sexMaleProb, logits: logits, nodules: nodules)
        var vec: [Float] = []
        for name in c.features {
            r.features.append((name, f[name]!))
            vec.append(Float(f[name]!))
        }
        let p = try run("meta", vec, shape: [1, vec.count])
        r.probability = Double(p.data[0])
        return r
    }
}
