// Every committed parity fixture through kedge.wasm, compared with real Keras's outputs:
// |wasm - keras| <= 1e-4 + 1e-4 * |keras| for every element (the same rule as Tests/KedgeParityTests).
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseNpy } from '../npy.js'
import { runtime } from './wasm.mjs'
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
after(() => {
  const n = Object.values(tally).reduce((a, b) => a + b, 0)
  console.log(`wasm parity: ${n} cases: ${tally.pass} pass; failing: ${tally.convert} at kedge convert, ` +
    `${tally.load} at load in wasm, ${tally.predict} at predict in wasm, ${tally.mismatch} differ from Keras`)
})

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
          const rt = await runtime()
          const read = n => readFileSync(join(dir, n))
          var model = rt.load(read('model.json'), read('model_weights.buf'), read('model_metadata.json'))
          stage = 'predict'
          const inputs = {}
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
        model.dispose()
        tally[failures.length ? 'mismatch' : 'pass']++
        assert.deepEqual(failures, [], `${c.rel} (${c.spec.description ?? ''}): ${failures.join('; ')}`)
      })
    }
  })
}
