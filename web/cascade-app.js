// The cascade viewer page (cascade.html): talks to cascade-worker.js, which does all the work, and shows what it
// sends back. Query parameters (for hosting without `kedge serve`): ?cascade=URL of cascade.json (models as bundle
// folders next to it), ?sample=URL of the sample volume. `body[data-state]` is loading | ready | running | done | error (the browser test reads it), and
// `window.kedgeCascade` holds the last report.

import { PRESETS, SliceViewer } from './cascade-viewer.js'
import { moduleFileName } from './kedge-runtime.js'

const $ = id => document.getElementById(id)
const params = new URLSearchParams(location.search)

const STAGE_LABELS = {
  sex: 'Sex estimate (3D ResNet)',
  roi: 'Nodule ROI heatmap (2D, per slice)',
  candidates: 'Candidates (connected components)',
  fp: 'False-positive reduction (3D)',
  select: 'Selection + NMS',
  box: 'Bounding boxes (2D)',
  malignancy: 'Malignancy (2D)',
  meta: 'Meta-classifier (XGBoost)',
}
// A worker that stays silent this long during a run is taken as stuck, so the page never waits forever.
const WATCHDOG_MS = 180000

const app = {
  worker: null, nextId: 1, pending: new Map(), info: null, busy: false, volume: null, report: null, watchdog: null,
}
window.kedgeCascade = app

const viewer = new SliceViewer($('view'), {
  onSlice: z => {
    $('slice').value = String(z)
    updateSliceLabel()
  },
  onWindow: w => {
    $('wl').textContent = `W ${w.width} / L ${fmtSigned(w.level)}`
    for (const [k, p] of Object.entries(PRESETS)) $(`preset-${k}`).classList.toggle('on', p.width === w.width && p.level === w.level)
  },
})

