// The two wasm builds (wasm/build.sh): kedge.wasm holds the feed-forward and convolutional families; a model that
// needs a class it leaves out fails there with kind 10 (notInThisBuild) and kedge.js, the worker and
// kedge-node.mjs load kedge-full.wasm and try again. Which module ran is `model.build` / `runtime.build`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Model } from '../kedge.js'
import { fullVariantOf, moduleOf, relaxedVariantOf } from '../kedge-runtime.js'
import { main as nodeCLI } from '../kedge-node.mjs'
import { parseNpy, writeNpy } from '../npy.js'
import { fullWasmPath, runtime, wasmPath } from './wasm.mjs'
import { mismatch, tinyEmbedding, tinyFunctional, tinyUnknownClass } from './bundles.mjs'
import { filepaths, writeBundle } from './files.mjs'
import { bundleFor, findKedge, listCases } from './fixtures.mjs'

const bytesOf = b => ({ model: b.modelJSON, weights: b.weights, metadata: b.metadata })
const bitwise = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

test('the module locations: kedge.wasm -> kedge-full.wasm beside it, in the same flavour', () => {
  const cases = [
    ['kedge.wasm', 'kedge-full.wasm', 'kedge-relaxed.wasm'],
    ['kedge-relaxed.wasm', 'kedge-full-relaxed.wasm', null],
    ['/wasm/0123abcd/kedge.wasm', '/wasm/0123abcd/kedge-full.wasm', '/wasm/0123abcd/kedge-relaxed.wasm'],
    ['/wasm/0123abcd/kedge-relaxed.wasm', '/wasm/0123abcd/kedge-full-relaxed.wasm', null],
    ['http://h:8080/wasm/x/kedge.wasm?v=2', 'http://h:8080/wasm/x/kedge-full.wasm?v=2', 'http://h:8080/wasm/x/kedge-relaxed.wasm?v=2'],
    ['../wasm/out/kedge-full.wasm', null, '../wasm/out/kedge-full-relaxed.wasm'],
    ['/kedge.wasm', '/kedge-full.wasm', '/kedge-relaxed.wasm'],
    ['/wasm/plain/kedge-simd128.wasm', null, null],
    ['/wasm/mykedge.wasm', null, null],
  ]
  for (const [loc, full, relaxed] of cases) {
    assert.equal(fullVariantOf(loc), full, `fullVariantOf(${loc})`)
    assert.equal(relaxedVariantOf(loc), relaxed, `relaxedVariantOf(${loc})`)
  }
  const u = fullVariantOf(new URL('file:///srv/wasm/kedge.wasm'))
  assert.ok(u instanceof URL && u.href === 'file:///srv/wasm/kedge-full.wasm')
  assert.deepEqual(moduleOf('/wasm/h/kedge-full-relaxed.wasm'), { build: 'kedge-full', flavour: 'relaxed' })
  assert.equal(fullVariantOf(new Uint8Array(4)), null)
})

test('each module says which build it is', async () => {
  const small = await runtime('kedge'), full = await runtime('kedge-full')
  assert.equal(small.build, 'kedge')
  assert.equal(full.build, 'kedge-full')
  assert.equal(small.backend, 'wasm-simd128')
  assert.equal(full.backend, 'wasm-simd128')
})

// Real fixtures, converted by the native converter (as the parity test does).
const kedge = findKedge()
const byRel = new Map(listCases().map(c => [c.rel, c]))
const fixtureCases = [['layers_k3/conv1d_bn_relu', 'kedge'], ['sequence_k3/lstm_last', 'kedge-full'], ['sequence_k3/embedding', 'kedge-full']]

