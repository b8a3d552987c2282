/// A reference to one tensor in a Keras graph config: output `tensor` of call number `node` of `layer`.
public struct TensorRef: Equatable {
    public var layer: String
    public var node: Int
    public var tensor: Int
}

/// One entry of a model config's `layers` list.
public struct LayerEntry {
    public var name: String
    public var className: String
    public var config: LayerConfig
    /// One list of input tensors per call of the layer (a shared layer has several).
    public var inboundNodes: [[TensorRef]]
    /// Set when the layer is itself a model (Sequential/Functional/Model nested in another).
    public var inner: ModelConfig?
    /// Per call (parallel to `inboundNodes`, or empty when no call passes anything by keyword): keyword tensors
    /// such as `initial_state`, `mask`, `attention_mask`, and keyword options such as `use_causal_mask`.
    public var inboundKeywords: [CallKeywords] = []

    /// How config node indices of this layer are numbered: Keras 2 and 3 count a nested functional model's own
    /// construction node as node 0 (it is not in the outer config), so the outer graph's first call is node 1.
    /// See `_should_skip_first_node` (tf-keras) and `node_reindexing_map` (Keras 3 `Functional.get_config`).
    public var nodeIndexOffset: Int {
        guard let inner else { return 0 }
        if className == "Functional" || className == "Model" { return 1 }
        // tf-keras's Sequential is a Functional subclass: it starts with such a node when built on an InputLayer.
        if className == "Sequential" && inner.kerasMajor < 3 && inner.declaresInputLayer { return 1 }
        return 0
    }
}

/// What one call passes by keyword: Keras 3's `kwargs`, or the fourth element of a Keras 1/2 inbound entry.
public struct CallKeywords {
    /// Tensor arguments in order; a list (`initial_state=[h, c]`) gives one entry per element, nil for a None in it.
    public var tensors: [(name: String, ref: TensorRef?)] = []
    /// The other keyword values (`use_causal_mask`, `return_attention_scores`, `training`, ...).
    public var options = JSONObject()

    public init() {}

    /// Option holding a Keras 3 op node's positional arguments when some are constants (tensors as null).
    public static let positionalKey = "__positional__"

    public var isEmpty: Bool { tensors.isEmpty && options.count == 0 }
}

/// A Keras model config (Sequential of any era, Model/Functional of Keras 2 and 3), normalised into the
/// functional form: layers with explicit inbound nodes, plus the model's input and output tensors.
public struct ModelConfig {
    public var name: String
    public var className: String
    public var layers: [LayerEntry]
    public var inputs: [TensorRef]
    public var outputs: [TensorRef]
    /// Inputs are named by their InputLayer (Keras's `model.input_names`).
    public var inputNames: [String]
    /// Outputs by their layer, with `_<tensor index>` for any but a layer's first output.
    public var outputNames: [String]
    /// Declared input shapes with the batch dimension first; -1 where Keras has `None`.
    public var inputShapes: [[Int]]
    public var kerasMajor: Int
    /// True when the config lists its InputLayer(s) (a Sequential may instead declare its shape on its first layer).
    public var declaresInputLayer = true

    static let modelClassNames = ["Sequential", "Functional", "Model"]

    /// Parses the text of `model.json`: either `{"class_name": ..., "config": ...}` or a Keras.js-style wrapper
    /// that holds it under `model_config` / `modelTopology`.
    public static func parse(_ json: JSON, kerasVersion: String?) throws(KedgeError) -> ModelConfig {
        var root = json
        if let t = root["modelTopology"] { root = t }
        if let mc = root["model_config"] { root = mc }
        if let text = root.string { root = try JSONParser.parse(text, what: "model config") }
        let major = ModelConfig.kerasMajor(kerasVersion ?? root["keras_version"]?.string)
        guard let cls = root["class_name"]?.string else {
            throw KedgeError(.invalidConfig, "model config has no 'class_name'")
        }
        guard let cfg = root["config"] else { throw KedgeError(.invalidConfig, "model config has no 'config'") }
        return try parseModel(className: cls, config: cfg, kerasMajor: major)
    }

    public static func kerasMajor(_ version: String?) -> Int {
        guard let v = version, let first = v.utf8.first, first >= 0x31, first <= 0x39 else { return 3 }
        return Int(first - 0x30)
    }