function fmtSigned(v) { return v < 0 ? `−${-v}` : String(v) }
const fmtMs = ms => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`)

function setState(s) { document.body.dataset.state = s }

function setStatus(text, kind = 'wait') {
  $('status').textContent = text
  $('status-dot').className = `dot${kind === 'ok' ? ' ok' : kind === 'bad' ? ' bad' : ''}`
}

function showMessage(kind, title, text) {
  const m = $('message')
  m.className = kind
  m.replaceChildren()
  if (title) { const s = document.createElement('strong'); s.textContent = title; m.append(s) }
  if (text) m.append(document.createTextNode(text))
}
function clearMessage() { $('message').className = ''; $('message').replaceChildren() }

function dl(el, rows) {
  el.replaceChildren()
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'); dt.textContent = k
    const dd = document.createElement('dd'); dd.textContent = v
    el.append(dt, dd)
  }
}

// ---------------------------------------------------------------------------------------------------- worker

function startWorker() {
  app.worker = new Worker(new URL('./cascade-worker.js', import.meta.url), { type: 'module' })
  app.worker.onmessage = ({ data }) => receive(data)
  app.worker.onerror = e => {
    e.preventDefault?.()
    failAll(new Error(`the analysis worker stopped (${e.message || 'it could not start'})`))
  }
  app.worker.onmessageerror = () => failAll(new Error('a message from the analysis worker could not be read'))
}

function call(type, payload = {}, transfer = []) {
  return new Promise((resolve, reject) => {
    const id = app.nextId++
    app.pending.set(id, { resolve, reject })
    app.worker.postMessage({ ...payload, type, id }, transfer)
  })
}

function failAll(err) {
  for (const p of app.pending.values()) p.reject(err)
  app.pending.clear()
}

function kick() {
  clearTimeout(app.watchdog)
  if (!app.busy) return
  app.watchdog = setTimeout(() => {
    failAll(Object.assign(new Error('the analysis stopped responding; reload the page to try again'), { kind: 'timeout' }))
    app.worker.terminate()
    startWorker()
    app.needsInit = true
  }, WATCHDOG_MS)
}

function receive(msg) {
  kick()
  if (msg.id !== undefined) {
    const p = app.pending.get(msg.id)
    if (!p) return
    app.pending.delete(msg.id)
    if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { kind: msg.error.kind }))
    else p.resolve(msg.result)
    return
  }
  events[msg.type]?.(msg)
}

const events = {
  loading(m) {
    setStatus(m.loaded ? `Loading ${m.what} (${(m.loaded / 1048576).toFixed(1)} MB)…` : `Loading ${m.what}…`)
  },
  opened(m) {
    $('input-block').hidden = false
    const rows = [['Source', m.description], ['Grid', `${m.shape.join(' × ')} (z × y × x)`]]
    if (m.spacing) rows.push(['Spacing', `${m.spacing.map(s => s.toFixed(2)).join(' × ')} mm`])
    else rows.push(['Spacing', 'not stored in the file'])
    dl($('input-info'), rows)
    const notes = $('input-notes')
    notes.replaceChildren()
    for (const n of m.notes) {
      const p = document.createElement('p'); p.className = 'note'; p.textContent = n; notes.append(p)
    }
  },
  volume(m) {
    app.volume = { data: m.data, shape: m.shape, spacing: m.spacing }
    viewer.setVolume(app.volume)
    $('placeholder').hidden = true
    const s = $('slice')
    s.max = String(m.shape[0] - 1)
    s.disabled = false
    s.value = String(viewer.z)
    updateSliceLabel()
    if (m.note) {
      const p = document.createElement('p'); p.className = 'note resample'; p.id = 'resample-note'; p.textContent = m.note
      $('input-notes').append(p)
    } else {
      const p = document.createElement('p'); p.className = 'note'; p.textContent = 'Already on the cascade\'s grid: no resampling.'
      $('input-notes').append(p)
    }
  },
  'stage-start'(m) {
    const li = $('stages').children[m.index]
    li.className = 'running'
    setStatus(`Running: ${STAGE_LABELS[m.name] ?? m.name}…`)
  },
  stage(m) {
    const li = $('stages').children[m.index]
    li.className = 'done'
    li.querySelector('.t').textContent = fmtMs(m.ms)
    app.timings[m.name] = m.ms
    $('progress').value = (m.index + 1) / app.info.stages.length
    showPartial(m.name, m.report, m.heatmap)
  },
}

// ---------------------------------------------------------------------------------------------------- results

function resetResults() {
  app.report = null
  app.timings = {}
  $('probability').textContent = '—'
  $('probability').className = 'prob'
  $('probability').removeAttribute('data-probability')
  $('probability-bar').style.width = '0'
  $('sex').textContent = 'Sex estimate: —'
  $('candidates').innerHTML = '<p class="empty">Waiting for the cascade…</p>'
  $('total-time').textContent = '—'
  $('progress').value = 0
  $('toggle-heatmap').disabled = true
  for (const li of $('stages').children) { li.className = ''; li.querySelector('.t').textContent = '' }
}

function showPartial(stage, r, heatmap) {
  if (stage === 'sex') {
    const p = r.sex.male_prob
    const sex = p >= 0.5 ? 'male' : 'female'
    $('sex').textContent = `Sex estimate: ${sex} (P(male) = ${p.toFixed(3)})`
    $('sex').dataset.maleProb = String(p)
  }
  if (heatmap) {
    viewer.setHeatmap(heatmap, app.threshold)
    $('toggle-heatmap').disabled = false
  }
  if (['candidates', 'fp', 'select', 'box', 'malignancy', 'meta'].includes(stage)) {
    renderCandidates(r, stage)
    viewer.setFindings(r.candidates, r.nodules)
  }
  if (stage === 'meta') {
    const p = r.probability
    const el = $('probability')
    el.textContent = `${(100 * p).toFixed(1)} %`
    el.dataset.probability = String(p)
    el.className = `prob ${p >= 0.5 ? 'high' : p >= 0.2 ? 'mid' : 'low'}`
    $('probability-bar').style.width = `${Math.max(1, 100 * p)}%`
  }
}

const ORDER = ['sex', 'roi', 'candidates', 'fp', 'select', 'box', 'malignancy', 'meta']
const after = (stage, s) => ORDER.indexOf(stage) >= ORDER.indexOf(s)

function renderCandidates(r, stage) {
  const box = $('candidates')
  if (!r.candidates.length) {
    box.innerHTML = '<p class="empty">No candidate above the ROI threshold.</p>'
    return
  }
  const byCandidate = new Map(r.nodules.map((n, k) => [n.candidate, { n, k }]))
  const table = document.createElement('table')
  table.innerHTML = '<thead><tr><th>#</th><th title="slice (z)">Slice</th><th title="voxels above the threshold">Vox</th>' +
    '<th title="false-positive reduction: probability of a real nodule">Nodule p</th><th title="box diameter">Ø mm</th>' +
    '<th title="malignancy">Malig.</th></tr></thead>'
  const tb = document.createElement('tbody')
  // Kept nodules first (N1, N2, ... in the cascade's order), then the rejected candidates by index.
  const order = [...r.nodules.map(n => n.candidate), ...r.candidates.map((_, i) => i).filter(i => !byCandidate.has(i))]
  for (const i of order) {
    const c = r.candidates[i]
    const kept = byCandidate.get(i)
    const tr = document.createElement('tr')
    tr.dataset.candidate = String(i)
    tr.dataset.slice = String(kept?.n.box?.z ?? c.center[0])
    tr.className = kept ? `kept${kept.n.malignancy >= 0.5 ? ' malignant' : ''}` : 'rejected'
    const cells = [
      kept ? `N${kept.k + 1}` : `c${i + 1}`,
      String(c.center[0] + 1),
      String(c.voxels),
      after(stage, 'fp') ? c.fp_prob.toFixed(3) : '…',
      kept?.n.box ? kept.n.box.diameter_mm.toFixed(1) : '',
      kept && after(stage, 'malignancy') ? kept.n.malignancy.toFixed(3) : '',
    ]
    for (const t of cells) { const td = document.createElement('td'); td.textContent = t; tr.append(td) }
    tr.title = kept ? 'kept as a nodule: click to show it' : 'rejected by false-positive reduction: click to show it'
    tr.addEventListener('click', () => jumpTo(i, Number(tr.dataset.slice)))
    tb.append(tr)
  }
  table.append(tb)
  box.replaceChildren(table)
}

function jumpTo(candidate, z) {
  viewer.select(candidate)
  viewer.setSlice(z)
  for (const tr of $('candidates').querySelectorAll('tbody tr')) tr.classList.toggle('selected', Number(tr.dataset.candidate) === candidate)
}

function updateSliceLabel() {
  if (!app.volume) return
  const [Z] = app.volume.shape
  const dz = app.volume.spacing[0]
  $('slice-label').textContent = `Slice ${viewer.z + 1} / ${Z}   ·   z = ${(viewer.z * dz).toFixed(1)} mm from the first slice`
}

// ---------------------------------------------------------------------------------------------------- actions

async function init() {
  setState('loading')
  const base = location.href
  try {
    const info = await call('init', { base, cascadeURL: params.get('cascade') ?? undefined, sampleURL: params.get('sample') ?? undefined })
    app.info = info
    app.threshold = 0.5
    $('cascade-name').textContent = `${info.name} · Kedge in-browser inference`
    dl($('cascade-info'), [
      ['Name', info.name],
      ['Input', `${info.shape.join(' × ')} voxels`],
      ['Spacing', `${info.spacing.join(' × ')} mm`],
      ['Models', info.models.join(', ')],
      ['Downloaded', `${(info.bytes / 1048576).toFixed(1)} MB (kept in memory)`],
    ])
    const ul = $('stages')
    ul.replaceChildren()
    for (const s of info.stages) {
      const li = document.createElement('li')
      li.dataset.stage = s
      li.innerHTML = '<span class="i"></span><span class="n"></span><span class="t"></span>'
      li.querySelector('.n').textContent = STAGE_LABELS[s] ?? s
      ul.append(li)
    }
    for (const id of ['open-folder', 'open-files', 'open-sample']) $(id).disabled = false
    const simd = info.backend === 'wasm-relaxed-simd' ? 'WebAssembly relaxed SIMD' : 'WebAssembly SIMD'
    $('footer-backend').textContent = `${simd} (${moduleFileName(info.build, info.backend)}) in a worker · works offline once loaded`
    setStatus('Ready: open a CT', 'ok')
    setState('ready')
  } catch (e) {
    setStatus('The cascade could not be loaded', 'bad')
    showMessage('error', 'The cascade could not be loaded.', e.message)
    setState('error')
  }
}

async function analyse(payload, label) {
  if (app.busy || !app.info) return
  if (app.needsInit) { app.needsInit = false; await init() }
  app.busy = true
  setState('running')
  clearMessage()
  resetResults()
  $('input-block').hidden = true
  app.volume = null
  viewer.clear()
  $('slice-label').textContent = '—'
  $('voxel-label').textContent = ''
  $('placeholder').hidden = false
  $('placeholder').textContent = `Reading ${label}…`
  $('slice').disabled = true
  for (const id of ['open-folder', 'open-files', 'open-sample']) $(id).disabled = true
  setStatus(`Reading ${label}…`)
  kick()
  try {
    const r = await call('analyse', payload)
    app.report = r.report
    $('total-time').textContent = `${fmtMs(Object.values(r.report.timings_ms).reduce((a, b) => a + b, 0))} cascade · ${fmtMs(r.prepareMs)} reading`
    setStatus(`Done in ${fmtMs(r.totalMs)}`, 'ok')
    setState('done')
  } catch (e) {
    const running = $('stages').querySelector('li.running')
    if (running) running.className = 'failed'
    const title = e.kind === 'volume' ? 'This cannot be analysed.' : e.kind === 'load' ? 'Could not read the input.' : 'The analysis failed.'
    showMessage('error', title, e.message)
    if (!app.volume) { $('placeholder').hidden = false; $('placeholder').textContent = 'Nothing to show.' }
    $('candidates').innerHTML = '<p class="empty">No result.</p>'
    setStatus('Stopped', 'bad')
    setState('error')
  } finally {
    app.busy = false
    clearTimeout(app.watchdog)
    for (const id of ['open-folder', 'open-files', 'open-sample']) $(id).disabled = false
  }
}

function openFiles(files, label) {
  const list = [...files].filter(f => !/(^|\/)\.[^/]*$/.test(f.webkitRelativePath || f.name))
  if (!list.length) { showMessage('error', 'Nothing to open.', 'The selection holds no files.'); return }
  const what = list.length === 1 ? list[0].name : `${list.length} files${label ? ` from ${label}` : ''}`
  analyse({ files: list }, what)
}

/** Every file below the dropped items (folders are walked). */
async function droppedFiles(items) {
  const out = []
  const walk = async entry => {
    if (!entry) return
    if (entry.isFile) {
      out.push(await new Promise((res, rej) => entry.file(res, rej)))
    } else if (entry.isDirectory) {
      const reader = entry.createReader()
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej))
        if (!batch.length) break
        for (const e of batch) await walk(e)
      }
    }
  }
  await Promise.all([...items].map(i => walk(i.webkitGetAsEntry?.())))
  return out
}

// ---------------------------------------------------------------------------------------------------- wiring

$('open-folder').addEventListener('click', () => $('folder-input').click())
$('open-files').addEventListener('click', () => $('files-input').click())
$('folder-input').addEventListener('change', e => { if (e.target.files.length) openFiles(e.target.files, 'the folder'); e.target.value = '' })
$('files-input').addEventListener('change', e => { if (e.target.files.length) openFiles(e.target.files); e.target.value = '' })
$('open-sample').addEventListener('click', () => analyse({ url: app.info.sampleURL, name: 'sample CT (demo_volume.npy)' }, 'the sample CT'))

const drop = $('drop')
for (const t of [drop, document.body]) {
  t.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over') })
  t.addEventListener('dragleave', e => { if (e.target === drop) drop.classList.remove('over') })
  t.addEventListener('drop', async e => {
    e.preventDefault()
    drop.classList.remove('over')
    if (app.busy || !app.info) return
    const files = e.dataTransfer.items?.length ? await droppedFiles(e.dataTransfer.items) : [...e.dataTransfer.files]
    openFiles(files.length ? files : e.dataTransfer.files)
  })
}

for (const [k, p] of Object.entries(PRESETS)) $(`preset-${k}`).addEventListener('click', () => viewer.setWindow(p.width, p.level))
$('toggle-heatmap').addEventListener('change', e => { viewer.showHeatmap = e.target.checked; viewer.draw() })
$('toggle-marks').addEventListener('change', e => { viewer.showMarks = e.target.checked; viewer.draw() })
$('slice').addEventListener('input', e => viewer.setSlice(Number(e.target.value)))
$('view').addEventListener('pointermove', e => {
  if (!app.volume) return
  const L = viewer._layout()
  const r = $('view').getBoundingClientRect()
  const x = Math.floor(((e.clientX - r.left) * L.dpr - L.ox) / L.px), y = Math.floor(((e.clientY - r.top) * L.dpr - L.oy) / L.py)
  const [, Y, X] = app.volume.shape
  if (x < 0 || y < 0 || x >= X || y >= Y) { $('voxel-label').textContent = ''; return }
  const hu = app.volume.data[(viewer.z * Y + y) * X + x]
  const heat = viewer.heatmap ? `  ·  ROI p ${viewer.heatmap[(viewer.z * Y + y) * X + x].toFixed(2)}` : ''
  $('voxel-label').textContent = `(${y}, ${x})  ${Math.round(hu)} HU${heat}`
})

startWorker()
init()
