// The model playground: load a bundle (served by `kedge serve`, or dropped as files), feed it random data or
// .npy files, look at its outputs and every layer's output, and time it. Everything runs in kedge.js's worker.

import { Model } from './kedge.js'
import { moduleFileName } from './kedge-runtime.js'
import { parseNpy } from './npy.js'

const $ = id => document.getElementById(id)
const state = { model: null, api: null, files: null, npy: {} }

$('backend').textContent = `WebAssembly SIMD on the CPU, in a Web Worker` +
  (typeof navigator !== 'undefined' && navigator.gpu ? ' (WebGPU is present but Kedge does not use it yet)' : '')

// --- model sources -------------------------------------------------------------------------------------------

async function listServed() {
  try {
    const res = await fetch('/api/models', { headers: { accept: 'application/json' } })
    if (!res.ok) return report()
    state.api = await res.json()
  } catch { return report() }
  const ready = (state.api.models ?? []).filter(m => m.status === 'ready' && m.files)
  const sel = $('served')
  sel.innerHTML = ready.length ? '' : '<option value="">(none ready)</option>'
  for (const m of ready) {
    const o = document.createElement('option')
    o.value = m.name
    o.textContent = `${m.name} (${m.source_format ?? m.kind}, ${mb(m.size)})`
    sel.append(o)
  }
  const wanted = params.get('model')
  if (wanted && ready.some(m => m.name === wanted)) { sel.value = wanted; await load(); autorun() }
}

// `?model=NAME&run=1` (or `run=bench&runs=N`) loads and runs at once; with `&report=URL` the page then POSTs what
// it shows as JSON, for smoke tests and scripted benchmarks.
const params = new URLSearchParams(location.search)
if (params.get('runs')) $('runs').value = params.get('runs')
if (params.get('layers') === '1') $('layers').checked = true

async function autorun() {
  const mode = params.get('run')
  if (!mode || !state.model) return report()
  await (mode === 'bench' ? bench() : run())
  report()
}

function report() {
  const url = params.get('report')
  if (!url) return
  const text = id => $(id).textContent
  fetch(url, {
    method: 'POST',
    body: JSON.stringify({
      model: $('served').value, loaded: !!state.model, loadError: text('loadError'), runError: text('runError'),
      stats: text('stats'), predictStats: state.model?.predictStats ?? null, backendText: text('backend'),
      build: state.model?.build ?? null, backend: state.model?.backend ?? null,
      outputs: [...document.querySelectorAll('#outputs tr')].slice(1).map(r => [...r.cells].slice(0, 4).map(c => c.textContent)),
      layers: document.querySelectorAll('#layerOutputs tr').length ? document.querySelectorAll('#layerOutputs tr').length - 1 : 0,
    }),
  })
}

function servedFilepaths(name) {
  const m = state.api.models.find(x => x.name === name)
  return { model: m.files['model.json'].url, weights: m.files['model_weights.buf'].url, metadata: m.files['model_metadata.json'].url }
}

const BUNDLE = ['model.json', 'model_weights.buf', 'model_metadata.json']

async function takeFiles(list) {
  const files = [...list]
  const byName = Object.fromEntries(files.map(f => [f.name, f]))
  $('loadError').textContent = ''
  if (BUNDLE.every(n => byName[n])) {
    state.files = { model: byName['model.json'], weights: byName['model_weights.buf'], metadata: byName['model_metadata.json'] }
    $('served').value = ''
    return load()
  }
  if (files.length === 1) return upload(files[0])
  $('loadError').textContent = `Drop the three bundle files together (${BUNDLE.join(', ')}), or one model file to convert.`
}

/** Sends a model file to `kedge serve` for conversion (POST /api/models?name=...), then loads the result. */
async function upload(file) {
  const name = file.name.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '')
  $('progressText').textContent = `converting ${file.name} on the server...`
  try {
    const res = await fetch(`/api/models?name=${encodeURIComponent(name)}`, { method: 'POST', body: file })
    const body = await res.json().catch(() => ({}))
    if (!res.ok) throw new Error(body.error?.message ?? body.message ?? `HTTP ${res.status}`)
    await listServed()
    $('served').value = body.name ?? name.replace(/\.[^.]+$/, '')
    state.files = null
    await load()
  } catch (e) {
    $('progressText').textContent = ''
    $('loadError').textContent = `Upload of ${file.name} failed: ${e.message}` +
      (location.protocol === 'file:' ? '\n(open the playground through `kedge serve` to convert files)' : '')
  }
}

// --- loading -------------------------------------------------------------------------------------------------

