// The cascade in kedge-full.wasm (Sources/KedgeWasm/CascadeABI.swift through web/cascade-runner.js) against the native
// `kedge cascade DIR --volume FILE --json` on the held-out volumes of Tests/Fixtures/cascade (tools/cascade/
// make_eval.py) and the demo volume: the final probability within 1e-5, every stage's output alike; the stage-by-
// stage ABI gives byte-identical reports to the one-call Cascade.run; bad input is refused with a clear message.
//
// Both sides load the same bundles, converted once by the native `kedge convert` from the files cascade.json names.
// Environment: KEDGE_BIN (default .build/release/kedge, else .build/debug/kedge), KEDGE_CASCADE_DIR (default
// models/cascade), KEDGE_CASCADE_VOLUMES (default Tests/Fixtures/cascade), KEDGE_WASM_FULL (default
// wasm/out/kedge-full.wasm: the cascade needs XGBoost and the cascade ABI, which kedge.wasm leaves out).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot, runtime } from './wasm.mjs'
import { CascadeRunner } from '../cascade-runner.js'
import { loadSeries } from '../dicom.js'
import { parseNpy, writeNpy } from '../npy.js'

const CASCADE_DIR = process.env.KEDGE_CASCADE_DIR || join(repoRoot, 'models', 'cascade')
const VOLUMES_DIR = process.env.KEDGE_CASCADE_VOLUMES || join(repoRoot, 'Tests', 'Fixtures', 'cascade')
// The newest native build (a stale release binary may predate layers the cascade needs).
const KEDGE = process.env.KEDGE_BIN || ['release', 'debug'].map(c => join(repoRoot, '.build', c, 'kedge')).filter(existsSync)
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
const BUNDLE = ['model.json', 'model_weights.buf', 'model_metadata.json']
const missing = !existsSync(join(CASCADE_DIR, 'cascade.json')) ? `no cascade at ${CASCADE_DIR} (tools/cascade/train.py makes it)`
  : !KEDGE ? 'no native kedge binary (swift build --product kedge)' : null

let work, config, bundles, rt, runner
/** Held-out volumes, the demo, and the synthetic DICOM series A of web/test/fixtures (read by dicom.js, saved as .npy). */
const volumes = []
let heldOut = 0

