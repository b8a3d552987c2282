// Kedge in the browser and in node: Keras models in WebAssembly, with the API of Keras.js.
//
//   import { KerasJS } from './kedge.js'        // or: import { Model } from './kedge.js'
//   const model = new KerasJS.Model({
//     filepaths: { model: 'model.json', weights: 'model_weights.buf', metadata: 'model_metadata.json' },
//   })
//   model.events.on('loadingProgress', pct => ...)           // also 'progress' with {loaded, total} bytes
//   await model.ready()
//   const out = await model.predict({ input_1: new Float32Array(784) })   // {outputName: Float32Array}
//   model.predictStats                                        // {loadData, forwardPass, ...} in ms
//   model.dispose()
//
// The model runs in a dedicated Web Worker (web/kedge-worker.js) unless `worker: false`; in node it runs inline
// and `filepaths` may be paths on disk. Plain ES module: no npm, no build step.

import { KedgeError } from './kedge-runtime.js'
import { isNode, loadModel } from './kedge-fetch.js'

export { KedgeError }

const GPU_UNAVAILABLE = 'Kedge has no GPU backend yet: models run on the CPU in WebAssembly SIMD'

/** A minimal event emitter (Keras.js exposed `model.events.on(...)`). */
class Events {
  constructor() { this.handlers = new Map() }
  on(name, fn) { if (!this.handlers.has(name)) this.handlers.set(name, new Set()); this.handlers.get(name).add(fn); return this }
  off(name, fn) { this.handlers.get(name)?.delete(fn); return this }
  emit(name, ...args) { for (const fn of this.handlers.get(name) ?? []) fn(...args) }
}

export class Model {
  /**
   * @param {Object} config
   * @param {{model, weights, metadata}} config.filepaths URLs (or node paths, or ArrayBuffers/Blobs) of the bundle
   * @param {Object} [config.headers] extra HTTP headers for fetching
   * @param {boolean} [config.gpu] accepted for Keras.js compatibility; there is no GPU backend (see `gpu`)
   * @param {boolean} [config.transferLayerOutputs] record every layer's output (`layerOutputs`); turns off
   *   load-time fusion so each Keras layer's own output exists
   * @param {boolean} [config.worker] run in a Web Worker (default: true in browsers; node always runs inline)
   * @param {string|URL|BufferSource|WebAssembly.Module} [config.wasm] kedge.wasm (default: next to kedge.js). A model
   *   that needs a layer class kedge.wasm leaves out (recurrent, attention, Keras 1, trees) moves to kedge-full.wasm:
   *   the one beside a kedge.wasm location, or `wasmFull`
   * @param {string|URL|BufferSource|WebAssembly.Module} [config.wasmFull] kedge-full.wasm (default: beside `wasm`;
   *   needed when `wasm` is bytes or a Module and the model needs it)
   * @param {string|URL} [config.workerURL] kedge-worker.js (default: next to kedge.js)
   * @param {function({loaded, total})} [config.onProgress] same as `events.on('progress', ...)`
   */
  constructor(config = {}) {
    const {
      filepaths, headers = {}, gpu = false, transferLayerOutputs = false, worker, wasm, wasmFull, workerURL, onProgress,
    } = config
    if (!filepaths) throw new KedgeError('new Model({filepaths: {model, weights, metadata}}): filepaths is missing', 8)
    this.filepaths = filepaths
    this.headers = headers
    this.transferLayerOutputs = transferLayerOutputs
    /** Always false: requested or not, there is no GPU path; `gpuUnavailableReason` says why. */
    this.gpu = false
    this.gpuRequested = !!gpu
    this.gpuUnavailableReason = GPU_UNAVAILABLE
    /** 'wasm-simd128' or 'wasm-relaxed-simd': the SIMD flavour of the module that was loaded (set once ready). */
    this.backend = 'wasm-simd128'
    /** 'kedge' (kedge.wasm) or 'kedge-full' (kedge-full.wasm): the build that holds the model (set once ready). */
    this.build = 'kedge'
    this.useWorker = !isNode && typeof Worker !== 'undefined' && worker !== false
    this.events = new Events()
    if (onProgress) this.events.on('progress', onProgress)
    /** Declared inputs/outputs: [{name, shape}], -1 for unknown dimensions (set once ready). */
    this.inputs = []
    this.outputs = []
    this.inputLayerNames = []
    this.outputLayerNames = []
    /** Timings of the last `predict`, in ms: loadData (inputs into wasm), forwardPass, transferOutputs, total. */
    this.predictStats = {}
    /** Shapes of the last `predict`'s outputs, by name. */
    this.outputShapes = {}
    /** With `transferLayerOutputs`: every layer's output of the last `predict`, name -> {shape, data}, in execution order. */
    this.layerOutputs = new Map()
    this.isRunning = false
    this._queue = Promise.resolve()
    this._nextId = 1
    this._pending = new Map()
    if (gpu) console.warn(`kedge: gpu: true requested; ${GPU_UNAVAILABLE}`)
    this._ready = this._initialize(wasm, wasmFull, workerURL)
    this._ready.catch(() => {}) // reported through ready()/predict(), not as an unhandled rejection
  }

  /** Resolves when the bundle is loaded and validated; rejects with the reason if it cannot be. */
  ready() { return this._ready.then(() => true) }

