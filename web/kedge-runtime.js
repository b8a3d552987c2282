// The thin layer over kedge.wasm's C ABI (wasm/ABI.md), shared by the worker, the inline (node / main thread)
// mode and the tests. It knows nothing of fetching: it takes bytes and returns Float32Arrays.

/** An error from the core (kind = KedgeError.Kind raw value) or from this wrapper (kind 0). */
export class KedgeError extends Error {
  constructor(message, kind = 0) {
    super(message)
    this.name = 'KedgeError'
    this.kind = kind
    this.kindName = KIND_NAMES[kind] ?? 'error'
  }
}

const KIND_NAMES = {
  1: 'invalidJSON', 2: 'invalidBundle', 3: 'unsupportedLayer', 4: 'invalidConfig', 5: 'missingWeight',
  6: 'shapeMismatch', 7: 'invalidInput', 8: 'invalidFile', 9: 'internalError', 10: 'notInThisBuild', 100: 'badHandle',
}

/** Error kind 10: kedge.wasm (the small build) leaves out a layer class the model needs; kedge-full.wasm may hold it. */
export const NOT_IN_THIS_BUILD = 10

// `which` selectors of kedge_count / kedge_name_* / kedge_shape_ptr / kedge_data_*.
const INPUTS = 0, OUTPUTS = 1, RESULTS = 2, LAYER_RESULTS = 3

const utf8 = new TextDecoder()

/** One instance of kedge.wasm (or kedge-full.wasm, or a relaxed flavour); it can hold several models. */
export class KedgeRuntime {
  /** @param {BufferSource|WebAssembly.Module|Response|Promise<Response>} source */
  static async instantiate(source) {
    let instance
    if (source instanceof WebAssembly.Module) {
      instance = await WebAssembly.instantiate(source, {})
    } else if (typeof Response !== 'undefined' && (source instanceof Response || source instanceof Promise)) {
      const res = await source
      if (!res.ok) throw new KedgeError(`could not fetch kedge.wasm from ${res.url}: HTTP ${res.status}`)
      if (WebAssembly.instantiateStreaming && (res.headers.get('content-type') || '').startsWith('application/wasm')) {
        instance = (await WebAssembly.instantiateStreaming(res, {})).instance
      } else {
        instance = (await WebAssembly.instantiate(await res.arrayBuffer(), {})).instance
      }
    } else {
      instance = (await WebAssembly.instantiate(source, {})).instance
    }
    return new KedgeRuntime(instance)
  }

  constructor(instance) {
    this.exports = instance.exports
    this.memory = instance.exports.memory
    this.exports._initialize()
  }

  /** 'wasm-relaxed-simd' (kedge-relaxed.wasm) or 'wasm-simd128' (kedge.wasm), as the module itself says. */
  get backend() { return this.exports.kedge_simd_variant?.() === 2 ? 'wasm-relaxed-simd' : 'wasm-simd128' }

  /**
   * 'kedge' (kedge.wasm: the feed-forward and convolutional families) or 'kedge-full' (kedge-full.wasm:
   * everything, with the cascade ABI), as the module itself says. Modules older than the split were full builds.
   */
  get build() { return this.exports.kedge_build?.() === 1 ? 'kedge' : 'kedge-full' }

  /** Bytes of wasm linear memory (grows, never shrinks). */
  get memoryBytes() { return this.memory.buffer.byteLength }

  lastError() {
    const e = this.exports
    const len = e.kedge_last_error_len()
    const msg = len > 0 ? utf8.decode(new Uint8Array(this.memory.buffer, e.kedge_last_error_ptr() >>> 0, len)) : 'unknown error'
    return new KedgeError(msg, e.kedge_last_error_kind())
  }

  check(code) {
    if (code < 0) throw this.lastError()
    return code
  }