for (const [rel, want] of fixtureCases) {
  test(`${rel}: kedge.js loads it into ${want}.wasm; the same outputs as kedge-full.wasm directly`,
    { skip: !kedge ? 'no kedge binary to convert fixtures' : !byRel.has(rel) ? `no fixture ${rel}` : false }, async () => {
      const c = byRel.get(rel)
      const dir = bundleFor(c, kedge)
      const inputs = {}
      for (const p of c.spec.inputs) {
        const t = parseNpy(readFileSync(join(c.folder, p.file)))
        inputs[p.name] = { data: t.data, shape: t.shape }
      }
      const model = new Model({ filepaths: filepaths(dir), wasm: wasmPath })
      await model.ready()
      assert.equal(model.build, want)
      assert.equal(model.backend, 'wasm-simd128')
      const out = await model.predict(inputs)
      await model.dispose()

      const read = n => readFileSync(join(dir, n))
      const direct = (await runtime('kedge-full')).load(read('model.json'), read('model_weights.buf'), read('model_metadata.json'))
      const r = direct.predict(inputs)
      direct.dispose()
      assert.deepEqual(Object.keys(out), r.outputs.map(t => t.name))
      for (const t of r.outputs) assert.ok(bitwise(out[t.name], t.data), `${rel}: output '${t.name}' differs from kedge-full.wasm's`)
      // And it matches Keras (the parity rule).
      for (const p of c.spec.outputs) {
        assert.equal(mismatch(out[p.name], parseNpy(readFileSync(join(c.folder, p.file))).data), null, p.name)
      }
    })
}

test('a model kedge.wasm leaves out moves to kedge-full.wasm; progress counts its bytes', async () => {
  const b = tinyEmbedding()
  const dir = writeBundle(b)
  const bundleBytes = b.modelJSON.length + b.weights.length + b.metadata.length
  const fullBytes = statSync(fullWasmPath).size
  const events = [], pcts = []
  const model = new Model({ filepaths: filepaths(dir), wasm: wasmPath, onProgress: p => events.push(p) })
  model.events.on('loadingProgress', p => pcts.push(p))
  await model.ready()
  assert.equal(model.build, 'kedge-full')
  assert.equal(model.backend, 'wasm-simd128')
  assert.ok(events.some(e => e.loaded === bundleBytes && e.total === bundleBytes), 'the bundle alone is reported first')
  assert.deepEqual(events.at(-1), { loaded: bundleBytes + fullBytes, total: bundleBytes + fullBytes })
  for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded >= events[i - 1].loaded, 'loaded never goes back')
  assert.equal(pcts.at(-1), 100)
  const ids = [0, 5, 2, 3, 1, 1, 4, 0]
  const out = await model.predict({ tokens: ids })
  assert.ok(bitwise(out.embed, b.reference(ids)))
  await model.dispose()

  // A feed-forward model stays in kedge.wasm and fetches nothing more.
  const t = tinyFunctional()
  const events2 = []
  const m2 = new Model({ filepaths: filepaths(writeBundle(t)), wasm: wasmPath, onProgress: p => events2.push(p) })
  await m2.ready()
  assert.equal(m2.build, 'kedge')
  const tb = t.modelJSON.length + t.weights.length + t.metadata.length
  assert.deepEqual(events2.at(-1), { loaded: tb, total: tb })
  await m2.dispose()
})

test('the default module location (no wasm option) moves to kedge-full.wasm too', async () => {
  const b = tinyEmbedding()
  const model = new Model({ filepaths: bytesOf(b) })
  await model.ready()
  assert.equal(model.build, 'kedge-full')
  await model.dispose()
})

