/// How one Keras layer class (or several aliases of it) becomes a `Layer`.
struct LayerBuilder {
    /// Keras class names this builder accepts (Keras 1, 2 and 3 spellings).
    let classNames: [String]
    /// The layer's weight names in Keras's order, which is the order of `layer.weights`, of the `weight_names`
    /// attribute in .h5 files and of `vars/0..n` in .keras files. The converter names tensors with these.
    let weightNames: (LayerConfig) throws(KedgeError) -> [String]
    let make: (LayerSpec) throws(KedgeError) -> Layer

    init(
        _ classNames: [String],
        weights: @escaping (LayerConfig) throws(KedgeError) -> [String] = { _ throws(KedgeError) in [] },
        make: @escaping (LayerSpec) throws(KedgeError) -> Layer
    ) {
        self.classNames = classNames
        self.weightNames = weights
        self.make = make
    }
}

/// The registry of every supported Keras layer class. Each family file (named after Keras's own module)
/// contributes its builders; `docs/LAYERS.md` is generated from `familyClassNames` and `weightNames`.
public enum LayerCatalog {
    /// Families in the order docs/LAYERS.md lists them, each with its title.
    ///
    /// The wasm module comes in two builds (wasm/build.sh). `kedge.wasm` (`KEDGE_WASM_SLIM`) holds the families
    /// listed here first, those of feed-forward and convolutional models, and stays small; `fullBuildFamilies` (the
    /// sequence family in Layers/Sequence/, tree ensembles, the Keras 1 classes of Layers/Keras1.swift) are only in
    /// `kedge-full.wasm` and native builds. A model the small build cannot read fails with `.notInThisBuild`, and
    /// kedge.js then loads kedge-full.wasm and tries again, so the split never changes an answer.
    static let families: [(title: String, builders: [LayerBuilder])] = [
        ("core", coreBuilders),
        ("activations", activationBuilders),
        ("regularization", regularizationBuilders),
        ("reshaping", reshapingBuilders),
        ("convolutional", convolutionalBuilders),
        ("pooling", poolingBuilders),
        ("normalization", normalizationBuilders),
        ("merging", mergingBuilders),
        ("preprocessing", preprocessingBuilders),
    ] + fullBuildFamilies

    #if KEDGE_WASM_SLIM
    static let fullBuildFamilies: [(title: String, builders: [LayerBuilder])] = []
    #else
    static let fullBuildFamilies: [(title: String, builders: [LayerBuilder])] = [
        ("sequence (embedding, recurrent, attention, wrappers)", sequenceBuilders),
        ("trees (xgboost)", treeBuilders),
        ("Keras 1 (legacy layers)", keras1Builders),
    ]
    #endif

    static func builder(for className: String) -> LayerBuilder? {
        for family in families {
            for b in family.builders where b.classNames.contains(className) { return b }
        }
        return nil
    }

    public static var supportedClassNames: [String] {
        var out: [String] = []
        for family in families { for b in family.builders { out += b.classNames } }
        return out
    }

    public static func isSupported(_ className: String) -> Bool { builder(for: className) != nil }

    static func unsupported(_ className: String, layer: String) -> KedgeError {
        #if KEDGE_WASM_SLIM
        // Not knowing a class here may only mean it is in kedge-full.wasm; that build gives the final answer.
        return KedgeError(
            .notInThisBuild,
            "layer '\(layer)' has class '\(className)', which kedge.wasm leaves out (it may be in kedge-full.wasm)")
        #else
        KedgeError(
            .unsupportedLayer,
            "layer '\(layer)' has class '\(className)', which Kedge does not support; supported: "
                + supportedClassNames.joined(separator: ", "))
        #endif
    }

    /// The weight names a layer must have, in Keras's order (see `LayerBuilder.weightNames`).
    public static func weightNames(_ config: LayerConfig) throws(KedgeError) -> [String] {
        guard let b = builder(for: config.className) else { throw unsupported(config.className, layer: config.layerName) }
        return try b.weightNames(Keras1Config.translated(config))
    }

    static func make(_ spec: LayerSpec) throws(KedgeError) -> Layer {
        guard let b = builder(for: spec.className) else { throw unsupported(spec.className, layer: spec.name) }
        var s = spec
        s.config = Keras1Config.translated(spec.config)
        return try b.make(s)
    }
}

extension LayerCatalog {
    /// The catalog as docs/LAYERS.md lists it: each family's title and its builders' class names (aliases of one
    /// layer together), in catalog order. KedgeConvert's `LayerDocs` joins this with the option table.
    public static var familyClassNames: [(title: String, classNames: [[String]])] {
        families.map { f in (f.title, f.builders.map { $0.classNames }) }
    }

    /// Titles of the families that only kedge-full.wasm (and native builds) hold; docs/LAYERS.md marks them.
    public static var fullBuildFamilyTitles: [String] { fullBuildFamilies.map { $0.title } }
}
