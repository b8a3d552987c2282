// web/kedge-node.mjs predict (same semantics as the native `kedge predict`) and the .npy reader/writer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseNpy, writeNpy } from '../npy.js'
import { main, safeFileName } from '../kedge-node.mjs'
import { wasmPath } from './wasm.mjs'
import { mismatch, randoms, tinyFunctional } from './bundles.mjs'
import { writeBundle } from './files.mjs'

test('npy round trip, any rank, and the header NumPy expects', () => {
  for (const shape of [[], [5], [2, 3], [1, 2, 3, 4]]) {
    const n = shape.reduce((a, d) => a * d, 1)
    const data = randoms(n, n)
    const bytes = writeNpy(shape, data)
    const headerLen = bytes[8] | (bytes[9] << 8)
    assert.equal((10 + headerLen) % 64, 0)
    const t = parseNpy(bytes)
    assert.deepEqual(t.shape, shape)
    assert.deepEqual(t.data, data)
  }
  assert.throws(() => parseNpy(new Uint8Array(20)), /magic/)
})

test('npy: other dtypes become float32', () => {
  // float64 [2] = [1.5, -2], written by hand: header padded to 64 bytes.
  let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n'
  const bytes = new Uint8Array(10 + header.length + 16)
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0])
  bytes.set(new TextEncoder().encode(header), 10)
  new DataView(bytes.buffer).setFloat64(10 + header.length, 1.5, true)
  new DataView(bytes.buffer).setFloat64(10 + header.length + 8, -2, true)
  assert.deepEqual(parseNpy(bytes), { shape: [2], data: new Float32Array([1.5, -2]), dtype: '<f8' })
})

test('safeFileName keeps names inside the folder', () => {
  assert.equal(safeFileName('dense_1'), 'dense_1')
  assert.equal(safeFileName('enc/dense@1'), 'enc_dense@1')
  assert.equal(safeFileName('../x'), '___x')
})

test('kedge-node.mjs predict writes OUT/<output>.npy and --all-layers', async () => {
  const b = tinyFunctional()
  const dir = writeBundle(b)
  const tmp = mkdtempSync(join(tmpdir(), 'kedge-cli-'))
  const x = randoms(3 * 4, 11), y = randoms(3 * 3, 12)
  writeFileSync(join(tmp, 'x.npy'), writeNpy([3, 4], x))
  writeFileSync(join(tmp, 'y.npy'), writeNpy([3, 3], y))
  const out = join(tmp, 'out')
  const lines = []
  await main(['predict', dir, '--input', `x=${join(tmp, 'x.npy')}`, `--input=y=${join(tmp, 'y.npy')}`,
    '--output-dir', out, '--all-layers', '--wasm', wasmPath], l => lines.push(l))
  assert.deepEqual(lines, ['out (3, 2) -> out.npy'])
  const ref = b.reference(x, y, 3)
  const t = parseNpy(readFileSync(join(out, 'out.npy')))
  assert.deepEqual(t.shape, [3, 2])
  assert.equal(mismatch(t.data, ref.out), null)
  for (const n of ['hidden', 'add', 'out']) assert.equal(mismatch(parseNpy(readFileSync(join(out, 'layers', n + '.npy'))).data, ref[n]), null)

  // As a process, with an error a person can act on.
  const cli = fileURLToPath(new URL('../kedge-node.mjs', import.meta.url))
  const out2 = join(tmp, 'out2')
  execFileSync('node', [cli, 'predict', dir, '--input', `x=${join(tmp, 'x.npy')}`, '--input', `y=${join(tmp, 'y.npy')}`,
    '--output-dir', out2, '--wasm', wasmPath])
  assert.ok(existsSync(join(out2, 'out.npy')))
  assert.ok(!existsSync(join(out2, 'layers')))
  assert.throws(() => execFileSync('node', [cli, 'predict', dir, '--input', `x=${join(tmp, 'x.npy')}`, '--output-dir', out2,
    '--wasm', wasmPath], { stdio: 'pipe' }), err => /input 'y' is missing; the model expects x \(None, 4\), y \(None, 3\)/.test(err.stderr))
})