    static func parseModel(className: String, config: JSON, kerasMajor: Int) throws(KedgeError) -> ModelConfig {
        switch className {
        case "Sequential": return try parseSequential(config, kerasMajor: kerasMajor)
        case "Functional", "Model": return try parseFunctional(config, className: className, kerasMajor: kerasMajor)
        default:
            throw KedgeError(.invalidConfig, "model class '\(className)' is not Sequential, Functional or Model")
        }
    }

    static func layerObject(_ l: JSON, index: Int, model: String) throws(KedgeError) -> (String, String, JSONObject) {
        guard let cls = l["class_name"]?.string else {
            throw KedgeError(.invalidConfig, "model '\(model)': layer #\(index) has no class_name")
        }
        let cfg = l["config"]?.object ?? JSONObject()
        guard let name = l["name"]?.string ?? cfg["name"]?.string else {
            throw KedgeError(.invalidConfig, "model '\(model)': layer #\(index) (\(cls)) has no name")
        }
        return (name, cls, cfg)
    }

    static func declaredInputShape(of cfg: LayerConfig) throws(KedgeError) -> [Int]? {
        for key in ["batch_shape", "batch_input_shape"] where cfg.has(key) { return try cfg.shape(key) }
        if cfg.has("input_shape") { return [-1] + (try cfg.shape("input_shape")) }
        if cfg.has("shape") { return [-1] + (try cfg.shape("shape")) }
        if cfg.has("input_dim") {  // Keras 1 Dense/Embedding
            return [-1, try cfg.int("input_dim")]
        }
        return nil
    }

    static func parseSequential(_ config: JSON, kerasMajor: Int) throws(KedgeError) -> ModelConfig {
        // Keras < 2.2 wrote the layer list itself; later versions a dict with "layers".
        let list: [JSON]
        var name = "sequential"
        if let a = config.array {
            list = a
        } else if let a = config["layers"]?.array {
            list = a
            name = config["name"]?.string ?? name
        } else {
            throw KedgeError(.invalidConfig, "Sequential config has no layer list")
        }
        guard !list.isEmpty else { throw KedgeError(.invalidConfig, "Sequential model '\(name)' has no layers") }
        var layers: [LayerEntry] = []
        var previous: TensorRef? = nil
        var last: TensorRef? = nil
        var inputName = ""
        var inputShape: [Int] = []
        for (i, l) in list.enumerated() {
            let (lname, cls, cfgObj) = try layerObject(l, index: i, model: name)
            let cfg = LayerConfig(layerName: lname, className: cls, json: cfgObj)
            if cls == "InputLayer" {
                guard previous == nil else {
                    throw KedgeError(.invalidConfig, "Sequential model '\(name)': InputLayer '\(lname)' is not first")
                }
                guard let s = try declaredInputShape(of: cfg) else {
                    throw KedgeError(.invalidConfig, "InputLayer '\(lname)' has no batch_shape/batch_input_shape")
                }
                layers.append(LayerEntry(name: lname, className: cls, config: cfg, inboundNodes: [], inner: nil))
                previous = TensorRef(layer: lname, node: 0, tensor: 0)
                inputName = lname
                inputShape = s
                continue
            }
            if previous == nil {
                // Keras 2 Sequential without InputLayer: the shape sits on the first layer, and Keras names the
                // input `<first layer>_input`.
                var shape = try declaredInputShape(of: cfg)
                if shape == nil, let b = config["build_input_shape"], b.array != nil {
                    shape = try LayerConfig(layerName: name, className: "Sequential", json: config.object!).shape(
                        "build_input_shape")
                }
                var innerShape: [Int]? = nil
                if modelClassNames.contains(cls), let c = l["config"] {
                    innerShape = try parseModel(className: cls, config: c, kerasMajor: kerasMajor).inputShapes.first
                }
                guard let s = shape ?? innerShape else {
                    throw KedgeError(
                        .invalidConfig, "Sequential model '\(name)': first layer '\(lname)' declares no input shape")
                }
                inputName = lname + "_input"
                inputShape = s
                var icfg = JSONObject()
                icfg["name"] = .string(inputName)
                layers.append(
                    LayerEntry(
                        name: inputName, className: "InputLayer",
                        config: LayerConfig(layerName: inputName, className: "InputLayer", json: icfg), inboundNodes: [],
                        inner: nil))
                previous = TensorRef(layer: inputName, node: 0, tensor: 0)
            }
            var inner: ModelConfig? = nil
            if modelClassNames.contains(cls), let c = l["config"] {
                inner = try parseModel(className: cls, config: c, kerasMajor: kerasMajor)
            }
            let entry = LayerEntry(name: lname, className: cls, config: cfg, inboundNodes: [[previous!]], inner: inner)
            layers.append(entry)
            // As Keras would write the reference to this layer's output (see `Graph`'s `inboundKey`).
            previous = TensorRef(layer: lname, node: kerasMajor < 3 ? entry.nodeIndexOffset : 0, tensor: 0)
            last = TensorRef(layer: lname, node: entry.nodeIndexOffset, tensor: 0)
        }
        guard let out = last else { throw KedgeError(.invalidConfig, "Sequential model '\(name)' has no layers") }
        var model = ModelConfig(
            name: name, className: "Sequential", layers: layers, inputs: [TensorRef(layer: inputName, node: 0, tensor: 0)],
            outputs: [out], inputNames: [inputName], outputNames: [out.layer], inputShapes: [inputShape],
            kerasMajor: kerasMajor)
        model.declaresInputLayer = list.first?["class_name"]?.string == "InputLayer"
        return model
    }

