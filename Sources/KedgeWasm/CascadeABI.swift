#if !KEDGE_WASM_SINGLE_MODULE
    import KedgeCore
#endif

// The lung-CT cascade through the C ABI. A cascade is made from cascade.json's bytes and model handles made with
// kedge_model_create; it runs either in one call (kedge_cascade_run: Cascade.run, the code `kedge cascade` runs
// natively) or one stage per call (kedge_cascade_start, then kedge_cascade_step until it returns 0), so that a worker
// can time each stage and post progress between calls: the module has no clock and imports nothing.
//
//   kedge_cascade_create(json, jsonLen, names, namesLen, handles, count)  -> cascade handle > 0 or -kind
//       names: the models' names (cascade.json `models` keys) joined by '\n'; handles: int32[count], same order.
//       The cascade keeps the models alive; their handles may be freed right after.
//   kedge_cascade_free(h)
//   kedge_cascade_run(h, data, count, shape, rank)    float32 (z, y, x) volume in HU, int32[rank] shape -> 0 or -kind
//   kedge_cascade_start(h, data, count, shape, rank)  copies and checks the volume; no stage runs yet
//   kedge_cascade_step(h)                              runs the next stage -> stages left (0: done) or -kind
//   kedge_cascade_next_stage(h)                        index of the next stage (= count when done, -1 before start)
//   kedge_cascade_stage_count(h), kedge_cascade_stage_name_ptr(h, i), kedge_cascade_stage_name_len(h, i)
//   kedge_cascade_report(h) -> byte length, kedge_cascade_report_ptr(h)
//       Cascade.Result.report() of the stages run so far, as `kedge cascade --json` prints it (without timings).
//   kedge_cascade_heatmap(h) -> float count (0 before the roi stage), kedge_cascade_heatmap_ptr(h)
// Report and heatmap stay valid until the next report (heatmap: the next start/run) or free.
//
// The stepper below uses the core's internal glue (wasm/build.sh compiles KedgeCore and KedgeWasm as one module)
// and repeats Cascade.run's order of operations stage by stage; web/test/cascade.test.mjs checks that both paths
// give byte-identical reports, and that both match the native CLI.

/// Cascade.run, cut at its `stage(...)` calls.
final class CascadeStepper {
    static let stages = ["sex", "roi", "candidates", "fp", "select", "box", "malignancy", "meta"]

    let cascade: Cascade
    let volume: Volume
    var result = Cascade.Result()
    var next = 0
    private var candidates: [CascadeCandidate] = []
    private var logits: [Float] = []
    private var nodules: [CascadeNodule] = []

    init(cascade: Cascade, volume t: Tensor) throws(KedgeError) {
        self.cascade = cascade
        try CascadeStepper.checkShape(t, cascade.config)
        volume = try Volume(t)
    }

    /// The same refusal Cascade.run gives, before any stage runs.
    static func checkShape(_ t: Tensor, _ c: CascadeConfig) throws(KedgeError) {
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
    }

    var done: Bool { next >= CascadeStepper.stages.count }

    func step() throws(KedgeError) {
        guard !done else { return }
        let c = cascade.config
        let vol = volume
        let Z = c.shape[0]
        let Y = c.shape[1]
        let X = c.shape[2]
        switch CascadeStepper.stages[next] {
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
                var batch: [Float] = []
                for n in nodules {
                    let p = Glue.crop2d(vol, center: n.center, size: c.boxPatch, offsets: c.boxOffsets, pad: c.boxPad)
                    batch += Glue.window(p, c.boxWindow)
                }
                let out = try cascade.run("box", batch, shape: [nodules.count] + c.boxPatch + [c.boxOffsets.count]).data
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
            result.probability = Double(p.data[0])
        }
        next += 1
    }
}

/// One cascade and what its last run left for JS to read.
final class CascadeHandle {
    let cascade: Cascade
    var stepper: CascadeStepper? = nil
    /// Set by kedge_cascade_run, or by the stepper once it is done.
    var finished: Cascade.Result? = nil
    var report: CString? = nil
    var heatmap: UnsafeMutablePointer<Float>? = nil
    var heatmapCount = 0
    let stageNames: [CString] = CascadeStepper.stages.map { CString($0) }