test('explicit modules: bytes of kedge.wasm alone cannot move; wasmFull, or kedge-full.wasm itself, can', async () => {
  const b = tinyEmbedding()
  const small = new Uint8Array(readFileSync(wasmPath)), full = new Uint8Array(readFileSync(fullWasmPath))
  const alone = new Model({ filepaths: bytesOf(b), wasm: small })
  await assert.rejects(alone.ready(), err => {
    assert.equal(err.kind, 10)
    assert.equal(err.kindName, 'notInThisBuild')
    assert.match(err.message, /layer 'embed' has class 'Embedding', which kedge\.wasm leaves out.*this model needs kedge-full\.wasm, and only kedge\.wasm was given/)
    return true
  })
  const module = await WebAssembly.compile(small)
  await assert.rejects(new Model({ filepaths: bytesOf(b), wasm: module }).ready(), /needs kedge-full\.wasm/)

  for (const opts of [{ wasm: small, wasmFull: full }, { wasm: module, wasmFull: fullWasmPath }, { wasm: fullWasmPath }, { wasm: full }]) {
    const m = new Model({ filepaths: bytesOf(b), ...opts })
    await m.ready()
    assert.equal(m.build, 'kedge-full')
    await m.dispose()
  }
  // A feed-forward model given kedge-full.wasm stays there.
  const m = new Model({ filepaths: bytesOf(tinyFunctional()), wasm: fullWasmPath })
  await m.ready()
  assert.equal(m.build, 'kedge-full')
  await m.dispose()
})

test('a kedge.wasm location with no kedge-full.wasm beside it, or under another name, says what is missing', async () => {
  const b = tinyEmbedding()
  const tmp = mkdtempSync(join(tmpdir(), 'kedge-builds-'))
  copyFileSync(wasmPath, join(tmp, 'kedge.wasm'))
  copyFileSync(wasmPath, join(tmp, 'other.wasm'))
  await assert.rejects(new Model({ filepaths: bytesOf(b), wasm: join(tmp, 'kedge.wasm') }).ready(), err =>
    err.kind === 10 && /needs kedge-full\.wasm, which could not be loaded: cannot read kedge-full\.wasm at .*kedge-full\.wasm: ENOENT/.test(err.message))
  await assert.rejects(new Model({ filepaths: bytesOf(b), wasm: join(tmp, 'other.wasm') }).ready(), err =>
    err.kind === 10 && /only kedge\.wasm was given/.test(err.message))
  // kedge.wasm given as the full one is refused rather than tried twice.
  await assert.rejects(new Model({ filepaths: bytesOf(b), wasm: wasmPath, wasmFull: join(tmp, 'other.wasm') }).ready(),
    /the module given as kedge-full\.wasm is another kedge\.wasm/)
})

test('a class no build has: the full build\'s error, naming the class and listing the supported ones', async () => {
  const b = tinyUnknownClass()
  const model = new Model({ filepaths: bytesOf(b), wasm: wasmPath })
  await assert.rejects(model.ready(), err => {
    assert.equal(err.kind, 3)
    assert.equal(err.kindName, 'unsupportedLayer')
    assert.match(err.message, /^layer 'hidden' has class 'NoSuchLayer', which Kedge does not support; supported: Dense, .*LSTM/)
    return true
  })
})

test('kedge-node.mjs predict moves to kedge-full.wasm (beside --wasm, or --wasm-full)', async () => {
  const b = tinyEmbedding()
  const dir = writeBundle(b)
  const tmp = mkdtempSync(join(tmpdir(), 'kedge-builds-cli-'))
  const ids = new Float32Array([3, 2, 1, 0, 5, 4, 4, 5])
  writeFileSync(join(tmp, 'ids.npy'), writeNpy([2, 4], ids))
  for (const extra of [['--wasm', wasmPath], ['--wasm', wasmPath, '--wasm-full', fullWasmPath], []]) {
    const out = join(tmp, `out${extra.length}`)
    const lines = []
    await nodeCLI(['predict', dir, '--input', `tokens=${join(tmp, 'ids.npy')}`, '--output-dir', out, ...extra], l => lines.push(l))
    assert.deepEqual(lines, ['embed (2, 4, 3) -> embed.npy'])
    assert.ok(bitwise(parseNpy(readFileSync(join(out, 'embed.npy'))).data, b.reference(Array.from(ids))))
  }
  const unknown = writeBundle(tinyUnknownClass())
  await assert.rejects(nodeCLI(['predict', unknown, '--input', `tokens=${join(tmp, 'ids.npy')}`, '--output-dir', tmp, '--wasm', wasmPath], () => {}),
    /has class 'NoSuchLayer', which Kedge does not support/)
})

