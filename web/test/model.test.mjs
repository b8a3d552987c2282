// web/kedge.js, the Keras.js-compatible API, in node (inline mode: no worker, files read from disk).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pathToFileURL } from 'node:url'
import { KerasJS, Model, KedgeError } from '../kedge.js'
import { wasmPath } from './wasm.mjs'
import { mismatch, randoms, tinyFunctional } from './bundles.mjs'
import { filepaths, writeBundle } from './files.mjs'

const b = tinyFunctional()
const dir = writeBundle(b)
const opts = (extra = {}) => ({ filepaths: filepaths(dir), wasm: wasmPath, ...extra })

test('new KerasJS.Model, ready, predict, predictStats', async () => {
  const model = new KerasJS.Model(opts())
  assert.ok(model instanceof Model)
  assert.equal(await model.ready(), true)
  assert.deepEqual(model.inputLayerNames, ['x', 'y'])
  assert.deepEqual(model.outputLayerNames, ['out'])
  assert.deepEqual(model.inputs, [{ name: 'x', shape: [-1, 4] }, { name: 'y', shape: [-1, 3] }])
  const x = randoms(12, 1), y = randoms(9, 2)
  const out = await model.predict({ x, y })
  assert.deepEqual(Object.keys(out), ['out'])
  assert.ok(out.out instanceof Float32Array)
  assert.equal(mismatch(out.out, b.reference(x, y, 3).out), null)
  assert.deepEqual(model.outputShapes, { out: [3, 2] })
  for (const k of ['loadData', 'forwardPass', 'total']) assert.equal(typeof model.predictStats[k], 'number', k)
  assert.equal(model.layerOutputs.size, 0)
  await model.dispose()
  await assert.rejects(model.predict({ x, y }), /disposed/)
})

test('file: URLs and plain arrays work too; the default wasm location is found', async () => {
  const fp = Object.fromEntries(Object.entries(filepaths(dir)).map(([k, v]) => [k, pathToFileURL(v).href]))
  const model = new Model({ filepaths: fp })
  await model.ready()
  const x = Array.from(randoms(4, 3)), y = Array.from(randoms(3, 4))
  const out = await model.predict({ x, y })
  assert.equal(mismatch(out.out, b.reference(x, y, 1).out), null)
  await model.dispose()
})

test('bytes as filepaths (a dropped file)', async () => {
  const model = new Model({ filepaths: { model: b.modelJSON, weights: b.weights.buffer, metadata: b.metadata }, wasm: wasmPath })
  await model.ready()
  assert.deepEqual(model.outputLayerNames, ['out'])
  await model.dispose()
})

test('transferLayerOutputs gives every layer output', async () => {
  const model = new Model(opts({ transferLayerOutputs: true }))
  await model.ready()
  const x = randoms(8, 5), y = randoms(6, 6)
  await model.predict({ x, y })
  const ref = b.reference(x, y, 2)
  assert.deepEqual([...model.layerOutputs.keys()], ['hidden', 'add', 'out'])
  for (const [name, t] of model.layerOutputs) assert.equal(mismatch(t.data, ref[name]), null, name)
  await model.dispose()
})

test('wrong input names and sizes reject with what is expected', async () => {
  const model = new Model(opts())
  await model.ready()
  await assert.rejects(model.predict({ input_1: randoms(4), y: randoms(3) }),
    err => err instanceof KedgeError && /no input 'input_1'; it expects x \(None, 4\), y \(None, 3\)/.test(err.message))
  await assert.rejects(model.predict({ x: randoms(4) }), /input 'y' is missing/)
  await assert.rejects(model.predict({ x: randoms(5), y: randoms(3) }), /input 'x' expects shape \(None, 4\): a multiple of 4 values, got 5/)
  await assert.rejects(model.predict(randoms(4)), /predict takes \{inputName: Float32Array\}/)
  // Still usable afterwards, and calls queue in order.
  const x = randoms(4), y = randoms(3)
  const [a, c] = await Promise.all([model.predict({ x, y }), model.predict({ x, y })])
  assert.deepEqual(a.out, c.out)
  await model.dispose()
})

test('load failures reject ready() and predict()', async () => {
  const missing = new Model({ filepaths: { ...filepaths(dir), weights: dir + '/nope.buf' }, wasm: wasmPath })
  await assert.rejects(missing.ready(), /cannot read model_weights.buf at .*nope\.buf/)
  await assert.rejects(missing.predict({}), /nope\.buf/)
  const bad = new Model({ filepaths: { ...filepaths(dir), model: new TextEncoder().encode('[1,') }, wasm: wasmPath })
  await assert.rejects(bad.ready(), err => err.kind === 1)
  assert.throws(() => new Model({}), /filepaths is missing/)
})

test('progress events report bytes of the whole bundle', async () => {
  const events = [], pcts = []
  const total = b.modelJSON.length + b.weights.length + b.metadata.length
  const model = new Model(opts({ onProgress: p => events.push(p) }))
  model.events.on('loadingProgress', p => pcts.push(p))
  await model.ready()
  assert.ok(events.length >= 2)
  assert.deepEqual(events.at(-1), { loaded: total, total })
  assert.equal(pcts[0], 0)
  assert.equal(pcts.at(-1), 100)
  await model.dispose()
})

test('gpu: true is accepted and reported as unavailable', async () => {
  const warn = console.warn
  const warnings = []
  console.warn = m => warnings.push(m)
  try {
    const model = new Model(opts({ gpu: true }))
    await model.ready()
    assert.equal(model.gpu, false)
    assert.equal(model.gpuRequested, true)
    assert.match(model.gpuUnavailableReason, /no GPU backend/)
    // node 20 has no relaxed SIMD without a flag: the SIMD128 module is what it got, and says so.
    assert.equal(model.backend, 'wasm-simd128')
    assert.match(warnings.join('\n'), /gpu: true requested/)
    await model.dispose()
  } finally {
    console.warn = warn
  }
})
