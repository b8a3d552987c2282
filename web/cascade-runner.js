// The JS side of kedge-full.wasm's cascade ABI (Sources/KedgeWasm/CascadeABI.swift, wasm/ABI.md "Cascade"): one
// cascade.json plus its models in a KedgeRuntime, run in one call or one stage per call. Used by the page's worker
// (web/cascade-worker.js) and the node tests; it takes bytes and returns plain objects.

import { KedgeError } from './kedge-runtime.js'

const utf8 = new TextDecoder()
const enc = new TextEncoder()
const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now())

/** The model names of a cascade.json (its `models` keys), each to be loaded as a bundle. */
export function cascadeModelNames(config) {
  return Object.keys(config.models ?? {})
}

export class CascadeRunner {
  /**
   * @param {KedgeRuntime} runtime
   * @param {Uint8Array} configBytes cascade.json
   * @param {Object<string, {model, weights, metadata}>} bundles each model's three bundle files, by model name
   */
  static create(runtime, configBytes, bundles) {
    const e = runtime.exports
    if (!e.kedge_cascade_create) {
      throw new KedgeError(runtime.build === 'kedge'
        ? 'kedge.wasm has no cascade ABI (kedge_cascade_create): the cascade needs kedge-full.wasm'
        : 'this module has no cascade ABI (kedge_cascade_create); rebuild it with wasm/build.sh')
    }
    const names = Object.keys(bundles)
    const handles = []
    try {
      for (const n of names) {
        const b = bundles[n]
        try {
          handles.push(runtime.load(b.model, b.weights, b.metadata).handle)
        } catch (err) {
          throw new KedgeError(`cascade model '${n}': ${err.message}`, err.kind)
        }
      }
      const pc = runtime.copyIn(configBytes)
      const pn = runtime.copyIn(enc.encode(names.join('\n')))
      const ph = runtime.copyIn(Int32Array.from(handles))
      try {
        const h = runtime.check(e.kedge_cascade_create(pc, configBytes.byteLength, pn, enc.encode(names.join('\n')).byteLength, ph, handles.length))
        return new CascadeRunner(runtime, h)
      } finally {
        e.kedge_free(pc); e.kedge_free(pn); e.kedge_free(ph)
      }
    } finally {
      // The cascade holds its own references to the models.
      for (const h of handles) e.kedge_model_free(h)
    }
  }

  constructor(runtime, handle) {
    this.runtime = runtime
    this.handle = handle
    const e = runtime.exports
    const n = e.kedge_cascade_stage_count(handle)
    /** Stage names in run order (sex, roi, candidates, fp, select, box, malignancy, meta). */
    this.stages = []
    for (let i = 0; i < n; i++) {
      this.stages.push(utf8.decode(new Uint8Array(runtime.memory.buffer, e.kedge_cascade_stage_name_ptr(handle, i), e.kedge_cascade_stage_name_len(handle, i))))
    }
  }

  _volumeCall(fn, data, shape) {
    const rt = this.runtime
    const f = data instanceof Float32Array ? data : Float32Array.from(data)
    const pd = rt.copyIn(f)
    const ps = rt.copyIn(Int32Array.from(shape))
    try {
      rt.check(fn(this.handle, pd, f.length, ps, shape.length))
    } finally {
      rt.exports.kedge_free(pd)
      rt.exports.kedge_free(ps)
    }
  }

  /** Runs every stage in one call (the core's Cascade.run, as natively); returns the report. */
  run(data, shape) {
    this._volumeCall(this.runtime.exports.kedge_cascade_run, data, shape)
    return this.report()
  }

  /** Copies the volume in and checks its shape; then call step() until it returns remaining 0. */
  start(data, shape) {
    this._volumeCall(this.runtime.exports.kedge_cascade_start, data, shape)
  }

  /** The index of the stage step() runs next (stages.length once done). */
  get nextStage() { return this.runtime.exports.kedge_cascade_next_stage(this.handle) }

  /** Runs the next stage: {stage, ms, remaining}. */
  step() {
    const i = this.nextStage
    const t0 = now()
    const remaining = this.runtime.check(this.runtime.exports.kedge_cascade_step(this.handle))
    return { stage: this.stages[i], index: i, ms: now() - t0, remaining }
  }

  /** The report of the stages run so far (the JSON `kedge cascade --json` prints, without timings). */
  report() {
    return JSON.parse(this.reportText())
  }

  reportText() {
    const e = this.runtime.exports
    const n = this.runtime.check(e.kedge_cascade_report(this.handle))
    return utf8.decode(new Uint8Array(this.runtime.memory.buffer, e.kedge_cascade_report_ptr(this.handle), n))
  }

  /** The ROI heatmap (z, y, x) as a Float32Array copy, or null before the roi stage. */
  heatmap() {
    const e = this.runtime.exports
    const n = this.runtime.check(e.kedge_cascade_heatmap(this.handle))
    if (n === 0) return null
    return new Float32Array(this.runtime.memory.buffer, e.kedge_cascade_heatmap_ptr(this.handle), n).slice()
  }

  dispose() {
    if (this.handle > 0) this.runtime.exports.kedge_cascade_free(this.handle)
    this.handle = 0
  }
}
