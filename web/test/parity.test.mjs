// Every committed parity fixture through the wasm build, compared with real Keras's outputs:
// |wasm - keras| <= 1e-4 + 1e-4 * |keras| for every element (the same rule as Tests/KedgeParityTests).
// Each case loads as kedge.js loads it: into kedge.wasm, moving to kedge-full.wasm when kedge.wasm leaves out a
// class it needs. A case kedge.wasm holds also runs in kedge-full.wasm, which must give the same outputs (bitwise,
// or within 1e-6), so the split never changes an answer.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseNpy } from '../npy.js'
import { loadAuto, runtime } from './wasm.mjs'
import { bundleFor, findKedge, listCases } from './fixtures.mjs'

const kedge = findKedge()
const cases = listCases()
const suites = new Map()
for (const c of cases) {
  const s = c.spec.suite ?? c.rel.split('/')[0]
  if (!suites.has(s)) suites.set(s, [])
  suites.get(s).push(c)
}

/** Checks one output; returns a failure message or null. */
function compare(name, got, want) {
  if (got.shape.join() !== want.shape.join()) return `output '${name}' has shape (${got.shape}), Keras gave (${want.shape})`
  let worst = -1, worstExcess = -1
  for (let k = 0; k < want.data.length; k++) {
    const a = got.data[k], b = want.data[k]
    if (Number.isNaN(a) && Number.isNaN(b)) continue
    const err = Math.abs(a - b)
    if (!(err <= 1e-4 + 1e-4 * Math.abs(b))) {
      const excess = Number.isNaN(err) ? Infinity : err - 1e-4 * Math.abs(b)
      if (excess > worstExcess) { worstExcess = excess; worst = k }
    }
  }
  return worst < 0 ? null : `output '${name}' differs at flat index ${worst}: wasm ${got.data[worst]}, keras ${want.data[worst]}`
}

// Why cases failed, printed at the end: the converter (mostly layers the core lacks), loading or running in
// wasm, or numbers that differ from Keras.
const tally = { pass: 0, convert: 0, load: 0, predict: 0, mismatch: 0 }
const builds = { kedge: 0, 'kedge-full': 0, bitwise: 0, close: 0, differ: 0 }
after(() => {
  const n = Object.values(tally).reduce((a, b) => a + b, 0)
  console.log(`wasm parity: ${n} cases: ${tally.pass} pass; failing: ${tally.convert} at kedge convert, ` +
    `${tally.load} at load in wasm, ${tally.predict} at predict in wasm, ${tally.mismatch} differ from Keras`)
  console.log(`wasm builds: ${builds.kedge} cases ran in kedge.wasm, ${builds['kedge-full']} moved to kedge-full.wasm; ` +
    `kedge-full.wasm gave the same outputs on kedge.wasm's cases: ${builds.bitwise} bitwise, ${builds.close} within 1e-6, ` +
    `${builds.differ} differ`)
})

/** Outputs of the same model in kedge.wasm and kedge-full.wasm: null when bitwise equal, 'close' within 1e-6. */
function sameOutputs(a, b) {
  let close = false
  for (let i = 0; i < a.length; i++) {
    if (a[i].name !== b[i]?.name || a[i].shape.join() !== b[i].shape.join()) return `output ${i}: ${a[i].name} (${a[i].shape}) vs ${b[i]?.name} (${b[i]?.shape})`
    const x = new Uint32Array(a[i].data.buffer, a[i].data.byteOffset, a[i].data.length)
    const y = new Uint32Array(b[i].data.buffer, b[i].data.byteOffset, b[i].data.length)
    for (let k = 0; k < x.length; k++) {
      if (x[k] === y[k]) continue
      const d = Math.abs(a[i].data[k] - b[i].data[k])
      if (!(d <= 1e-6)) return `output '${a[i].name}' at flat index ${k}: kedge.wasm ${a[i].data[k]}, kedge-full.wasm ${b[i].data[k]}`
      close = true
    }
  }
  return close ? 'close' : null
}

test('fixture index is present', () => {
  assert.ok(cases.length > 0, 'Tests/Fixtures/index.json lists no case folders')
})

for (const [suite, list] of suites) {
  describe(suite, () => {
    for (const c of list) {
      test(c.spec.id ?? c.rel, { skip: kedge ? false : 'no kedge binary to convert fixtures (swift build, or set KEDGE_BIN)' }, async () => {
        let stage = 'convert'
        try {
          const dir = bundleFor(c, kedge)
          stage = 'load'
          const read = n => readFileSync(join(dir, n))
          var files = { model: read('model.json'), weights: read('model_weights.buf'), metadata: read('model_metadata.json') }
          var model = await loadAuto(files)
          stage = 'predict'
          var inputs = {}
          for (const p of c.spec.inputs) {
            const t = parseNpy(readFileSync(join(c.folder, p.file)))
            inputs[p.name] = { data: t.data, shape: t.shape }
          }
          var r = model.predict(inputs)
        } catch (e) {
          tally[stage]++
          throw e
        }
        const failures = []
        if (r.outputs.length !== c.spec.outputs.length) {
          failures.push(`model gives ${r.outputs.length} outputs, Keras gave ${c.spec.outputs.length}`)
        } else {
          c.spec.outputs.forEach((p, i) => {
            if (r.outputs[i].name !== p.name) failures.push(`output ${i} is named '${r.outputs[i].name}', Keras calls it '${p.name}'`)
            const f = compare(p.name, r.outputs[i], parseNpy(readFileSync(join(c.folder, p.file))))
            if (f) failures.push(f)
          })
        }
        const build = model.runtime.build
        builds[build]++
        model.dispose()
        if (build === 'kedge') {
          const full = (await runtime('kedge-full')).load(files.model, files.weights, files.metadata)
          const same = sameOutputs(r.outputs, full.predict(inputs).outputs)
          full.dispose()
          builds[same === null ? 'bitwise' : same === 'close' ? 'close' : 'differ']++
          if (same !== null && same !== 'close') failures.push(`kedge.wasm and kedge-full.wasm differ: ${same}`)
        }
        tally[failures.length ? 'mismatch' : 'pass']++
        assert.deepEqual(failures, [], `${c.rel} (${c.spec.description ?? ''}): ${failures.join('; ')}`)
      })
    }
  })
}
