// Getting bytes: bundle files and the wasm modules, from URLs (streaming fetch with progress), from disk in node,
// or from bytes/Blobs the page already has (a dropped file); and loading a model into the right module. Shared by
// kedge.js (inline mode), the worker and kedge-node.mjs.

import { KedgeError, KedgeRuntime, fullVariantOf, relaxedSimdSupported, relaxedVariantOf } from './kedge-runtime.js'

export const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined' &&
  typeof WorkerGlobalScope === 'undefined'

/** The names the three bundle files have on disk and in `filepaths`. */
export const BUNDLE_FILES = { model: 'model.json', weights: 'model_weights.buf', metadata: 'model_metadata.json' }

function isURL(s) { return /^(https?|blob|data):/i.test(s) }

/**
 * Opens a source for reading: returns {size (or null), read(onChunk) -> Uint8Array}.
 * @param {string|URL|ArrayBuffer|ArrayBufferView|Blob} source
 */
async function open(source, headers, what) {
  if (source instanceof ArrayBuffer) source = new Uint8Array(source)
  if (ArrayBuffer.isView(source)) {
    const bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
    return { size: bytes.byteLength, read: async onChunk => { onChunk(bytes.byteLength); return bytes } }
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return { size: source.size, read: async onChunk => { const b = new Uint8Array(await source.arrayBuffer()); onChunk(b.byteLength); return b } }
  }
  const s = String(source)
  if (isNode && !isURL(s)) {
    const { readFile, stat } = await import('node:fs/promises')
    const path = s.startsWith('file:') ? (await import('node:url')).fileURLToPath(s) : s
    let size
    try { size = (await stat(path)).size } catch (e) { throw new KedgeError(`cannot read ${what} at ${path}: ${e.code || e.message}`, 8) }
    return { size, read: async onChunk => { const b = new Uint8Array(await readFile(path)); onChunk(b.byteLength); return b } }
  }
  let res
  try {
    res = await fetch(s, { headers })
  } catch (e) {
    throw new KedgeError(`cannot fetch ${what} from ${s}: ${e.message}`, 8)
  }
  if (!res.ok) throw new KedgeError(`cannot fetch ${what} from ${s}: HTTP ${res.status} ${res.statusText}`, 8)
  const len = res.headers.get('content-length')
  // A compressed response's content-length counts compressed bytes, so it is only a hint for progress.
  const size = len !== null && !res.headers.get('content-encoding') ? Number(len) : null
  return {
    size,
    read: async onChunk => {
      if (!res.body || !res.body.getReader) { const b = new Uint8Array(await res.arrayBuffer()); onChunk(b.byteLength); return b }
      const reader = res.body.getReader()
      const chunks = []
      let n = 0
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        chunks.push(value)
        n += value.byteLength
        onChunk(value.byteLength)
      }
      if (chunks.length === 1) return chunks[0]
      const out = new Uint8Array(n)
      let o = 0
      for (const c of chunks) { out.set(c, o); o += c.byteLength }
      return out
    },
  }
}

/**
 * Reads the three bundle files at once. `onProgress({loaded, total})`: bytes so far of all three; total is null
 * until every size is known (or when a server does not say).
 */
export async function loadBundle(filepaths, { headers = {}, onProgress = () => {} } = {}) {
  if (!filepaths || typeof filepaths !== 'object') {
    throw new KedgeError('filepaths must be {model, weights, metadata} (URLs, paths, or bytes)', 8)
  }
  for (const k of Object.keys(BUNDLE_FILES)) {
    if (filepaths[k] === undefined || filepaths[k] === null) throw new KedgeError(`filepaths.${k} (${BUNDLE_FILES[k]}) is missing`, 8)
  }
  const keys = Object.keys(BUNDLE_FILES)
  const sources = await Promise.all(keys.map(k => open(filepaths[k], headers, BUNDLE_FILES[k])))
  const total = sources.every(s => s.size !== null) ? sources.reduce((a, s) => a + s.size, 0) : null
  let loaded = 0
  onProgress({ loaded, total })
  const bytes = await Promise.all(sources.map(s => s.read(n => { loaded += n; onProgress({ loaded, total }) })))
  return Object.fromEntries(keys.map((k, i) => [k, bytes[i]]))
}

const isModule = s => typeof WebAssembly !== 'undefined' && s instanceof WebAssembly.Module
const isLocation = s => typeof s === 'string' || s instanceof URL