    /// `[name, node, tensor]` or a list of them; Keras 3 writes a single one flat.
    static func refList(_ json: JSON?, key: String, model: String) throws(KedgeError) -> [TensorRef] {
        guard let a = json?.array else { throw KedgeError(.invalidConfig, "model '\(model)' has no '\(key)'") }
        if let r = ref(a) { return [r] }
        var out: [TensorRef] = []
        for e in a {
            guard let ea = e.array, let r = ref(ea) else {
                throw KedgeError(.invalidConfig, "model '\(model)': '\(key)' entries must be [layer, node, tensor]")
            }
            out.append(r)
        }
        return out
    }

    static func ref(_ a: [JSON]) -> TensorRef? {
        guard a.count >= 3, let l = a[0].string, let n = a[1].int, let t = a[2].int else { return nil }
        return TensorRef(layer: l, node: n, tensor: t)
    }

    /// Collects the tensors of one call, in argument order. Keras 3 writes `{"args": [...], "kwargs": {...}}` with
    /// `__keras_tensor__` objects (nested in lists for merge layers); Keras 1/2 write `[[layer, node, tensor, kwargs], ...]`.
    static func parseNode(_ node: JSON, layer: String) throws(KedgeError) -> [TensorRef] {
        try parseCall(node, layer: layer).args
    }

    /// A call's positional tensors and what it passes by keyword. Keras 3 keeps keyword tensors under `kwargs`;
    /// Keras 2 repeats the call's kwargs as the fourth element of every entry, tensors as `[layer, node, tensor]`.
    static func parseCall(_ node: JSON, layer: String) throws(KedgeError) -> (args: [TensorRef], keywords: CallKeywords) {
        var refs: [TensorRef] = []
        var kw = CallKeywords()
        if let o = node.object, o["args"] != nil {
            collectKerasTensors(o["args"]!, into: &refs)
            // Keras 3 op nodes take constants positionally (`not_equal(x, 0)` for a mask): keep the argument list,
            // tensors as null, for the layer to read.
            if let args = o["args"]!.array, args.contains(where: { isConstant($0) }) {
                kw.options[CallKeywords.positionalKey] = .array(args.map { isConstant($0) ? $0 : .null })
            }
            if let kwargs = o["kwargs"]?.object {
                for k in kwargs.keys {
                    let v = kwargs[k]!
                    if containsKerasTensor(v) {
                        collectKeywordTensors(v, name: k, into: &kw, keras3: true)
                    } else {
                        kw.options[k] = v
                    }
                }
            }
        } else if let a = node.array {
            for (i, e) in a.enumerated() {
                guard let ea = e.array, let r = ref(ea) else {
                    throw KedgeError(.invalidConfig, "layer '\(layer)': cannot read an inbound node entry")
                }
                refs.append(r)
                if i == 0, ea.count >= 4, let kwargs = ea[3].object {
                    for k in kwargs.keys {
                        let v = kwargs[k]!
                        if isKeras2Ref(v) {
                            collectKeywordTensors(v, name: k, into: &kw, keras3: false)
                        } else {
                            kw.options[k] = v
                        }
                    }
                }
            }
        } else {
            throw KedgeError(.invalidConfig, "layer '\(layer)': inbound node is neither a list nor {args, kwargs}")
        }
        return (refs, kw)
    }

