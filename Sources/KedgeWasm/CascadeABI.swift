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
// Both paths run the core's CascadeRun (Cascade.run loops over it); web/test/cascade.test.mjs checks that they
// give byte-identical reports, and that both match the native CLI.

/// One cascade and what its last run left for JS to read.
final class CascadeHandle {
    let cascade: Cascade
    var stepper: CascadeRun? = nil
    /// Set by kedge_cascade_run, or by the stepper once it is done.
    var finished: Cascade.Result? = nil
    var report: CString? = nil
    var heatmap: UnsafeMutablePointer<Float>? = nil
    var heatmapCount = 0
    let stageNames: [CString] = CascadeRun.stages.map { CString($0) }

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
        c.stepper = try CascadeRun(cascade: c.cascade, volume: try volumeTensor(data, count, shape, rank))
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
    return Int32(CascadeRun.stages.count - s.next)
}

/// The index of the stage the next kedge_cascade_step runs; the stage count once done, -1 with no volume.
@_cdecl("kedge_cascade_next_stage")
public func kedge_cascade_next_stage(_ h: Int32) -> Int32 {
    guard let c = cascadeHandle(h) else { return noCascade(h) }
    if c.finished != nil { return Int32(CascadeRun.stages.count) }
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
