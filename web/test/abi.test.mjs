// The C ABI of kedge.wasm (Sources/KedgeWasm, wasm/ABI.md) through web/kedge-runtime.js, on a bundle written
// by hand (test/bundles.mjs) and checked against a plain-JS forward pass.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runtime } from './wasm.mjs'
import { mismatch, randoms, tinyFunctional } from './bundles.mjs'

const enc = new TextEncoder()

const ABI = ['memory', '_initialize', 'kedge_alloc', 'kedge_free', 'kedge_model_create', 'kedge_model_free',
  'kedge_set_input', 'kedge_run', 'kedge_count', 'kedge_name_ptr', 'kedge_name_len', 'kedge_shape_ptr', 'kedge_rank',
  'kedge_data_ptr', 'kedge_data_len', 'kedge_last_error_ptr', 'kedge_last_error_len', 'kedge_last_error_kind',
  'kedge_reset_states', 'kedge_simd_variant', 'kedge_build']

test('kedge.wasm and kedge-full.wasm import nothing and export the ABI; only kedge-full.wasm the cascade ABI', async () => {
  const { wasmPath, fullWasmPath } = await import('./wasm.mjs')
  const { readFileSync } = await import('node:fs')
  for (const [path, build] of [[wasmPath, 1], [fullWasmPath, 2]]) {
    const m = await WebAssembly.compile(readFileSync(path))
    assert.deepEqual(WebAssembly.Module.imports(m), [], `${path} imports nothing`)
    const names = WebAssembly.Module.exports(m).map(e => e.name)
    for (const n of ABI) assert.ok(names.includes(n), `${path}: missing export ${n}`)
    const cascade = names.filter(n => n.startsWith('kedge_cascade_'))
    if (build === 1) assert.deepEqual(cascade, [], 'kedge.wasm has no cascade ABI')
    else assert.ok(cascade.includes('kedge_cascade_create') && cascade.length >= 13, `kedge-full.wasm's cascade ABI: ${cascade}`)
    const instance = await WebAssembly.instantiate(m, {})
    instance.exports._initialize()
    assert.equal(instance.exports.kedge_simd_variant(), 1, `${path} is a SIMD128 build`)
    assert.equal(instance.exports.kedge_build(), build, `${path}: kedge_build()`)
  }
})

test('lists inputs and outputs with names and shapes', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m = rt.load(b.modelJSON, b.weights, b.metadata)
  assert.deepEqual(m.inputs, [{ name: 'x', shape: [-1, 4] }, { name: 'y', shape: [-1, 3] }])
  assert.deepEqual(m.outputs, [{ name: 'out', shape: [-1, 2] }])
  m.dispose()
})

test('predict matches the reference for several batch sizes', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m = rt.load(b.modelJSON, b.weights, b.metadata)
  for (const batch of [1, 2, 7]) {
    const x = randoms(batch * 4, batch), y = randoms(batch * 3, batch + 100)
    const r = m.predict({ x, y })
    assert.equal(r.outputs.length, 1)
    assert.equal(r.outputs[0].name, 'out')
    assert.deepEqual(r.outputs[0].shape, [batch, 2])
    assert.equal(mismatch(r.outputs[0].data, b.reference(x, y, batch).out), null)
    assert.equal(r.layers, null)
  }
  m.dispose()
})

test('records every layer output in execution order', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m = rt.load(b.modelJSON, b.weights, b.metadata, { keepLayers: true })
  const x = randoms(12, 5), y = randoms(9, 6)
  const r = m.predict({ x, y }, { recordLayers: true })
  const ref = b.reference(x, y, 3)
  assert.deepEqual(r.layers.map(t => t.name), ['hidden', 'add', 'out'])
  for (const t of r.layers) {
    assert.deepEqual(t.shape, [3, t.name === 'out' ? 2 : 3])
    assert.equal(mismatch(t.data, ref[t.name]), null, t.name)
  }
  // A plain run after a recording run leaves no layer outputs behind.
  assert.equal(m.predict({ x, y }).layers, null)
  assert.equal(rt.exports.kedge_count(m.handle, 3), 0)
  m.dispose()
})

test('explicit {data, shape} inputs', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m = rt.load(b.modelJSON, b.weights, b.metadata)
  const x = randoms(8, 1), y = randoms(6, 2)
  const r = m.predict({ x: { data: x, shape: [2, 4] }, y: { data: Array.from(y), shape: [2, 3] } })
  assert.equal(mismatch(r.outputs[0].data, b.reference(x, y, 2).out), null)
  m.dispose()
})