/**
 * A wasm module as bytes or a Module. `build` 'kedge' (the default) is kedge.wasm; 'kedge-full' is kedge-full.wasm,
 * which `source` then names itself or is found beside (a kedge.wasm location gives the kedge-full.wasm beside
 * it). Without a source: next to kedge.js, else the build output of a source checkout (`../wasm/out/`). Where the
 * engine runs relaxed SIMD, each simd128 location is first tried as its relaxed flavour beside it (`variant`:
 * 'auto'; 'simd128' never does). `onChunk(n)` counts the bytes read; `onSize(size)` is told a module's size
 * (null if unknown) before its bytes come.
 */
export async function loadWasm(source, headers = {}, { variant = 'auto', build = 'kedge', onChunk = () => {}, onSize = () => {} } = {}) {
  if (isModule(source)) return source
  const defaults = ['./kedge.wasm', '../wasm/out/kedge.wasm'].map(p => new URL(p, import.meta.url))
  let plain = source ? [source] : defaults
  if (build === 'kedge-full') plain = plain.map(c => (isLocation(c) ? fullVariantOf(c) ?? c : c))
  const relaxed = variant !== 'simd128' && relaxedSimdSupported()
  const candidates = plain.flatMap(c => [relaxed ? relaxedVariantOf(c) : null, c]).filter(Boolean)
  const what = build === 'kedge' ? 'kedge.wasm' : 'kedge-full.wasm'
  let lastError
  for (const c of candidates) {
    let o
    try {
      const s = c instanceof URL && c.protocol === 'file:' ? c.href : c
      o = await open(s, source ? headers : {}, what)
    } catch (e) {
      lastError = e
      continue
    }
    onSize(o.size)
    return await o.read(onChunk)
  }
  throw lastError
}

const compile = b => (isModule(b) ? b : WebAssembly.compile(b))

/**
 * Loads a bundle into kedge.wasm, and into kedge-full.wasm when kedge.wasm leaves out a class the model needs
 * (error kind 10): the module and the bundle are fetched at once; kedge-full.wasm only when it is needed.
 *
 * `wasm`: kedge.wasm (a location, bytes or a Module; default as `loadWasm`). `wasmFull`: kedge-full.wasm; by
 * default the one beside a kedge.wasm location (so, from bytes or a Module alone, there is nothing to move to and
 * the error says that the model needs kedge-full.wasm). A location of kedge-full.wasm itself as `wasm` loads
 * only that. `onProgress({loaded, total})` counts the bundle's bytes and, when it is fetched, kedge-full.wasm's.
 *
 * @returns {Promise<KedgeModelHandle>} the model; its `runtime.build` and `runtime.backend` say which module
 */
export async function loadModel({ wasm, wasmFull, filepaths, headers = {}, keepLayers = false, onProgress = () => {}, variant = 'auto' }) {
  let bundleProgress = { loaded: 0, total: null }
  const [module, files] = await Promise.all([
    loadWasm(wasm, headers, { variant }).then(compile),
    loadBundle(filepaths, { headers, onProgress: p => { bundleProgress = p; onProgress(p) } }),
  ])
  const runtime = await KedgeRuntime.instantiate(module)
  const { loaded, total } = bundleProgress
  let size = null, n = 0
  const report = () => onProgress({ loaded: loaded + n, total: total !== null && size !== null ? total + size : null })
  const full = fullRuntime({ wasm, wasmFull, headers, variant, onSize: s => { size = s; report() }, onChunk: k => { n += k; report() } })
  return runtime.loadWithFallback(files.model, files.weights, files.metadata, { keepLayers, full })
}

/**
 * A function that loads and instantiates kedge-full.wasm for `loadWithFallback`, or null when there is no
 * kedge-full.wasm to find: `wasmFull` if given, else the default location (no `wasm` either), else the one beside
 * a kedge.wasm location; bytes or a Module of kedge.wasm alone have none.
 */
export function fullRuntime({ wasm, wasmFull, headers = {}, variant = 'auto', onSize, onChunk }) {
  const given = v => v !== undefined && v !== null
  const source = given(wasmFull) ? wasmFull : !given(wasm) ? undefined : isLocation(wasm) && fullVariantOf(wasm) ? wasm : null
  if (source === null) return null
  return async () => KedgeRuntime.instantiate(await compile(await loadWasm(source, headers, { variant, build: 'kedge-full', onSize, onChunk })))
}
