// The cascade viewer's worker: everything that computes runs here, off the page's thread. It fetches
// kedge-full.wasm (the cascade needs its XGBoost layers and cascade ABI, which kedge.wasm leaves out),
// cascade.json and the models once (GETs only); afterwards it reads the opened files (which never leave the
// machine), turns them into the cascade's volume and runs the cascade stage by stage, posting each stage's time and
// output as it goes.
//
// Requests {id, type, ...} are answered with {id, result} or {id, error: {message, kind}}; events go out as
// {type: 'loading' | 'opened' | 'volume' | 'stage-start' | 'stage', ...}.

import { KedgeRuntime, fullVariantOf } from './kedge-runtime.js'
import { loadWasm } from './kedge-fetch.js'
import { CascadeRunner } from './cascade-runner.js'
import { VolumeError, checkChestCT, fitToCascade, readVolume } from './cascade-volume.js'

const BUNDLE = { model: 'model.json', weights: 'model_weights.buf', metadata: 'model_metadata.json' }

let state = null // {module, configBytes, config, bundles, runtime, runner, sampleURL}

class LoadError extends Error {}

async function fetchBytes(url, what, onChunk = () => {}) {
  let res
  try {
    res = await fetch(url, { credentials: 'same-origin' })
  } catch (e) {
    throw new LoadError(`cannot fetch ${what} from ${url}: ${e.message}`)
  }
  if (!res.ok) throw new LoadError(`cannot fetch ${what} from ${url}: HTTP ${res.status}`)
  if (!res.body?.getReader) {
    const b = new Uint8Array(await res.arrayBuffer())
    onChunk(b.byteLength)
    return b
  }
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
  const out = new Uint8Array(n)
  let o = 0
  for (const c of chunks) { out.set(c, o); o += c.byteLength }
  return out
}

async function fetchJSON(url, what) {
  return JSON.parse(new TextDecoder().decode(await fetchBytes(url, what)))
}

const sleep = ms => new Promise(r => setTimeout(r, ms))

/**
 * Where cascade.json, its models, kedge-full.wasm and the sample are. With `kedge serve`: from GET /api/models (waiting
 * while the server still converts a model); else (a plain static server) next to cascade.json, each model as a
 * bundle folder named after it.
 */
async function locate({ base, cascadeURL, sampleURL: sampleOverride, api = 'api/models' }) {
  const apiURL = new URL(api, base).href
  let doc = null
  try {
    const res = await fetch(apiURL, { credentials: 'same-origin' })
    if (res.ok && (res.headers.get('content-type') || '').includes('json')) doc = await res.json()
  } catch { /* no server API: static hosting */ }
  let entry = null
  if (!cascadeURL) {
    if (!doc) throw new LoadError(`no cascade given and no model server at ${apiURL}; open the page from \`kedge serve\` or with ?cascade=URL`)
    const list = doc.cascades ?? []
    if (!list.length) throw new LoadError('the server lists no cascade (no cascade.json in its models folder)')
    entry = list.find(c => c.name === 'cascade') ?? list[0]
    cascadeURL = new URL(entry.url, apiURL).href
  } else {
    cascadeURL = new URL(cascadeURL, base).href
    entry = doc?.cascades?.find(c => new URL(c.url, apiURL).href === cascadeURL) ?? null
  }
  const configBytes = await fetchBytes(cascadeURL, 'cascade.json')
  let config
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes))
  } catch (e) {
    throw new LoadError(`cascade.json at ${cascadeURL} is not JSON: ${e.message}`)
  }
  const names = Object.keys(config.models ?? {})
  if (!names.length) throw new LoadError(`cascade.json at ${cascadeURL} names no models`)

  const files = {}
  for (let attempt = 0; ; attempt++) {
    const waiting = []
    for (const name of names) {
      const ref = entry?.models?.[name]
      const m = doc && (doc.models ?? []).find(x => x.name === (typeof ref === 'string' ? ref : name))
      if (ref && typeof ref === 'object' && ref.files) {
        files[name] = urlsOf(ref.files, apiURL)
      } else if (m && m.status === 'ready' && m.files) {
        files[name] = urlsOf(m.files, apiURL)
      } else if (m && m.status === 'converting') {
        waiting.push(name)
      } else if (m && m.status === 'error') {
        throw new LoadError(`the server could not convert cascade model '${name}': ${m.error ?? 'unknown error'}`)
      } else {
        const dir = new URL(`${name}/`, cascadeURL)
        files[name] = Object.fromEntries(Object.entries(BUNDLE).map(([k, f]) => [k, new URL(f, dir).href]))
      }
    }
    if (!waiting.length) break
    if (attempt >= 300) throw new LoadError(`the server is still converting ${waiting.join(', ')}; reload the page later`)
    postMessage({ type: 'loading', what: `the server is converting ${waiting.join(', ')}…`, loaded: 0, total: null })
    await sleep(1000)
    doc = await fetchJSON(apiURL, 'the model list')
  }
  // kedge-full.wasm: as the server lists it, else beside the kedge.wasm it lists (/wasm/HASH/), else beside the page.
  const listed = doc?.wasm?.full
  const plainURL = new URL(doc?.wasm?.url ?? 'kedge.wasm', doc ? apiURL : base)
  const wasmURL = listed ? new URL(typeof listed === 'string' ? listed : listed.url, apiURL).href
    : (fullVariantOf(plainURL) ?? plainURL).href
  const sample = entry?.sample ?? entry?.samples?.[0]?.url ?? entry?.samples?.[0] ?? doc?.samples?.[0]?.url ?? null
  const sampleURL = sampleOverride ? new URL(sampleOverride, base).href
    : sample ? new URL(sample, apiURL).href : new URL('demo_volume.npy', cascadeURL).href
  return { cascadeURL, configBytes, config, files, wasmURL, sampleURL }
}