    init(cascade: Cascade) { self.cascade = cascade }

    var current: Cascade.Result? { finished ?? stepper?.result }

    func clear() {
        stepper = nil
        finished = nil
        report?.free()
        report = nil
        heatmap?.deallocate()
        heatmap = nil
        heatmapCount = 0
    }

    deinit {
        clear()
        for s in stageNames { s.free() }
    }
}

var cascades: [CascadeHandle?] = []

func cascadeHandle(_ h: Int32) -> CascadeHandle? {
    let i = Int(h) - 1
    guard i >= 0, i < cascades.count else { return nil }
    return cascades[i]
}

func noCascade(_ h: Int32) -> Int32 { fail(badHandleKind, "no cascade with handle \(h)") }

/// Makes a cascade from cascade.json's bytes and its models: `names` is the models' names (cascade.json's `models`
/// keys) separated by '\n', `handles` an int32[count] of kedge_model_create handles in the same order. The cascade
/// keeps the models alive: their handles may be freed afterwards. Returns a cascade handle > 0, or -kind.
@_cdecl("kedge_cascade_create")
public func kedge_cascade_create(
    _ config: UnsafeRawPointer?, _ configLen: Int32, _ names: UnsafeRawPointer?, _ namesLen: Int32,
    _ handles: UnsafePointer<Int32>?, _ count: Int32
) -> Int32 {
    var list: [String] = []
    var word: [UInt8] = []
    for b in bytes(names, namesLen) + [10] {
        if b == 10 {
            if !word.isEmpty { list.append(String(decoding: word, as: UTF8.self)) }
            word = []
        } else {
            word.append(b)
        }
    }
    guard list.count == Int(count), count >= 0 else {
        return fail(
            KedgeError(.invalidInput, "kedge_cascade_create: \(list.count) model name(s) but \(count) handle(s)"))
    }
    var models: [String: Model] = [:]
    for (i, name) in list.enumerated() {
        let h = handles![i]
        guard let b = box(h) else { return fail(badHandleKind, "cascade model '\(name)': no model with handle \(h)") }
        models[name] = b.model
    }
    let cascade: Cascade
    do {
        cascade = try Cascade(config: try CascadeConfig.parse(bytes(config, configLen)), models: models)
    } catch {
        return fail(error)
    }
    let c = CascadeHandle(cascade: cascade)
    if let free = cascades.firstIndex(where: { $0 == nil }) {
        cascades[free] = c
        return Int32(free + 1)
    }
    cascades.append(c)
    return Int32(cascades.count)
}

@_cdecl("kedge_cascade_free")
public func kedge_cascade_free(_ h: Int32) -> Int32 {
    guard cascadeHandle(h) != nil else { return noCascade(h) }
    cascades[Int(h) - 1] = nil
    while let last = cascades.last, last == nil { cascades.removeLast() }
    return 0
}

/// A (z, y, x) volume from JS: float32 data in C order and an int32[rank] shape.
func volumeTensor(_ data: UnsafePointer<Float>?, _ count: Int32, _ shape: UnsafePointer<Int32>?, _ rank: Int32)
    throws(KedgeError) -> Tensor
{
    var dims: [Int] = []
    var n = 1
    for d in 0..<Int(max(rank, 0)) {
        let v = Int(shape![d])
        guard v > 0 else { throw KedgeError(.invalidInput, "the volume has an empty or negative dimension") }
        dims.append(v)
        n *= v
    }
    guard n == Int(count), let data, n > 0 else {
        throw KedgeError(.invalidInput, "the volume has \(count) values but shape \(describeShape(dims)) needs \(n)")
    }
    return Tensor(shape: dims, data: [Float](UnsafeBufferPointer(start: data, count: n)))
}

/// Runs every stage in one call (Cascade.run, as `kedge cascade` does natively).
@_cdecl("kedge_cascade_run")
public func kedge_cascade_run(
    _ h: Int32, _ data: UnsafePointer<Float>?, _ count: Int32, _ shape: UnsafePointer<Int32>?, _ rank: Int32
) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    c.clear()
    do {
        c.finished = try c.cascade.run(volume: try volumeTensor(data, count, shape, rank))
    } catch {
        return fail(error)
    }
    return 0
}