before(() => {
  if (missing) return
  work = mkdtempSync(join(tmpdir(), 'kedge-cascade-test-'))
  const cfgBytes = readFileSync(join(CASCADE_DIR, 'cascade.json'))
  config = JSON.parse(cfgBytes.toString('utf8'))
  copyFileSync(join(CASCADE_DIR, 'cascade.json'), join(work, 'cascade.json'))
  bundles = {}
  for (const [name, spec] of Object.entries(config.models)) {
    const out = join(work, name)
    if (existsSync(join(CASCADE_DIR, name, 'model.json'))) {
      mkdirSync(out)
      for (const f of BUNDLE) copyFileSync(join(CASCADE_DIR, name, f), join(out, f))
    } else {
      execFileSync(KEDGE, ['convert', join(CASCADE_DIR, spec.file), '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] })
    }
    const [model, weights, metadata] = BUNDLE.map(f => new Uint8Array(readFileSync(join(out, f))))
    bundles[name] = { model, weights, metadata }
  }
  const seriesDir = new URL('./fixtures/dicom/series-a/', import.meta.url)
  const series = loadSeries(readdirSync(seriesDir).map(n => ({ name: n, bytes: new Uint8Array(readFileSync(new URL(n, seriesDir))) })))
  writeFileSync(join(work, 'series-a.npy'), writeNpy(series.shape, series.data))
  volumes.push(join(work, 'series-a.npy'))
  if (existsSync(VOLUMES_DIR)) {
    for (const f of readdirSync(VOLUMES_DIR).filter(n => /^vol_\d+\.npy$/.test(n)).sort()) volumes.push(join(VOLUMES_DIR, f))
  }
  heldOut = volumes.length - 1
  if (existsSync(join(CASCADE_DIR, 'demo_volume.npy'))) volumes.push(join(CASCADE_DIR, 'demo_volume.npy'))
})

after(() => {
  runner?.dispose()
  if (work) rmSync(work, { recursive: true, force: true })
})

async function cascade() {
  if (!runner) {
    rt = await runtime('kedge-full')
    runner = CascadeRunner.create(rt, readFileSync(join(work, 'cascade.json')), bundles)
  }
  return runner
}

function native(volume) {
  const out = execFileSync(KEDGE, ['cascade', work, '--volume', volume, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 })
  return JSON.parse(out)
}

function close(a, b, tol, what) {
  assert.ok(Math.abs(a - b) <= tol, `${what}: wasm ${a}, native ${b} (|diff| ${Math.abs(a - b)} > ${tol})`)
}

/** Every stage of two reports alike: same candidates and nodules, values within `tol`. */
function compareReports(w, n, label, tol = 1e-5) {
  close(w.sex.male_prob, n.sex.male_prob, tol, `${label} sex`)
  assert.equal(w.roi.above_threshold, n.roi.above_threshold, `${label} roi voxels above threshold`)
  close(w.roi.heatmap_max, n.roi.heatmap_max, tol, `${label} heatmap max`)
  close(w.roi.heatmap_sum, n.roi.heatmap_sum, tol * Math.max(1, n.roi.heatmap_sum), `${label} heatmap sum`)
  assert.equal(w.candidates.length, n.candidates.length, `${label} candidate count`)
  w.candidates.forEach((c, i) => {
    assert.deepEqual(c.center, n.candidates[i].center, `${label} candidate ${i} centre`)
    assert.equal(c.voxels, n.candidates[i].voxels, `${label} candidate ${i} voxels`)
    close(c.fp_logit, n.candidates[i].fp_logit, 1e-4 * Math.max(1, Math.abs(n.candidates[i].fp_logit)), `${label} candidate ${i} fp logit`)
  })
  assert.deepEqual(w.nodules.map(x => x.candidate), n.nodules.map(x => x.candidate), `${label} nodules kept`)
  w.nodules.forEach((x, i) => {
    close(x.malignancy, n.nodules[i].malignancy, tol, `${label} nodule ${i} malignancy`)
    if (x.box) close(x.box.diameter_mm, n.nodules[i].box.diameter_mm, 1e-4, `${label} nodule ${i} diameter`)
  })
  for (const k of Object.keys(n.features)) close(w.features[k], n.features[k], 1e-4 * Math.max(1, Math.abs(n.features[k])), `${label} feature ${k}`)
  close(w.probability, n.probability, 1e-5, `${label} final probability`)
}

test('kedge-full.wasm exports the cascade ABI; kedge.wasm refuses the cascade', { skip: missing ?? false }, async () => {
  const small = await runtime('kedge')
  assert.equal(small.build, 'kedge')
  assert.throws(() => CascadeRunner.create(small, readFileSync(join(work, 'cascade.json')), bundles),
    /kedge\.wasm has no cascade ABI \(kedge_cascade_create\): the cascade needs kedge-full\.wasm/)
  assert.equal((await cascade()).runtime.build, 'kedge-full')
  const m = runner.runtime.exports
  for (const n of ['kedge_cascade_create', 'kedge_cascade_free', 'kedge_cascade_run', 'kedge_cascade_start', 'kedge_cascade_step',
    'kedge_cascade_next_stage', 'kedge_cascade_stage_count', 'kedge_cascade_stage_name_ptr', 'kedge_cascade_stage_name_len',
    'kedge_cascade_report', 'kedge_cascade_report_ptr', 'kedge_cascade_heatmap', 'kedge_cascade_heatmap_ptr']) {
    assert.equal(typeof m[n], 'function', n)
  }
  assert.deepEqual(runner.stages, ['sex', 'roi', 'candidates', 'fp', 'select', 'box', 'malignancy', 'meta'])
})

test('wasm matches native on every held-out volume and the demo (final probability within 1e-5)', { skip: missing ?? false, timeout: 3600_000 }, async t => {
  const r = await cascade()
  let worst = 0
  for (const v of volumes) {
    const vol = parseNpy(readFileSync(v))
    r.start(vol.data, vol.shape)
    const seen = []
    while (r.nextStage < r.stages.length) seen.push(r.step().stage)
    assert.deepEqual(seen, r.stages)
    const w = r.report()
    const n = native(v)
    const label = v.split('/').pop()
    compareReports(w, n, label)
    worst = Math.max(worst, Math.abs(w.probability - n.probability))
  }
  t.diagnostic(`${volumes.length} volumes: max |wasm - native| of the final probability ${worst.toExponential(2)}`)
  assert.ok(heldOut >= 20 || process.env.KEDGE_CASCADE_VOLUMES,
    `expected >= 20 held-out volumes (vol_XX.npy) in ${VOLUMES_DIR}, found ${heldOut} (tools/cascade/make_eval.py makes them)`)
})

test('stage by stage gives byte-identical reports to the one-call Cascade.run', { skip: missing ?? false, timeout: 600_000 }, async () => {
  const r = await cascade()
  for (const v of volumes.slice(0, 3).concat(volumes.slice(-1))) {
    const t = parseNpy(readFileSync(v))
    r.run(t.data, t.shape)
    const once = r.reportText()
    const heatOnce = r.heatmap()
    r.start(t.data, t.shape)
    const partial = []
    while (r.nextStage < r.stages.length) {
      const s = r.step()
      partial.push([s.stage, r.report()])
    }
    assert.equal(r.reportText(), once, v)
    assert.deepEqual(r.heatmap(), heatOnce)
    assert.equal(heatOnce.length, config.input.shape.reduce((a, b) => a * b, 1))
    // Each stage's output is there as soon as the stage ran.
    const at = Object.fromEntries(partial)
    assert.notEqual(at.sex.sex.male_prob, 0)
    assert.ok(at.roi.roi.heatmap_max > 0)
    assert.equal(at.candidates.candidates.length, JSON.parse(once).candidates.length)
    assert.equal(at.select.nodules.length, JSON.parse(once).nodules.length)
    assert.equal(at.malignancy.probability, 0)
    assert.equal(at.meta.probability, JSON.parse(once).probability)
  }
})

test('volumes the cascade cannot use are refused with a message; the cascade keeps working', { skip: missing ?? false }, async () => {
  const r = await cascade()
  const [Z, Y, X] = config.input.shape
  assert.throws(() => r.start(new Float32Array(Y * X).fill(-1000), [1, Y, X]), /single slice \(1, 80, 80\).*whole chest CT volume/)
  assert.throws(() => r.run(new Float32Array(Y * X).fill(-1000), [Y, X]), /single slice/)
  assert.throws(() => r.start(new Float32Array(10 * Y * X).fill(-1000), [10, Y, X]), /shape \(10, 80, 80\); this cascade expects \(32, 80, 80\)/)
  assert.throws(() => r.start(new Float32Array(5), [Z, Y, X]), /5 values but shape/)
  assert.throws(() => r.step(), /no volume; call kedge_cascade_start first/)
  assert.throws(() => new CascadeRunner(r.runtime, 999).report(), /no cascade with handle 999/)
  // Creating a cascade without one of its models says which.
  const partial = { ...bundles }
  delete partial.fp
  assert.throws(() => CascadeRunner.create(r.runtime, readFileSync(join(work, 'cascade.json')), partial), /model 'fp' was not loaded/)
  assert.throws(() => CascadeRunner.create(r.runtime, new TextEncoder().encode('{"format": "x"}'), bundles), /cascade\.json: 'format' is not "kedge-cascade"/)
  const t = parseNpy(readFileSync(volumes[0]))
  const rep = r.run(t.data, t.shape)
  assert.ok(rep.probability >= 0 && rep.probability <= 1)
})

test('memory stays flat over repeated runs', { skip: missing ?? false, timeout: 600_000 }, async () => {
  const r = await cascade()
  const t = parseNpy(readFileSync(volumes[0]))
  const both = () => {
    r.run(t.data, t.shape)
    r.report()
    r.heatmap()
    r.start(t.data, t.shape)
    while (r.nextStage < r.stages.length) r.step()
    r.report()
    r.heatmap()
  }
  // The allocator settles after a couple of runs (free-list fragmentation); after that nothing may grow.
  for (let i = 0; i < 3; i++) both()
  const m0 = r.runtime.memoryBytes
  for (let i = 0; i < 4; i++) both()
  assert.equal(r.runtime.memoryBytes, m0)
})
