import KedgeCore

/// Where a file keeps its weights.
enum WeightLayout: Equatable {
    /// `model.save("x.h5")` and `save_weights("x.h5")` of Keras 1/2/tf-keras, and Keras 3's legacy .h5: one
    /// group per layer under `root` with a `weight_names` attribute listing its datasets in Keras order.
    case legacy(root: String)
    /// Keras 3's `model.weights.h5` (inside .keras, or from `save_weights("x.weights.h5")`): groups named
    /// after the layer classes, `layers/<snake_class>[_N]/vars/0..n`.
    case v3
}

/// One tensor of the bundle and the dataset it comes from.
struct PlannedWeight {
    /// The bundle's `layer_name` (`outer/inner` inside a nested model).
    var layerPath: String
    var className: String
    /// Canonical name from `LayerCatalog.weightNames`.
    var weightName: String
    /// The name the file gives it (`dense/kernel:0`, `vars/0`), for messages.
    var storedName: String
    var datasetPath: String
}

/// A weight `LayerCatalog` asks for.
struct ExpectedWeight {
    var layerPath: String
    /// The layer's own name (last path component): tf-keras names a nested model's weights by it alone.
    var layerName: String
    var className: String
    var weightName: String
}

/// Decides which dataset of the file becomes which `(layer_name, weight_name)` of the bundle.
///
/// Names are matched when the file's names identify the weights (`conv/kernel:0` -> `kernel`); otherwise
/// position decides (the i-th stored weight of a layer is its i-th canonical weight), which is what .keras
/// files (`vars/0`) and old files with unusual names need. Either way the counts must agree.
struct WeightPlanner {
    let file: HDF5File
    /// The file as the user named it, first word of every message.
    let source: String
    let layout: WeightLayout

    func fail(_ kind: KedgeError.Kind, _ message: String) -> KedgeError { KedgeError(kind, "\(source): \(message)") }

    /// Prefixes a core error (unsupported layer, bad config value) with the file.
    func wrap(_ e: KedgeError) -> KedgeError {
        e.message.hasPrefix(source + ":") ? e : KedgeError(e.kind, "\(source): \(e.message)")
    }

    /// Every tensor of the model, in config layer order and each layer's Keras weight order.
    func plan(_ config: ModelConfig) throws -> [PlannedWeight] {
        var out: [PlannedWeight] = []
        for slot in try slots(of: config, group: "", pathPrefix: "") { out += try plan(slot) }
        return out
    }

    // MARK: locating layers

    /// A config layer and the group of the file that holds its weights (nil when the file has none for it).
    struct Slot {
        var entry: LayerEntry
        var path: String
        var group: String?
    }

    func slots(of config: ModelConfig, group: String, pathPrefix: String) throws -> [Slot] {
        switch layout {
        case .legacy(let root):
            var out: [Slot] = []
            for e in config.layers where e.className != "InputLayer" {
                let g = join(root, e.name)
                out.append(Slot(entry: e, path: pathPrefix + e.name, group: file.isGroup(g) ? g : nil))
            }
            return out
        case .v3:
            return try v3Slots(of: config, group: group, pathPrefix: pathPrefix)
        }
    }

    /// Keras 3 names a layer's group by its class (`dense`, `dense_1`, ... counted in `model.layers` order), not
    /// by the user's name; files from Keras 3.x onwards also store that name as an attribute, which wins.
    func v3Slots(of config: ModelConfig, group: String, pathPrefix: String) throws -> [Slot] {
        let container = join(group, "layers")
        var byName: [String: String] = [:]
        if file.isGroup(container) {
            for child in try file.children(container) {
                let g = join(container, child)
                guard file.isGroup(g) else { continue }
                let named = try file.stringAttribute(join(g, "vars"), "name") ?? file.stringAttribute(g, "name")
                if let n = named { byName[n] = g }
            }
        }
        var used: [String: Int] = [:]
        var out: [Slot] = []
        for e in config.layers {
            // A Sequential's `layers` leaves out its InputLayer; a Functional's includes it.
            if e.className == "InputLayer" && config.className == "Sequential" { continue }
            let auto = join(container, KerasNaming.unique(KerasNaming.snakeCase(e.className), &used))
            if e.className == "InputLayer" { continue }
            let g = byName[e.name] ?? auto
            out.append(Slot(entry: e, path: pathPrefix + e.name, group: file.isGroup(g) ? g : nil))
        }
        return out
    }