test('bad inputs fail with messages saying what is expected', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m = rt.load(b.modelJSON, b.weights, b.metadata)
  const x = randoms(4), y = randoms(3)
  assert.throws(() => m.predict({ x, z: y }), { kind: 7, message: /no input 'z'.*x \(None, 4\), y \(None, 3\)/ })
  assert.throws(() => m.predict({ x }), { kind: 7, message: /input 'y' is missing/ })
  assert.throws(() => m.predict({ x: randoms(5), y }), { kind: 7, message: /input 'x' expects shape \(None, 4\): a multiple of 4 values, got 5/ })
  // The core's own check (shape given explicitly): message from Model.check.
  assert.throws(() => m.predict({ x: { data: randoms(6), shape: [2, 3] }, y: { data: randoms(6), shape: [2, 3] } }),
    { kind: 7, message: /input 'x' has shape \(2, 3\); the model expects x \(None, 4\), y \(None, 3\)/ })
  // Values that do not match their shape are refused at kedge_set_input.
  const e = rt.exports
  const pd = rt.copyIn(new Float32Array(3)), ps = rt.copyIn(Int32Array.from([1, 4]))
  assert.equal(e.kedge_set_input(m.handle, 0, pd, 3, ps, 2), -7)
  assert.match(rt.lastError().message, /input 'x' has 3 values but shape \(1, 4\) needs 4/)
  assert.equal(e.kedge_set_input(m.handle, 5, pd, 3, ps, 2), -7)
  assert.match(rt.lastError().message, /input index 5 is out of range/)
  e.kedge_free(pd)
  e.kedge_free(ps)
  // The model still works after errors.
  assert.equal(m.predict({ x, y }).outputs[0].data.length, 2)
  m.dispose()
})

test('load errors: bad JSON, missing weight, wrong handle', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  assert.throws(() => rt.load(enc.encode('{"class_name": '), b.weights, b.metadata), err => {
    assert.equal(err.kind, 1)
    assert.equal(err.kindName, 'invalidJSON')
    assert.match(err.message, /model\.json/)
    return true
  })
  const meta = JSON.parse(new TextDecoder().decode(b.metadata))
  meta.weights = meta.weights.filter(w => !(w.layer_name === 'out' && w.weight_name === 'bias'))
  assert.throws(() => rt.load(b.modelJSON, b.weights, enc.encode(JSON.stringify(meta))),
    { kind: 5, message: /layer 'out' \(Dense\) needs weight 'bias'/ })
  meta.weights = JSON.parse(new TextDecoder().decode(b.metadata)).weights
  assert.throws(() => rt.load(b.modelJSON, b.weights.subarray(0, 32), enc.encode(JSON.stringify(meta))), { kind: 2 })
  const e = rt.exports
  assert.equal(e.kedge_run(42, 0), -100)
  assert.match(rt.lastError().message, /no model with handle 42/)
  assert.equal(e.kedge_count(42, 0), -1)
  assert.equal(e.kedge_name_len(1, 9, 0), -1)
})

test('handles are independent and reused after free', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m1 = rt.load(b.modelJSON, b.weights, b.metadata)
  const m2 = rt.load(b.modelJSON, b.weights, b.metadata)
  assert.notEqual(m1.handle, m2.handle)
  const h1 = m1.handle
  m1.dispose()
  assert.equal(rt.exports.kedge_run(h1, 0), -100)
  const x = randoms(4), y = randoms(3)
  assert.equal(mismatch(m2.predict({ x, y }).outputs[0].data, b.reference(x, y, 1).out), null)
  const m3 = rt.load(b.modelJSON, b.weights, b.metadata)
  assert.equal(m3.handle, h1)
  m2.dispose()
  m3.dispose()
})

test('no memory growth across 1,000 predict calls (plain and recording)', async () => {
  const rt = await runtime()
  const b = tinyFunctional()
  const m = rt.load(b.modelJSON, b.weights, b.metadata, { keepLayers: true })
  const x = randoms(64 * 4, 3), y = randoms(64 * 3, 4)
  for (let i = 0; i < 20; i++) { m.predict({ x, y }); m.predict({ x, y }, { recordLayers: true }) }
  const before = rt.memoryBytes
  for (let i = 0; i < 1000; i++) m.predict({ x, y }, { recordLayers: i % 2 === 0 })
  assert.equal(rt.memoryBytes, before, `memory grew from ${before} to ${rt.memoryBytes} bytes`)
  // Loading and freeing models does not grow it either.
  for (let i = 0; i < 5; i++) rt.load(b.modelJSON, b.weights, b.metadata).dispose()
  const afterLoads = rt.memoryBytes
  for (let i = 0; i < 100; i++) rt.load(b.modelJSON, b.weights, b.metadata).dispose()
  assert.equal(rt.memoryBytes, afterLoads)
  m.dispose()
})