  /** Copies bytes into a fresh wasm allocation; the caller frees it. */
  copyIn(bytes) {
    const view = bytes instanceof Uint8Array ? bytes : ArrayBuffer.isView(bytes)
      ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes)
    // Pointers are unsigned: above 2 GB an i32 arrives in JS as a negative number.
    const p = this.exports.kedge_alloc(view.byteLength) >>> 0
    if (!p) throw new KedgeError(`out of wasm memory allocating ${view.byteLength} bytes`)
    new Uint8Array(this.memory.buffer, p, view.byteLength).set(view)
    return p
  }

  /**
   * Loads a bundle from its three files' bytes. `keepLayers`: no fusion, so every Keras layer's output can be
   * recorded (Model.Options.fuse = false).
   */
  load(modelJSON, weights, metadata, { keepLayers = false } = {}) {
    const e = this.exports
    const bufs = [modelJSON, weights, metadata].map(b => [this.copyIn(b), b.byteLength])
    try {
      const h = e.kedge_model_create(bufs[0][0], bufs[0][1], bufs[1][0], bufs[1][1], bufs[2][0], bufs[2][1],
        keepLayers ? 1 : 0)
      return new KedgeModelHandle(this, this.check(h))
    } finally {
      for (const [p] of bufs) e.kedge_free(p)
    }
  }

  /**
   * `load`, moving to kedge-full.wasm when this module is kedge.wasm and leaves out a class the model needs (error
   * kind 10): `full()` returns (a promise of) a KedgeRuntime of kedge-full.wasm, or null when there is none to
   * try. The handle's `runtime` is the one that holds the model; a failure there is reported as it is (the full
   * build's message lists the supported classes).
   */
  async loadWithFallback(modelJSON, weights, metadata, { keepLayers = false, full = null } = {}) {
    try {
      return this.load(modelJSON, weights, metadata, { keepLayers })
    } catch (e) {
      if (e.kind !== NOT_IN_THIS_BUILD) throw e
      let other = null
      try {
        other = full ? await full() : null
      } catch (why) {
        throw new KedgeError(`${e.message}; this model needs kedge-full.wasm, which could not be loaded: ${why.message}`, e.kind)
      }
      if (!other) {
        throw new KedgeError(`${e.message}; this model needs kedge-full.wasm, and only kedge.wasm was given ` +
          '(pass kedge-full.wasm too, or a kedge.wasm location with kedge-full.wasm beside it)', e.kind)
      }
      if (other.build !== 'kedge-full') throw new KedgeError(`${e.message}; the module given as kedge-full.wasm is another kedge.wasm`, e.kind)
      return other.load(modelJSON, weights, metadata, { keepLayers })
    }
  }
}

/** A model inside a KedgeRuntime. */
export class KedgeModelHandle {
  constructor(runtime, handle) {
    this.runtime = runtime
    this.handle = handle
    /** [{name, shape}] with -1 for unknown dimensions. */
    this.inputs = this.list(INPUTS, false)
    this.outputs = this.list(OUTPUTS, false)
  }

  list(which, withData) {
    const e = this.runtime.exports, h = this.handle
    const n = e.kedge_count(h, which)
    const out = []
    for (let i = 0; i < n; i++) {
      const buf = this.runtime.memory.buffer
      const name = utf8.decode(new Uint8Array(buf, e.kedge_name_ptr(h, which, i) >>> 0, e.kedge_name_len(h, which, i)))
      const rank = e.kedge_rank(h, which, i)
      const shape = Array.from(new Int32Array(buf, e.kedge_shape_ptr(h, which, i) >>> 0, rank))
      const t = { name, shape }
      if (withData) t.data = new Float32Array(buf, e.kedge_data_ptr(h, which, i) >>> 0, e.kedge_data_len(h, which, i)).slice()
      out.push(t)
    }
    return out
  }

  /** Describes the inputs as Keras prints shapes, for error messages. */
  describeInputs() {
    return this.inputs.map(t => `${t.name} (${t.shape.map(d => d < 0 ? 'None' : d).join(', ')}${t.shape.length === 1 ? ',' : ''})`).join(', ')
  }

  /**
   * Works out the full shape of a flat input: unknown dimensions are solved from the length when there is only
   * one (usually the batch); an explicit shape is taken as given (the core checks it).
   */
  resolveShape(info, length, explicit) {
    if (explicit) return Array.from(explicit)
    const unknown = info.shape.filter(d => d < 0).length
    const known = info.shape.reduce((p, d) => d < 0 ? p : p * d, 1)
    const want = `input '${info.name}' expects shape (${info.shape.map(d => d < 0 ? 'None' : d).join(', ')})`
    if (unknown === 0) {
      if (length !== known) throw new KedgeError(`${want}: ${known} values, got ${length}`, 7)
      return info.shape.slice()
    }
    if (unknown > 1) {
      throw new KedgeError(`${want}, which has ${unknown} unknown dimensions: pass {data, shape} for it`, 7)
    }
    if (known === 0 || length === 0 || length % known !== 0) {
      throw new KedgeError(`${want}: a multiple of ${known} values, got ${length}`, 7)
    }
    return info.shape.map(d => d < 0 ? length / known : d)
  }