async function load() {
  const served = $('served').value
  const filepaths = served ? servedFilepaths(served) : state.files
  if (!filepaths) { $('loadError').textContent = 'Choose a served model or drop a bundle.'; return }
  await state.model?.dispose()
  state.model = null
  setRunning(true)
  $('loadError').textContent = ''
  $('modelInfo').textContent = ''
  $('outputs').textContent = ''
  $('layerOutputs').textContent = ''
  const bar = $('progress')
  bar.hidden = false
  bar.removeAttribute('value')
  const t0 = performance.now()
  const model = new Model({
    filepaths,
    transferLayerOutputs: $('layers').checked,
    wasm: state.api?.wasm?.url ?? undefined,
    wasmFull: state.api?.wasm?.full?.url ?? undefined,
    onProgress: ({ loaded, total }) => {
      if (total) { bar.max = total; bar.value = loaded }
      $('progressText').textContent = `${mb(loaded)}${total ? ' of ' + mb(total) : ''}`
    },
  })
  try {
    await model.ready()
    $('backend').textContent = `${model.backend === 'wasm-relaxed-simd' ? 'WebAssembly relaxed SIMD' : 'WebAssembly SIMD'} on the CPU, ` +
      `in a Web Worker (${moduleFileName(model.build, model.backend)})`
    $('backend').dataset.build = model.build
    $('backend').dataset.backend = model.backend
  } catch (e) {
    $('loadError').textContent = e.message
    bar.hidden = true
    $('progressText').textContent = ''
    setRunning(false, false)
    return
  }
  bar.hidden = true
  $('progressText').textContent = `loaded in ${(performance.now() - t0).toFixed(0)} ms`
  state.model = model
  $('modelInfo').innerHTML = `<p>${model.inputs.length} input(s): ${model.inputs.map(describe).join(', ')}; ` +
    `${model.outputs.length} output(s): ${model.outputs.map(describe).join(', ')}</p>`
  renderInputs(model)
  setRunning(false, true)
}

function describe(t) { return `<code>${esc(t.name)}</code> ${shapeText(t.shape)}` }

// --- inputs --------------------------------------------------------------------------------------------------

function renderInputs(model) {
  const box = $('inputs')
  box.className = ''
  box.innerHTML = ''
  state.npy = {}
  model.inputs.forEach((t, i) => {
    const row = document.createElement('div')
    row.className = 'row'
    const dims = t.shape.map((d, k) => d >= 0 ? `<span>${d}</span>`
      : `<input type="number" min="1" value="1" data-input="${i}" data-dim="${k}" title="${k === 0 ? 'batch' : 'unknown dimension'}">`)
    row.innerHTML = `<code>${esc(t.name)}</code> shape (${dims.join(', ')})
      <select data-source="${i}"><option value="normal">random normal</option><option value="uniform">random uniform [0, 1)</option>
      <option value="zeros">zeros</option><option value="ones">ones</option><option value="npy">.npy file</option></select>
      <input type="file" accept=".npy" data-npy="${i}" hidden> <span class="muted" data-npyinfo="${i}"></span>`
    box.append(row)
  })
  box.querySelectorAll('select[data-source]').forEach(sel => sel.addEventListener('change', () => {
    box.querySelector(`input[data-npy="${sel.dataset.source}"]`).hidden = sel.value !== 'npy'
  }))
  box.querySelectorAll('input[data-npy]').forEach(inp => inp.addEventListener('change', async () => {
    const i = inp.dataset.npy, info = box.querySelector(`[data-npyinfo="${i}"]`)
    try {
      const t = parseNpy(new Uint8Array(await inp.files[0].arrayBuffer()))
      state.npy[i] = t
      info.textContent = `${t.dtype} ${shapeText(t.shape)}`
    } catch (e) {
      delete state.npy[i]
      info.textContent = e.message
    }
  }))
}

function gatherInputs() {
  const model = state.model, out = {}
  model.inputs.forEach((t, i) => {
    const source = document.querySelector(`select[data-source="${i}"]`).value
    if (source === 'npy') {
      if (!state.npy[i]) throw new Error(`choose a .npy file for input '${t.name}'`)
      out[t.name] = { data: state.npy[i].data, shape: state.npy[i].shape }
      return
    }
    const shape = t.shape.map((d, k) => d >= 0 ? d : Number(document.querySelector(`input[data-input="${i}"][data-dim="${k}"]`).value))
    const n = shape.reduce((a, d) => a * d, 1)
    const data = new Float32Array(n)
    let seed = 12345 + i
    const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32 }
    for (let k = 0; k < n; k++) {
      data[k] = source === 'zeros' ? 0 : source === 'ones' ? 1 : source === 'uniform' ? rand()
        : Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
    }
    out[t.name] = { data, shape }
  })
  return out
}

// --- running -------------------------------------------------------------------------------------------------

