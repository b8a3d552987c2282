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

    /// Runs one of the cascade's models, its errors prefixed with the model's name.
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
        let r = try CascadeRun(cascade: self, volume: t)
        while let name = r.nextStage {
            stage(name)
            try r.step()
        }
        return r.result
    }
}
