#if !KEDGE_WASM_SINGLE_MODULE
    import KedgeCore
#endif

// The C ABI that web/kedge.js calls (documented in wasm/ABI.md). Every call that can fail returns 0 (or a
// positive handle) on success and -kind on failure, with the message readable through kedge_last_error_*.
// Pointers and lengths are wasm32 i32s; lengths count elements (bytes for strings, floats for data).

/// One loaded model and what the last calls left for JS to read.
final class ModelBox {
    let model: Model
    var staged: [Tensor?]
    /// Tensor lists JS can enumerate, indexed by the `which` selector (see `list(_:)`).
    let inputInfo: [Exported]
    let outputInfo: [Exported]
    var results: [Exported] = []
    var layerResults: [Exported] = []

    init(model: Model) {
        self.model = model
        staged = [Tensor?](repeating: nil, count: model.inputs.count)
        inputInfo = model.inputs.map { Exported(name: $0.name, shape: $0.shape, data: nil) }
        outputInfo = model.outputs.map { Exported(name: $0.name, shape: $0.shape, data: nil) }
    }

    func clearResults() {
        for r in results { r.free() }
        for r in layerResults { r.free() }
        results = []
        layerResults = []
    }

    func list(_ which: Int32) -> [Exported]? {
        switch which {
        case 0: return inputInfo
        case 1: return outputInfo
        case 2: return results
        case 3: return layerResults
        default: return nil
        }
    }

    deinit {
        clearResults()
        for e in inputInfo { e.free() }
        for e in outputInfo { e.free() }
    }
}

/// Live models; a handle is an index + 1, and a freed slot is reused.
var boxes: [ModelBox?] = []

func box(_ h: Int32) -> ModelBox? {
    let i = Int(h) - 1
    guard i >= 0, i < boxes.count else { return nil }
    return boxes[i]
}

func bytes(_ p: UnsafeRawPointer?, _ n: Int32) -> [UInt8] {
    guard let p, n > 0 else { return [] }
    return [UInt8](UnsafeRawBufferPointer(start: p, count: Int(n)))
}

/// Loads a model from the three bundle buffers (which JS may free right after). `flags` bit 0: keep every
/// Keras layer observable (no batch-norm folding or activation fusion), for recording layer outputs.
/// Returns a handle > 0, or -kind.
@_cdecl("kedge_model_create")
public func kedge_model_create(
    _ json: UnsafeRawPointer?, _ jsonLen: Int32, _ weights: UnsafeRawPointer?, _ weightsLen: Int32,
    _ meta: UnsafeRawPointer?, _ metaLen: Int32, _ flags: Int32
) -> Int32 {
    let model: Model
    do {
        model = try Model(
            modelJSON: bytes(json, jsonLen), weights: bytes(weights, weightsLen), metadata: bytes(meta, metaLen),
            options: Model.Options(fuse: flags & 1 == 0))
    } catch {
        return fail(error)
    }
    let b = ModelBox(model: model)
    if let free = boxes.firstIndex(where: { $0 == nil }) {
        boxes[free] = b
        return Int32(free + 1)
    }
    boxes.append(b)
    return Int32(boxes.count)
}

@_cdecl("kedge_model_free")
public func kedge_model_free(_ h: Int32) -> Int32 {
    guard box(h) != nil else { return fail(badHandleKind, "no model with handle \(h)") }
    boxes[Int(h) - 1] = nil
    while let last = boxes.last, last == nil { boxes.removeLast() }
    return 0
}

/// Copies one input (float32 data in C order plus its shape) into the model; it stays set for later runs.
@_cdecl("kedge_set_input")
public func kedge_set_input(
    _ h: Int32, _ index: Int32, _ data: UnsafePointer<Float>?, _ count: Int32, _ shape: UnsafePointer<Int32>?,
    _ rank: Int32
) -> Int32 {
    guard let b = box(h) else { return fail(badHandleKind, "no model with handle \(h)") }
    let i = Int(index)
    guard i >= 0, i < b.staged.count else {
        return fail(KedgeError(.invalidInput, "input index \(i) is out of range; the model takes \(b.staged.count) input(s): \(b.model.expectedInputs)"))
    }
    var dims: [Int] = []
    var n = 1
    for d in 0..<Int(max(rank, 0)) {
        let v = Int(shape![d])
        guard v >= 0 else { return fail(KedgeError(.invalidInput, "input '\(b.model.inputs[i].name)' has a negative dimension")) }
        dims.append(v)
        n *= v
    }
    guard n == Int(count) else {
        return fail(
            KedgeError(
                .invalidInput,
                "input '\(b.model.inputs[i].name)' has \(count) values but shape \(describeShape(dims)) needs \(n)"))
    }
    let values = n == 0 || data == nil ? [Float](repeating: 0, count: n) : [Float](UnsafeBufferPointer(start: data, count: n))
    b.staged[i] = Tensor(shape: dims, data: values)
    return 0
}

