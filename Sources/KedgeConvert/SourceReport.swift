import KedgeCore

/// What a Keras model file holds and whether Kedge can convert it, layer by layer (for `kedge inspect` on a
/// model file, and for the server to show before converting). Problems are collected, not thrown.
public struct SourceReport: Sendable {
    public struct Weight: Sendable {
        /// The canonical name the bundle would use; nil when the layer could not be matched.
        public var name: String?
        /// The name in the file (`dense/kernel:0`, `layers/dense/vars/0`).
        public var storedName: String
        public var shape: [Int]
    }

    public struct Layer: Sendable {
        /// `outer/inner` for layers of nested models.
        public var path: String
        public var className: String
        public var supported: Bool
        public var weights: [Weight]
        /// Why this layer cannot be converted (message as `convert` would throw it), nil when it can.
        public var problem: String?
    }

    public var source: String
    public var format: SourceFormat
    public var kerasVersion: String?
    public var backend: String?
    public var modelName: String
    public var modelClass: String
    public var inputs: [PortInfo]
    public var outputNames: [String]
    public var layers: [Layer]

    public var problems: [String] { layers.compactMap(\.problem) }
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.shape.reduce(1, *) } } }
}

extension Converter {
    /// Reads the file's architecture and weights without converting. Throws only when the file itself cannot
    /// be read as a Keras model (not HDF5/zip, no architecture); per-layer problems land in the report.
    public static func inspect(input: String, configPath: String? = nil) throws -> SourceReport {
        let src = try SourceModel.open(input, configPath: configPath)
        let planner = src.planner
        var layers: [SourceReport.Layer] = []
        var inputs: [PortInfo] = []
        for (i, n) in src.config.inputNames.enumerated() {
            inputs.append(PortInfo(name: n, shape: i < src.config.inputShapes.count ? src.config.inputShapes[i] : nil))
        }

        func shape(_ path: String) -> [Int] {
            (try? src.weights.datasetShape(path)) ?? []
        }

        func report(_ slots: [WeightPlanner.Slot]) {
            for slot in slots {
                do {
                    let plan = try planner.plan(slot)
                    var paths: [String] = []
                    for p in plan where !paths.contains(p.layerPath) { paths.append(p.layerPath) }
                    if paths.isEmpty { paths = leafPaths(slot.entry, slot.path) }
                    for path in paths {
                        let mine = plan.filter { $0.layerPath == path }
                        layers.append(
                            SourceReport.Layer(
                                path: path, className: className(of: path, in: slot) ?? slot.entry.className,
                                supported: true,
                                weights: mine.map {
                                    .init(name: $0.weightName, storedName: $0.storedName, shape: shape($0.datasetPath))
                                },
                                problem: nil))
                    }
                } catch {
                    let message = (error as? KedgeError)?.message ?? "\(error)"
                    let stored = storedWeights(slot, planner).map {
                        SourceReport.Weight(name: nil, storedName: $0.name, shape: shape($0.path))
                    }
                    layers.append(
                        SourceReport.Layer(
                            path: slot.path, className: slot.entry.className,
                            supported: slot.entry.inner != nil || LayerCatalog.isSupported(slot.entry.className),
                            weights: stored, problem: message))
                }
            }
        }

        report(try planner.slots(of: src.config, group: "", pathPrefix: ""))
        return SourceReport(
            source: input, format: src.format, kerasVersion: src.kerasVersion, backend: src.backend,
            modelName: src.config.name, modelClass: src.config.className, inputs: inputs,
            outputNames: src.config.outputNames, layers: layers)
    }

    static func leafPaths(_ entry: LayerEntry, _ path: String) -> [String] {
        guard let inner = entry.inner else { return [path] }
        var out: [String] = []
        for e in inner.layers where e.className != "InputLayer" { out += leafPaths(e, path + "/" + e.name) }
        return out
    }

    static func className(of path: String, in slot: WeightPlanner.Slot) -> String? {
        func find(_ entry: LayerEntry, _ p: String) -> String? {
            if p == path { return entry.className }
            guard let inner = entry.inner else { return nil }
            for e in inner.layers { if let c = find(e, p + "/" + e.name) { return c } }
            return nil
        }
        return find(slot.entry, slot.path)
    }

    /// The raw weights the file holds for a layer, whatever the config says.
    static func storedWeights(_ slot: WeightPlanner.Slot, _ planner: WeightPlanner) -> [(name: String, path: String)] {
        guard let g = slot.group else { return [] }
        switch planner.layout {
        case .legacy:
            let names = (try? planner.file.stringListAttribute(g, "weight_names")) ?? nil
            return (names ?? []).map { (name: $0, path: join(g, $0)) }
        case .v3:
            return (try? planner.v3Variables(g, className: slot.entry.className)) ?? []
        }
    }
}