  /**
   * @param {Object<string, Float32Array|ArrayLike<number>|{data, shape}>} inputs by input name
   * @returns {{outputs: Array<{name, shape, data}>, layers: Array<{name, shape, data}>|null, stats}}
   */
  predict(inputs, { recordLayers = false } = {}) {
    const e = this.runtime.exports, h = this.handle
    if (inputs === null || typeof inputs !== 'object') {
      throw new KedgeError(`predict takes an object of inputs by name; the model expects ${this.describeInputs()}`, 7)
    }
    for (const name of Object.keys(inputs)) {
      if (!this.inputs.some(t => t.name === name)) {
        throw new KedgeError(`the model has no input '${name}'; it expects ${this.describeInputs()}`, 7)
      }
    }
    const t0 = now()
    this.inputs.forEach((info, i) => {
      let v = inputs[info.name]
      if (v === undefined) throw new KedgeError(`input '${info.name}' is missing; the model expects ${this.describeInputs()}`, 7)
      let explicit = null
      if (!ArrayBuffer.isView(v) && !Array.isArray(v) && v && v.data !== undefined) { explicit = v.shape; v = v.data }
      const data = v instanceof Float32Array ? v : Float32Array.from(v)
      const shape = this.resolveShape(info, data.length, explicit)
      const pd = this.runtime.copyIn(data)
      const ps = this.runtime.copyIn(Int32Array.from(shape))
      try {
        this.runtime.check(e.kedge_set_input(h, i, pd, data.length, ps, shape.length))
      } finally {
        e.kedge_free(pd)
        e.kedge_free(ps)
      }
    })
    const t1 = now()
    this.runtime.check(e.kedge_run(h, recordLayers ? 1 : 0))
    const t2 = now()
    const outputs = this.list(RESULTS, true)
    const layers = recordLayers ? this.list(LAYER_RESULTS, true) : null
    const t3 = now()
    return { outputs, layers, stats: { loadData: t1 - t0, forwardPass: t2 - t1, transferOutputs: t3 - t2 } }
  }

  resetStates() { this.runtime.check(this.runtime.exports.kedge_reset_states(this.handle)) }

  dispose() {
    if (this.handle > 0) this.runtime.exports.kedge_model_free(this.handle)
    this.handle = 0
  }
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now())

// (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
const RELAXED_SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1,
  0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11])
let relaxedSimd = null

/**
 * Whether this engine runs wasm relaxed SIMD, so that kedge-relaxed.wasm (fused multiply-add in the GEMM, ~20%
 * faster on convolutions) can replace kedge.wasm: Chromium yes, node 20 only with --experimental-wasm-relaxed-simd.
 */
export function relaxedSimdSupported() {
  if (relaxedSimd === null) {
    try { relaxedSimd = typeof WebAssembly !== 'undefined' && WebAssembly.validate(RELAXED_SIMD_PROBE) } catch { relaxedSimd = false }
  }
  return relaxedSimd
}

// Module file names: [build][flavour].
const MODULE_FILES = {
  kedge: { simd128: 'kedge.wasm', relaxed: 'kedge-relaxed.wasm' },
  'kedge-full': { simd128: 'kedge-full.wasm', relaxed: 'kedge-full-relaxed.wasm' },
}
const MODULE_NAME = /(^|\/)(kedge(?:-full)?(?:-relaxed)?\.wasm)([?#].*)?$/

/**
 * Which module a location names by its file name: {build: 'kedge' | 'kedge-full', flavour: 'simd128' | 'relaxed'},
 * or null for any other name (a module under another name is taken as it is, never swapped).
 */
export function moduleOf(location) {
  const s = location instanceof URL ? location.href : typeof location === 'string' ? location : null
  const m = s === null ? null : MODULE_NAME.exec(s)
  if (!m) return null
  for (const [build, files] of Object.entries(MODULE_FILES)) {
    for (const [flavour, f] of Object.entries(files)) if (f === m[2]) return { build, flavour }
  }
  return null
}

/** The location of another module beside `location` (a path, a URL string or a URL), or null. */
function sibling(location, build, flavour) {
  if (location instanceof URL) {
    const v = sibling(location.href, build, flavour)
    return v === null ? null : new URL(v)
  }
  if (typeof location !== 'string') return null
  const m = MODULE_NAME.exec(location)
  return m ? location.slice(0, m.index) + m[1] + MODULE_FILES[build][flavour] + (m[3] ?? '') : null
}

/**
 * The file name of a module from what it says of itself: `build` 'kedge' | 'kedge-full' and `backend`
 * 'wasm-simd128' | 'wasm-relaxed-simd' (e.g. 'kedge-full-relaxed.wasm').
 */
export function moduleFileName(build, backend) {
  return MODULE_FILES[build === 'kedge' ? 'kedge' : 'kedge-full'][backend === 'wasm-relaxed-simd' ? 'relaxed' : 'simd128']
}

/**
 * Where the relaxed-SIMD flavour sits beside a simd128 module location (kedge.wasm -> kedge-relaxed.wasm,
 * kedge-full.wasm -> kedge-full-relaxed.wasm), or null.
 */
export function relaxedVariantOf(location) {
  return moduleOf(location)?.flavour === 'simd128' ? sibling(location, moduleOf(location).build, 'relaxed') : null
}

/**
 * Where kedge-full.wasm sits beside a kedge.wasm location, in the same flavour (kedge.wasm -> kedge-full.wasm,
 * kedge-relaxed.wasm -> kedge-full-relaxed.wasm): a path, a URL string (`/wasm/HASH/kedge.wasm` ->
 * `/wasm/HASH/kedge-full.wasm`) or a URL; null for any other name.
 */
export function fullVariantOf(location) {
  const m = moduleOf(location)
  return m?.build === 'kedge' ? sibling(location, 'kedge-full', m.flavour) : null
}
