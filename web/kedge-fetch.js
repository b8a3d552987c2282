// Getting bytes: bundle files and kedge.wasm, from URLs (streaming fetch with progress), from disk in node, or
// from bytes/Blobs the page already has (a dropped file). Shared by kedge.js (inline mode) and the worker.

import { KedgeError, relaxedSimdSupported, relaxedVariantOf } from './kedge-runtime.js'

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

/**
 * kedge.wasm as bytes or a Module. Without an explicit source: `kedge.wasm` next to kedge.js, else the build
 * output of a source checkout (`../wasm/out/kedge.wasm`). Where the engine runs relaxed SIMD, each location named
 * `kedge.wasm` is first tried as `kedge-relaxed.wasm` beside it (`variant`: 'auto'; 'simd128' never does).
 */
export async function loadWasm(source, headers = {}, { variant = 'auto' } = {}) {
  if (typeof WebAssembly !== 'undefined' && source instanceof WebAssembly.Module) return source
  const plain = source ? [source] : [new URL('./kedge.wasm', import.meta.url), new URL('../wasm/out/kedge.wasm', import.meta.url)]
  const relaxed = variant !== 'simd128' && relaxedSimdSupported()
  const candidates = plain.flatMap(c => [relaxed ? relaxedVariantOf(c) : null, c]).filter(Boolean)
  let lastError
  for (const c of candidates) {
    try {
      const s = c instanceof URL && c.protocol === 'file:' ? c.href : c
      const o = await open(s, source ? headers : {}, 'kedge.wasm')
      return await o.read(() => {})
    } catch (e) {
      lastError = e
    }
  }
  throw lastError
}
