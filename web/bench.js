// The web bench page: times each chosen model's forward pass in kedge.js's worker and reports a table (and, with
// ?report=URL, JSON for scripted runs in headless Chromium).

import { Model } from './kedge.js'
import { moduleFileName, relaxedSimdSupported } from './kedge-runtime.js'

const $ = id => document.getElementById(id)
const params = new URLSearchParams(location.search)
if (params.get('runs')) $('runs').value = params.get('runs')
if (params.get('warmup')) $('warmup').value = params.get('warmup')
let api = null

/** Random inputs of batch 1 (every unknown dimension 1), the same each run. */
function randomInputs(model) {
  const inputs = {}
  let seed = 7
  for (const t of model.inputs) {
    const shape = t.shape.map(d => (d < 0 ? 1 : d))
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1))
    for (let i = 0; i < data.length; i++) { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; data[i] = seed / 2 ** 31 - 1 }
    inputs[t.name] = { data, shape }
  }
  return inputs
}

/** A result row before (or without) a run. */
function blankRow(model, error = null) {
  return { model, backend: null, build: null, module: null, inputs: '', loadMs: null, medianMs: null, minMs: null, p90Ms: null, wasmBytes: null, error }
}

async function benchOne(name, filepaths, runs, warmup) {
  const t0 = performance.now()
  // kedge-full.wasm, for a model kedge.wasm leaves out: ?wasmFull, else the server's, else beside kedge.wasm.
  const wasm = params.get('wasm') ?? api?.wasm?.url ?? undefined
  const wasmFull = params.get('wasmFull') ?? (params.get('wasm') ? undefined : api?.wasm?.full?.url) ?? undefined
  const model = new Model({ filepaths, wasm, wasmFull })
  const row = blankRow(name)
  try {
    await model.ready()
    row.loadMs = performance.now() - t0
    row.backend = model.backend
    row.build = model.build
    row.module = moduleFileName(model.build, model.backend)
    const inputs = randomInputs(model)
    row.inputs = Object.values(inputs).map(t => `(${t.shape.join(', ')})`).join(' ')
    for (let i = 0; i < warmup; i++) await model.predict(inputs)
    const times = []
    for (let i = 0; i < runs; i++) {
      await model.predict(inputs)
      times.push(model.predictStats.forwardPass)
      $('status').textContent = `${name}: run ${i + 1} of ${runs}`
    }
    times.sort((a, b) => a - b)
    row.medianMs = times[Math.floor(times.length / 2)]
    row.minMs = times[0]
    row.p90Ms = times[Math.min(times.length - 1, Math.floor(0.9 * times.length))]
    row.wasmBytes = await model.memoryBytes()
  } catch (e) {
    row.error = e.message
  }
  await model.dispose()
  return row
}

function show(row) {
  const table = $('results')
  table.hidden = false
  const tr = table.insertRow()
  const num = v => (v === null ? '' : v.toFixed(2))
  for (const [v, cls] of [[row.model], [row.module ?? ''], [row.inputs], [num(row.loadMs), 'num'], [num(row.medianMs), 'num'], [num(row.minMs), 'num'],
    [num(row.p90Ms), 'num'], [row.wasmBytes === null ? '' : (row.wasmBytes / 1048576).toFixed(1), 'num'], [row.error ?? '', row.error ? 'error' : '']]) {
    const td = tr.insertCell()
    td.textContent = v
    if (cls) td.className = cls
  }
}

async function go(targets) {
  $('go').disabled = true
  const runs = Math.max(1, Number($('runs').value) || 1), warmup = Math.max(0, Number($('warmup').value) || 0)
  const results = []
  for (const [name, filepaths] of targets) {
    const row = filepaths ? await benchOne(name, filepaths, runs, warmup)
      : blankRow(name, 'no such ready model on this server')
    results.push(row)
    show(row)
  }
  $('status').textContent = `done: ${results.length} model(s), ${runs} runs each`
  $('go').disabled = false
  const report = params.get('report')
  if (report) await fetch(report, { method: 'POST', body: JSON.stringify({
    userAgent: navigator.userAgent, relaxedSimd: relaxedSimdSupported(), crossOriginIsolated: self.crossOriginIsolated ?? false,
    runs, warmup, results,
  }) })
}

function servedTarget(name) {
  const m = api?.models?.find(x => x.name === name && x.status === 'ready' && x.files)
  if (!m) return [name, null]
  return [name, { model: m.files['model.json'].url, weights: m.files['model_weights.buf'].url, metadata: m.files['model_metadata.json'].url }]
}

async function main() {
  try { const r = await fetch('/api/models'); if (r.ok) api = await r.json() } catch { /* not served by kedge serve */ }
  const bundle = params.get('bundle')
  const named = (params.get('models') ?? '').split(',').filter(Boolean)
  if (bundle || named.length) {
    const targets = named.map(servedTarget)
    if (bundle) {
      const base = bundle.endsWith('/') ? bundle : bundle + '/'
      targets.push([bundle, { model: base + 'model.json', weights: base + 'model_weights.buf', metadata: base + 'model_metadata.json' }])
    }
    return go(targets)
  }
  const ready = (api?.models ?? []).filter(m => m.status === 'ready' && m.files)
  $('choices').innerHTML = ready.length
    ? ready.map(m => `<label><input type="checkbox" value="${m.name.replace(/"/g, '&quot;')}" checked> ${m.name.replace(/</g, '&lt;')}</label>`).join('')
    : '<p class="muted">No served models: start <code>kedge serve</code>, or pass <code>?bundle=URL</code>.</p>'
  $('go').onclick = () => go([...document.querySelectorAll('#choices input:checked')].map(i => servedTarget(i.value)))
}

main()