  async _initialize(wasm, wasmFull, workerURL) {
    this.events.emit('loadingProgress', 0)
    const progress = p => {
      this.events.emit('progress', p)
      if (p.total) this.events.emit('loadingProgress', Math.round((100 * p.loaded) / p.total))
    }
    let info
    if (this.useWorker) {
      const filepaths = {}
      for (const [k, v] of Object.entries(this.filepaths)) filepaths[k] = typeof v === 'string' || v instanceof URL ? absolute(v) : v
      this._worker = new Worker(workerURL ?? new URL('./kedge-worker.js', import.meta.url), { type: 'module' })
      this._worker.onmessage = ({ data }) => this._receive(data, progress)
      this._worker.onerror = e => this._failAll(new KedgeError(`kedge worker failed: ${e.message || 'could not start'}`))
      const where = w => (typeof w === 'string' || w instanceof URL ? absolute(w) : w)
      info = await this._call({
        type: 'load', filepaths, headers: this.headers, keepLayers: this.transferLayerOutputs, wasm: where(wasm), wasmFull: where(wasmFull),
      })
    } else {
      this._handle = await loadModel({
        wasm, wasmFull, filepaths: this.filepaths, headers: this.headers, keepLayers: this.transferLayerOutputs, onProgress: progress,
      })
      const rt = this._handle.runtime
      info = { inputs: this._handle.inputs, outputs: this._handle.outputs, backend: rt.backend, build: rt.build }
    }
    this.backend = info.backend
    this.build = info.build
    this.inputs = info.inputs
    this.outputs = info.outputs
    this.inputLayerNames = info.inputs.map(t => t.name)
    this.outputLayerNames = info.outputs.map(t => t.name)
    this.events.emit('loadingProgress', 100)
    this.events.emit('initProgress', 100)
  }

  _call(msg, transfer = []) {
    return new Promise((resolve, reject) => {
      const id = this._nextId++
      this._pending.set(id, { resolve, reject })
      this._worker.postMessage({ ...msg, id }, transfer)
    })
  }

  _receive(data, progress) {
    if (data.type === 'progress') return progress({ loaded: data.loaded, total: data.total })
    const p = this._pending.get(data.id)
    if (!p) return
    this._pending.delete(data.id)
    if (data.error) p.reject(new KedgeError(data.error.message, data.error.kind))
    else p.resolve(data.result)
  }

  _failAll(err) {
    for (const p of this._pending.values()) p.reject(err)
    this._pending.clear()
  }

  /** Throws unless every input is given by a known name, with data. */
  _checkInputs(inputs) {
    const expected = () => this.inputs.map(t => `${t.name} (${t.shape.map(d => (d < 0 ? 'None' : d)).join(', ')})`).join(', ')
    if (inputs === null || typeof inputs !== 'object' || ArrayBuffer.isView(inputs) || Array.isArray(inputs)) {
      throw new KedgeError(`predict takes {inputName: Float32Array}; the model expects ${expected()}`, 7)
    }
    for (const name of Object.keys(inputs)) {
      if (!this.inputLayerNames.includes(name)) throw new KedgeError(`the model has no input '${name}'; it expects ${expected()}`, 7)
    }
    for (const name of this.inputLayerNames) {
      if (inputs[name] === undefined) throw new KedgeError(`input '${name}' is missing; the model expects ${expected()}`, 7)
    }
  }

  /**
   * Runs the model. Each input is a Float32Array (or array of numbers) of the input's size, with a batch size
   * worked out from the length, or `{data, shape}` with an explicit shape.
   * @returns {Promise<Object<string, Float32Array>>} outputs by name
   */
  predict(inputs) {
    const run = this._queue.then(() => this._predict(inputs))
    this._queue = run.catch(() => {})
    return run
  }

  async _predict(inputs) {
    await this._ready
    if (this._disposed) throw new KedgeError('the model was disposed')
    this._checkInputs(inputs)
    const t0 = now()
    this.isRunning = true
    let r
    try {
      r = this.useWorker
        ? await this._call({ type: 'predict', inputs, recordLayers: this.transferLayerOutputs })
        : this._handle.predict(inputs, { recordLayers: this.transferLayerOutputs })
    } finally {
      this.isRunning = false
    }
    this.predictStats = { ...r.stats, total: now() - t0 }
    const out = {}
    this.outputShapes = {}
    for (const t of r.outputs) {
      out[t.name] = t.data
      this.outputShapes[t.name] = t.shape
    }
    this.layerOutputs = new Map((r.layers ?? []).map(t => [t.name, { shape: t.shape, data: t.data }]))
    return out
  }

  /** Clears recurrent state carried between calls by stateful layers. */
  async resetStates() {
    await this._ready
    if (this.useWorker) await this._call({ type: 'resetStates' })
    else this._handle.resetStates()
  }

  /** Bytes of wasm memory the model's instance holds (for leak checks). */
  async memoryBytes() {
    await this._ready
    return this.useWorker ? this._call({ type: 'memory' }) : this._handle.runtime.memoryBytes
  }

  /** Frees the model (and its worker). Later `predict` calls reject. */
  async dispose() {
    if (this._disposed) return
    this._disposed = true
    try { await this._ready } catch { /* nothing loaded */ }
    if (this._worker) {
      try { await this._call({ type: 'dispose' }) } catch { /* worker already gone */ }
      this._worker.terminate()
    } else {
      this._handle?.dispose()
    }
  }
}

/** Keras.js exported a namespace; `new KerasJS.Model({...})` keeps working. */
export const KerasJS = { Model }
export default KerasJS

function absolute(u) {
  const base = typeof document !== 'undefined' ? document.baseURI : typeof location !== 'undefined' ? location.href : undefined
  return base ? new URL(u, base).href : String(u)
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now())