/// Runs the model on the staged inputs. `flags` bit 0: also record every layer's output (list 3).
@_cdecl("kedge_run")
public func kedge_run(_ h: Int32, _ flags: Int32) -> Int32 {
    guard let b = box(h) else { return fail(badHandleKind, "no model with handle \(h)") }
    b.clearResults()
    var x: [Tensor] = []
    for (i, t) in b.staged.enumerated() {
        guard let t else {
            return fail(KedgeError(.invalidInput, "input '\(b.model.inputs[i].name)' is not set; the model expects \(b.model.expectedInputs)"))
        }
        x.append(t)
    }
    let y: [Tensor]
    do {
        if flags & 1 != 0 {
            var layers: [Exported] = []
            y = try b.model.predict(x) { name, t in layers.append(Exported(name: name, shape: t.shape, data: t.data)) }
            b.layerResults = layers
        } else {
            y = try b.model.predict(x)
        }
    } catch {
        b.clearResults()
        return fail(error)
    }
    var out: [Exported] = []
    for (i, t) in y.enumerated() { out.append(Exported(name: b.model.outputs[i].name, shape: t.shape, data: t.data)) }
    b.results = out
    return 0
}

/// Clears the state stateful recurrent layers carry between runs.
@_cdecl("kedge_reset_states")
public func kedge_reset_states(_ h: Int32) -> Int32 {
    guard let b = box(h) else { return fail(badHandleKind, "no model with handle \(h)") }
    b.model.resetStates()
    return 0
}

/// Which SIMD build this module is: 1 = wasm SIMD128 (kedge.wasm), 2 = relaxed SIMD (kedge-relaxed.wasm), so
/// that kedge.js reports the backend it really got rather than the one it asked for.
@_cdecl("kedge_simd_variant")
public func kedge_simd_variant() -> Int32 {
    #if KEDGE_RELAXED_SIMD
        return 2
    #else
        return 1
    #endif
}

/// Which build this module is: 1 = kedge.wasm (feed-forward and convolutional families, KEDGE_WASM_SLIM), 2 =
/// kedge-full.wasm (everything). kedge.js moves from 1 to 2 when a model fails with code 10 (not in this build).
@_cdecl("kedge_build")
public func kedge_build() -> Int32 {
    #if KEDGE_WASM_SLIM
        return 1
    #else
        return 2
    #endif
}

// Tensor lists: `which` 0 = declared inputs, 1 = declared outputs (shapes may hold -1), 2 = outputs of the last
// run, 3 = layer outputs of the last recording run (execution order). Data pointers are 0 for lists 0 and 1.
// Everything read stays valid until the next kedge_run or kedge_model_free on that handle.

func entry(_ h: Int32, _ which: Int32, _ i: Int32) -> Exported? {
    guard let l = box(h)?.list(which), i >= 0, Int(i) < l.count else { return nil }
    return l[Int(i)]
}

@_cdecl("kedge_count")
public func kedge_count(_ h: Int32, _ which: Int32) -> Int32 {
    guard let l = box(h)?.list(which) else { return -1 }
    return Int32(l.count)
}

@_cdecl("kedge_name_ptr")
public func kedge_name_ptr(_ h: Int32, _ which: Int32, _ i: Int32) -> UnsafeMutablePointer<UInt8>? {
    entry(h, which, i)?.name.base
}

@_cdecl("kedge_name_len")
public func kedge_name_len(_ h: Int32, _ which: Int32, _ i: Int32) -> Int32 {
    Int32(entry(h, which, i)?.name.count ?? -1)
}

@_cdecl("kedge_shape_ptr")
public func kedge_shape_ptr(_ h: Int32, _ which: Int32, _ i: Int32) -> UnsafeMutablePointer<Int32>? {
    entry(h, which, i)?.shape
}

@_cdecl("kedge_rank")
public func kedge_rank(_ h: Int32, _ which: Int32, _ i: Int32) -> Int32 {
    Int32(entry(h, which, i)?.rank ?? -1)
}

@_cdecl("kedge_data_ptr")
public func kedge_data_ptr(_ h: Int32, _ which: Int32, _ i: Int32) -> UnsafeMutablePointer<Float>? {
    entry(h, which, i)?.data
}

@_cdecl("kedge_data_len")
public func kedge_data_len(_ h: Int32, _ which: Int32, _ i: Int32) -> Int32 {
    Int32(entry(h, which, i)?.count ?? -1)
}