async function run() {
  $('runError').textContent = ''
  setRunning(true)
  try {
    const out = await state.model.predict(gatherInputs())
    const s = state.model.predictStats
    $('stats').textContent = `forward pass ${s.forwardPass.toFixed(2)} ms, inputs ${s.loadData.toFixed(2)} ms, total ${s.total.toFixed(2)} ms`
    $('outputs').innerHTML = table('Outputs', Object.entries(out).map(([n, d]) => ({ name: n, shape: state.model.outputShapes[n], data: d })), true)
    $('layerOutputs').innerHTML = state.model.layerOutputs.size
      ? table('Layer outputs (execution order)', [...state.model.layerOutputs].map(([name, t]) => ({ name, ...t })), false) : ''
    drawMaps()
  } catch (e) {
    $('runError').textContent = e.message
  }
  setRunning(false, true)
}

async function bench() {
  $('runError').textContent = ''
  setRunning(true)
  try {
    const inputs = gatherInputs(), runs = Math.max(1, Number($('runs').value) || 1)
    await state.model.predict(inputs) // warm-up
    const t = []
    for (let i = 0; i < runs; i++) {
      await state.model.predict(inputs)
      t.push(state.model.predictStats.forwardPass)
      $('stats').textContent = `run ${i + 1} of ${runs}...`
    }
    t.sort((a, b) => a - b)
    const q = p => t[Math.min(t.length - 1, Math.floor(p * t.length))]
    $('stats').textContent = `${runs} runs: median ${q(0.5).toFixed(2)} ms, min ${t[0].toFixed(2)} ms, p90 ${q(0.9).toFixed(2)} ms` +
      ` (forward pass in the worker); wasm memory ${mb(await state.model.memoryBytes())}`
  } catch (e) {
    $('runError').textContent = e.message
  }
  setRunning(false, true)
}

function setRunning(busy, ready = !!state.model) {
  $('run').disabled = busy || !ready
  $('bench').disabled = busy || !ready
  $('load').disabled = busy
}

// --- rendering -----------------------------------------------------------------------------------------------

const maps = []

function table(title, tensors, showTop) {
  maps.length = 0
  const rows = tensors.map(t => {
    let min = Infinity, max = -Infinity, sum = 0
    for (const v of t.data) { if (v < min) min = v; if (v > max) max = v; sum += v }
    const first = Array.from(t.data.subarray(0, 8), v => fmt(v)).join(', ') + (t.data.length > 8 ? ', ...' : '')
    let extra = ''
    const last = t.shape.at(-1)
    if (showTop && t.shape.length === 2 && last > 1 && last <= 1000) {
      const top = Array.from(t.data.subarray(0, last), (v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5)
      extra = `<br><span class="muted">top of row 0: ${top.map(([v, i]) => `#${i} ${fmt(v)}`).join(', ')}</span>`
    }
    let canvas = ''
    if (t.shape.length >= 3) { maps.push(t); canvas = `<canvas class="map" data-map="${maps.length - 1}"></canvas>` }
    return `<tr><td><code>${esc(t.name)}</code></td><td>${shapeText(t.shape)}</td><td>${fmt(min)} / ${fmt(max)} / ${fmt(sum / t.data.length)}</td>` +
      `<td class="values">${first}${extra}</td><td>${canvas}</td></tr>`
  })
  return `<h2>${title}</h2><table><tr><th>name</th><th>shape</th><th>min / max / mean</th><th>first values</th><th>map</th></tr>${rows.join('')}</table>`
}

/** Channel 0 of batch item 0 of a (batch, h, w, c) or (batch, steps, features) tensor, as a grey map. */
function drawMaps() {
  document.querySelectorAll('canvas[data-map]').forEach(c => {
    const t = maps[Number(c.dataset.map)]
    const s = t.shape
    const h = s[1], w = s.length >= 4 ? s[2] : s[2], ch = s.length >= 4 ? s.slice(3).reduce((a, d) => a * d, 1) : 1
    if (!(h > 0 && w > 0)) return
    c.width = w
    c.height = h
    const img = c.getContext('2d').createImageData(w, h)
    let min = Infinity, max = -Infinity
    for (let i = 0; i < h * w; i++) { const v = t.data[i * ch]; if (v < min) min = v; if (v > max) max = v }
    for (let i = 0; i < h * w; i++) {
      const g = max > min ? Math.round((255 * (t.data[i * ch] - min)) / (max - min)) : 128
      img.data.set([g, g, g, 255], i * 4)
    }
    c.getContext('2d').putImageData(img, 0, 0)
  })
}

function shapeText(s) { return `(${s.map(d => (d < 0 ? 'None' : d)).join(', ')}${s.length === 1 ? ',' : ''})` }
function fmt(v) { return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4) }
function mb(n) { return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB` }
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]) }

// --- wiring --------------------------------------------------------------------------------------------------

$('load').addEventListener('click', () => { state.files = $('served').value ? null : state.files; load() })
$('run').addEventListener('click', run)
$('bench').addEventListener('click', bench)
$('files').addEventListener('change', e => takeFiles(e.target.files))
const drop = $('drop')
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over') })
drop.addEventListener('dragleave', () => drop.classList.remove('over'))
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); takeFiles(e.dataTransfer.files) })
listServed()