    // MARK: matching

    func expected(_ entry: LayerEntry, path: String) throws -> [ExpectedWeight] {
        if let inner = entry.inner {
            var out: [ExpectedWeight] = []
            for e in inner.layers where e.className != "InputLayer" {
                out += try expected(e, path: path + "/" + e.name)
            }
            return out
        }
        let names: [String]
        do throws(KedgeError) { names = try LayerCatalog.weightNames(entry.config) } catch { throw wrap(error) }
        return names.map {
            ExpectedWeight(layerPath: path, layerName: entry.name, className: entry.className, weightName: $0)
        }
    }

    func plan(_ slot: Slot) throws -> [PlannedWeight] {
        switch layout {
        case .legacy: return try planLegacy(slot)
        case .v3: return try planV3(slot)
        }
    }

    func describe(_ e: LayerEntry, _ path: String) -> String { "layer '\(path)' (\(e.className))" }

    func planLegacy(_ slot: Slot) throws -> [PlannedWeight] {
        let want = try expected(slot.entry, path: slot.path)
        let layer = describe(slot.entry, slot.path)
        guard let group = slot.group else {
            if want.isEmpty { return [] }
            throw fail(
                .missingWeight,
                "\(layer) needs weights \(list(want.map { qualified($0, slot.path) })), but the file has no weights for it"
                    + knownLayersHint())
        }
        guard let stored = try file.stringListAttribute(group, "weight_names") else {
            if want.isEmpty { return [] }
            throw fail(.invalidFile, "\(layer): group '\(group)' has no 'weight_names' attribute")
        }
        try checkCount(layer: layer, stored: stored, want: want, path: slot.path)
        let order = match(stored: stored, want: want, nested: slot.entry.inner != nil)
        var out: [PlannedWeight] = []
        for (i, w) in want.enumerated() {
            let s = stored[order[i]]
            let dataset = join(group, s)
            guard file.isDataset(dataset) else {
                throw fail(
                    .missingWeight,
                    "layer '\(w.layerPath)' (\(w.className)) weight '\(w.weightName)': the file lists it as '\(s)' but has no dataset '\(dataset)'"
                )
            }
            out.append(
                PlannedWeight(
                    layerPath: w.layerPath, className: w.className, weightName: w.weightName, storedName: s,
                    datasetPath: dataset))
        }
        return out
    }

    func planV3(_ slot: Slot) throws -> [PlannedWeight] {
        if let inner = slot.entry.inner {
            guard let g = slot.group else {
                if try expected(slot.entry, path: slot.path).isEmpty { return [] }
                throw fail(.missingWeight, "nested model \(describe(slot.entry, slot.path)) has no group in the file")
            }
            var out: [PlannedWeight] = []
            for s in try v3Slots(of: inner, group: g, pathPrefix: slot.path + "/") { out += try planV3(s) }
            return out
        }
        var want = try expected(slot.entry, path: slot.path)
        // A .keras file stores an RNN's list of cells and a TimeDistributed model's layers under auto-names in
        // sorted order; the core knows that order (Bidirectional and MultiHeadAttention are restored by
        // `v3ChildOrder` below instead).
        if WeightPlanner.v3ChildOrder[slot.entry.className] == nil, want.count > 1 {
            let order = try LayerCatalog.v3StorageOrder(slot.entry.config)
            if order.count == want.count { want = order.map { want[$0] } }
        }
        let layer = describe(slot.entry, slot.path)
        guard let group = slot.group else {
            if want.isEmpty { return [] }
            throw fail(
                .missingWeight,
                "\(layer) needs weights \(list(want.map(\.weightName))), but the file has no group for it"
                    + knownLayersHint())
        }
        let stored = try v3Variables(group, className: slot.entry.className)
        try checkCount(layer: layer, stored: stored.map(\.name), want: want, path: slot.path)
        return zip(want, stored).map { w, s in
            PlannedWeight(
                layerPath: w.layerPath, className: w.className, weightName: w.weightName, storedName: s.name,
                datasetPath: s.path)
        }
    }