/// Copies a volume in and checks its shape; stages then run one per kedge_cascade_step.
@_cdecl("kedge_cascade_start")
public func kedge_cascade_start(
    _ h: Int32, _ data: UnsafePointer<Float>?, _ count: Int32, _ shape: UnsafePointer<Int32>?, _ rank: Int32
) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    c.clear()
    do {
        c.stepper = try CascadeStepper(cascade: c.cascade, volume: try volumeTensor(data, count, shape, rank))
    } catch {
        return fail(error)
    }
    return 0
}

/// Runs the next stage (its name: kedge_cascade_stage_name of kedge_cascade_next_stage). Returns how many stages
/// are left (0: the result is final), or -kind; after a failure the run is over (start again).
@_cdecl("kedge_cascade_step")
public func kedge_cascade_step(_ h: Int32) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    guard let s = c.stepper else {
        return fail(KedgeError(.invalidInput, "kedge_cascade_step: no volume; call kedge_cascade_start first"))
    }
    do {
        try s.step()
    } catch {
        c.stepper = nil
        return fail(error)
    }
    if s.done { c.finished = s.result }
    return Int32(CascadeStepper.stages.count - s.next)
}

/// The index of the stage the next kedge_cascade_step runs; the stage count once done, -1 with no volume.
@_cdecl("kedge_cascade_next_stage")
public func kedge_cascade_next_stage(_ h: Int32) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    if c.finished != nil { return Int32(CascadeStepper.stages.count) }
    guard let s = c.stepper else { return -1 }
    return Int32(s.next)
}

@_cdecl("kedge_cascade_stage_count")
public func kedge_cascade_stage_count(_ h: Int32) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    return Int32(c.stageNames.count)
}

@_cdecl("kedge_cascade_stage_name_ptr")
public func kedge_cascade_stage_name_ptr(_ h: Int32, _ i: Int32) -> UnsafeMutablePointer<UInt8>? {
    guard let c = cascadeHandle(h), i >= 0, Int(i) < c.stageNames.count else { return nil }
    return c.stageNames[Int(i)].base
}

@_cdecl("kedge_cascade_stage_name_len")
public func kedge_cascade_stage_name_len(_ h: Int32, _ i: Int32) -> Int32 {
    guard let c = cascadeHandle(h), i >= 0, Int(i) < c.stageNames.count else { return -1 }
    return Int32(c.stageNames[Int(i)].count)
}

/// Builds the report (Cascade.Result.report(), the JSON `kedge cascade --json` prints, without timings) of the
/// run so far: after each step it holds the stages done. Returns its length in bytes; kedge_cascade_report_ptr
/// then points at it (UTF-8, NUL-terminated) until the next report, start, run or free.
@_cdecl("kedge_cascade_report")
public func kedge_cascade_report(_ h: Int32) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    guard let r = c.current else {
        return fail(KedgeError(.invalidInput, "kedge_cascade_report: the cascade has not been run"))
    }
    c.report?.free()
    c.report = CString(r.report().serialized())
    return Int32(c.report!.count)
}

@_cdecl("kedge_cascade_report_ptr")
public func kedge_cascade_report_ptr(_ h: Int32) -> UnsafeMutablePointer<UInt8>? {
    cascadeHandle(h)?.report?.base
}

/// The ROI heatmap (z, y, x) float32 once the roi stage ran: returns its element count (0 before), and
/// kedge_cascade_heatmap_ptr points at a copy valid until the next start, run or free.
@_cdecl("kedge_cascade_heatmap")
public func kedge_cascade_heatmap(_ h: Int32) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    guard let r = c.current, !r.heatmap.isEmpty else { return 0 }
    if c.heatmap == nil {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: r.heatmap.count)
        r.heatmap.withUnsafeBufferPointer { src in p.initialize(from: src.baseAddress!, count: src.count) }
        c.heatmap = p
        c.heatmapCount = r.heatmap.count
    }
    return Int32(c.heatmapCount)
}

@_cdecl("kedge_cascade_heatmap_ptr")
public func kedge_cascade_heatmap_ptr(_ h: Int32) -> UnsafeMutablePointer<Float>? {
    cascadeHandle(h)?.heatmap
}