    static func isConstant(_ j: JSON) -> Bool {
        switch j {
        case .number, .bool, .string: return true
        default: return false
        }
    }

    static func containsKerasTensor(_ j: JSON) -> Bool {
        switch j {
        case .array(let a): return a.contains { containsKerasTensor($0) }
        case .object(let o): return o["class_name"]?.string == "__keras_tensor__"
        default: return false
        }
    }

    /// `[layer, node, tensor]`, or a list of them (None entries allowed).
    static func isKeras2Ref(_ j: JSON) -> Bool {
        guard let a = j.array, !a.isEmpty else { return false }
        if ref(a) != nil { return true }
        var any = false
        for e in a {
            if e.isNull { continue }
            guard let ea = e.array, ref(ea) != nil else { return false }
            any = true
        }
        return any
    }

    static func collectKeywordTensors(_ j: JSON, name: String, into kw: inout CallKeywords, keras3: Bool) {
        switch j {
        case .null:
            kw.tensors.append((name, nil))
        case .array(let a):
            if !keras3, let r = ref(a) {
                kw.tensors.append((name, r))
            } else {
                for e in a { collectKeywordTensors(e, name: name, into: &kw, keras3: keras3) }
            }
        case .object(let o):
            if o["class_name"]?.string == "__keras_tensor__", let h = o["config"]?["keras_history"]?.array, let r = ref(h) {
                kw.tensors.append((name, r))
            }
        default:
            break
        }
    }

    static func collectKerasTensors(_ j: JSON, into refs: inout [TensorRef]) {
        switch j {
        case .array(let a):
            for e in a { collectKerasTensors(e, into: &refs) }
        case .object(let o):
            if o["class_name"]?.string == "__keras_tensor__", let h = o["config"]?["keras_history"]?.array, let r = ref(h) {
                refs.append(r)
            }
        default:
            break
        }
    }

    static func parseFunctional(_ config: JSON, className: String, kerasMajor: Int) throws(KedgeError) -> ModelConfig {
        let name = config["name"]?.string ?? "model"
        guard let list = config["layers"]?.array else {
            throw KedgeError(.invalidConfig, "model '\(name)' has no 'layers'")
        }
        var layers: [LayerEntry] = []
        for (i, l) in list.enumerated() {
            let (lname, cls, cfgObj) = try layerObject(l, index: i, model: name)
            var nodes: [[TensorRef]] = []
            var keywords: [CallKeywords] = []
            for n in l["inbound_nodes"]?.array ?? [] {
                let (args, kw) = try parseCall(n, layer: lname)
                nodes.append(args)
                keywords.append(kw)
            }
            if keywords.allSatisfy({ $0.isEmpty }) { keywords = [] }
            var inner: ModelConfig? = nil
            if modelClassNames.contains(cls), let c = l["config"] {
                inner = try parseModel(className: cls, config: c, kerasMajor: kerasMajor)
            }
            let opModule = try OpNodes.module(of: l, name: lname, className: cls, kerasMajor: kerasMajor)
            layers.append(
                LayerEntry(
                    name: lname, className: cls,
                    config: LayerConfig(layerName: lname, className: cls, json: cfgObj, opModule: opModule),
                    inboundNodes: nodes, inner: inner, inboundKeywords: keywords))
        }
        let inputs = try refList(config["input_layers"], key: "input_layers", model: name)
        let outputs = try refList(config["output_layers"], key: "output_layers", model: name)
        var shapes: [[Int]] = []
        for r in inputs {
            guard let l = layers.first(where: { $0.name == r.layer }) else {
                throw KedgeError(.invalidConfig, "model '\(name)': input layer '\(r.layer)' is not in its layers")
            }
            guard l.className == "InputLayer", let s = try declaredInputShape(of: l.config) else {
                throw KedgeError(.invalidConfig, "model '\(name)': input '\(r.layer)' is not an InputLayer with a shape")
            }
            shapes.append(s)
        }
        var outputNames: [String] = []
        for r in outputs { outputNames.append(r.tensor == 0 ? r.layer : r.layer + "_" + String(r.tensor)) }
        return ModelConfig(
            name: name, className: className, layers: layers, inputs: inputs, outputs: outputs,
            inputNames: inputs.map { $0.layer }, outputNames: outputNames, inputShapes: shapes, kerasMajor: kerasMajor)
    }
}