function urlsOf(apiFiles, apiURL) {
  const out = {}
  for (const [k, f] of Object.entries(BUNDLE)) {
    const e = apiFiles[f]
    if (!e) throw new LoadError(`the model list has no ${f} for a cascade model`)
    out[k] = new URL(typeof e === 'string' ? e : e.url, apiURL).href
  }
  return out
}

function instantiate() {
  return KedgeRuntime.instantiate(state.module).then(runtime => {
    state.runtime = runtime
    state.runner = CascadeRunner.create(runtime, state.configBytes, state.bundles)
  })
}

const handlers = {
  async init(msg) {
    const where = await locate(msg)
    // Sizes for one progress bar over every download: HEAD requests are avoided; totals come from the responses.
    let loaded = 0
    const report = what => postMessage({ type: 'loading', what, loaded, total: null })
    const tick = what => n => { loaded += n; report(what) }
    report('kedge-full.wasm')
    // kedge.js's loader: the relaxed-SIMD flavour (fused multiply-add, faster convolutions) where the engine runs
    // it, else simd128. A failed fetch becomes a LoadError like the other downloads.
    const wasmBytes = loadWasm(where.wasmURL, {}, { build: 'kedge-full', onChunk: tick('kedge-full.wasm') })
      .catch(e => { throw new LoadError(e.message) })
    wasmBytes.catch(() => {}) // awaited below, after the models
    const bundles = {}
    await Promise.all(Object.entries(where.files).map(async ([name, urls]) => {
      const parts = await Promise.all(Object.entries(urls).map(async ([k, u]) => [k, await fetchBytes(u, `${name}/${BUNDLE[k]}`, tick(`model ${name}`))]))
      bundles[name] = Object.fromEntries(parts)
    }))
    let module
    try {
      module = await WebAssembly.compile(await wasmBytes)
    } catch (e) {
      if (e instanceof LoadError) throw new LoadError(`${e.message} (the cascade runs in kedge-full.wasm)`)
      throw new LoadError(`kedge-full.wasm does not compile in this browser: ${e.message}`)
    }
    state = { module, configBytes: where.configBytes, config: where.config, bundles, sampleURL: where.sampleURL }
    await instantiate()
    const c = where.config
    return {
      name: c.name, description: c.description, shape: c.input?.shape, spacing: c.input?.spacing_mm,
      stages: state.runner.stages, sampleURL: where.sampleURL, cascadeURL: where.cascadeURL, bytes: loaded,
      models: Object.keys(bundles), backend: state.runtime.backend, build: state.runtime.build,
    }
  },

  async analyse({ files, url, name }) {
    if (!state) throw new Error('the cascade is not loaded yet')
    const t0 = performance.now()
    let inputs
    if (url) {
      inputs = [{ name: name ?? url.split('/').pop(), bytes: await fetchBytes(url, name ?? 'the sample') }]
    } else {
      inputs = await Promise.all(files.map(async f => ({ name: f.webkitRelativePath || f.name, bytes: new Uint8Array(await f.arrayBuffer()) })))
    }
    const cfg = { shape: state.config.input.shape, spacing: state.config.input.spacing_mm }
    const vol = await readVolume(inputs)
    postMessage({ type: 'opened', description: vol.description, shape: vol.shape, spacing: vol.spacing, notes: vol.notes })
    checkChestCT(vol, cfg)
    const fit = fitToCascade(vol, cfg)
    const prepareMs = performance.now() - t0
    postMessage({ type: 'volume', data: fit.data.slice(), shape: fit.shape, spacing: fit.spacing, note: fit.note, resampled: fit.resampled, prepareMs })

    if (!state.runner) await instantiate()
    const r = state.runner
    const timings = {}
    try {
      r.start(fit.data, fit.shape)
      while (r.nextStage < r.stages.length) {
        const i = r.nextStage
        postMessage({ type: 'stage-start', index: i, name: r.stages[i] })
        const s = r.step()
        timings[s.stage] = s.ms
        const heatmap = s.stage === 'roi' ? r.heatmap() : null
        postMessage({ type: 'stage', index: s.index, name: s.stage, ms: s.ms, report: r.report(), heatmap }, heatmap ? [heatmap.buffer] : [])
      }
    } catch (e) {
      // A trap (out of memory, a failed precondition) leaves the instance unusable: make a new one next time.
      if (e instanceof WebAssembly.RuntimeError) { state.runner = null; state.runtime = null }
      throw e
    }
    const report = r.report()
    report.timings_ms = timings
    return { report, prepareMs, totalMs: performance.now() - t0 }
  },

  /** The whole cascade in one wasm call (the core's Cascade.run), on an already prepared volume. */
  async runOnce({ data, shape }) {
    if (!state.runner) await instantiate()
    const t0 = performance.now()
    const report = state.runner.run(data, shape)
    return { report, ms: performance.now() - t0 }
  },
}

self.onmessage = async ({ data: msg }) => {
  try {
    const result = await handlers[msg.type](msg)
    postMessage({ id: msg.id, result })
  } catch (e) {
    const kind = e instanceof VolumeError ? 'volume' : e instanceof LoadError ? 'load' : e instanceof WebAssembly.RuntimeError ? 'trap' : 'error'
    postMessage({ id: msg.id, error: { message: e.message || String(e), kind, code: e.kind ?? 0 } })
  }
}