    /// A layer's variables in a .keras weights file in the order Keras saved them: its own `vars/0..n`, then
    /// those of its child objects (an RNN's `cell`, a wrapper's `layer`) in `_walk_saveable` order.
    func v3Variables(_ group: String, className: String? = nil) throws -> [(name: String, path: String)] {
        var out: [(name: String, path: String)] = []
        let vars = join(group, "vars")
        if file.isGroup(vars) {
            var indexed: [(Int, String)] = []
            for c in try file.children(vars) {
                guard let i = Int(c), i >= 0 else {
                    throw fail(.invalidFile, "group '\(vars)' holds '\(c)'; expected variables named 0, 1, 2, ...")
                }
                indexed.append((i, c))
            }
            indexed.sort { $0.0 < $1.0 }
            for (k, (i, c)) in indexed.enumerated() {
                guard i == k else { throw fail(.missingWeight, "group '\(vars)' has no variable '\(k)'") }
                let p = join(vars, c)
                guard file.isDataset(p) else { throw fail(.invalidFile, "'\(p)' is not a dataset") }
                out.append((name: p, path: p))
            }
        }
        // Seed generators of random layers hold RNG state, not weights.
        let children = try file.children(group).filter { $0 != "vars" && !$0.hasPrefix("seed_generator") }
        let first = className.flatMap { WeightPlanner.v3ChildOrder[$0] } ?? []
        let ordered =
            first.filter(children.contains)
            + children.filter { !first.contains($0) }.sorted(by: KerasNaming.saveableOrder)
        for c in ordered where file.isGroup(join(group, c)) {
            out += try v3Variables(join(group, c))
        }
        return out
    }

    /// Layers whose `weights` list their sublayers in another order than the .keras file visits them
    /// (alphabetically): the sublayer attributes in `layer.weights` order. tf-keras's .keras files name the
    /// attention sublayers by their private attributes.
    static let v3ChildOrder: [String: [String]] = [
        "Bidirectional": ["forward_layer", "backward_layer"],
        "MultiHeadAttention": ["query_dense", "key_dense", "gate_dense", "value_dense", "output_dense"]
            .flatMap { [$0, "_" + $0] },
    ]

    func checkCount(layer: String, stored: [String], want: [ExpectedWeight], path: String) throws {
        guard stored.count != want.count else { return }
        let names = list(want.map { qualified($0, path) })
        throw fail(
            stored.count < want.count ? .missingWeight : .invalidFile,
            "\(layer) has \(stored.count) weight\(stored.count == 1 ? "" : "s") in the file (\(list(stored))) but its config needs \(want.count) (\(names)); the file and the config do not describe the same layer"
        )
    }

    /// For each wanted weight, the index of the stored weight that holds it: by name when every wanted weight
    /// finds exactly one stored name ending in it (`mha/query/kernel:0` for `query/kernel`; inside a nested
    /// model the name must also name the layer); else by position.
    func match(stored: [String], want: [ExpectedWeight], nested: Bool) -> [Int] {
        let comps = stored.map(KerasNaming.components(ofStoredName:))
        var taken = Set<Int>()
        var order: [Int] = []
        for w in want {
            let suffix = w.weightName.split(separator: "/").map(String.init)
            let candidates = comps.indices.filter { i in
                let c = comps[i]
                return c.count >= suffix.count && Array(c.suffix(suffix.count)) == suffix && !taken.contains(i)
                    && (!nested || c.dropLast(suffix.count).contains(w.layerName))
            }
            guard candidates.count == 1 else { return Array(want.indices) }
            taken.insert(candidates[0])
            order.append(candidates[0])
        }
        return order
    }

    func qualified(_ w: ExpectedWeight, _ path: String) -> String {
        w.layerPath == path ? w.weightName : String(w.layerPath.dropFirst(path.count + 1)) + "/" + w.weightName
    }

    func knownLayersHint() -> String {
        guard case .legacy(let root) = layout, let names = try? file.stringListAttribute(root, "layer_names") else {
            return ""
        }
        return "; the file has layers \(list(names))"
    }

    func list(_ xs: [String]) -> String { xs.isEmpty ? "none" : xs.joined(separator: ", ") }
}

func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "/" + b }
