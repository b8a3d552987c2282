// Byte-mutated Keras .h5 files through `kedge convert`: every run must end with exit 0 (a bundle) or exit 1 and a
// one-line "Error: ..." (no bundle left behind), never a signal, a Swift trap or a hang. libhdf5 itself crashes on
// some of these (../shared/repro/hdf5-segv-mutated-rnn.h5, copied to Tests/Fixtures/converter/bad/); kedge reads
// HDF5 in a child process (KedgeConvert's HDF5Isolation), so such a crash becomes that one line.
// KEDGE_MUTATIONS (default 240) sets how many mutations run; the seed is fixed, so a failure repeats.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findKedge, fixturesDir } from './fixtures.mjs'

const kedge = findKedge()
const skip = kedge ? false : 'no kedge binary (swift build)'

function convert(file, out) {
  const r = spawnSync(kedge, ['convert', file, '-o', out], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SWIFT_BACKTRACE: 'enable=no' } })
  return { status: r.status, signal: r.signal, stderr: r.stderr ?? '', timedOut: r.error?.code === 'ETIMEDOUT' }
}

function checkOutcome(r, out, what) {
  assert.ok(!r.timedOut, `${what}: kedge convert hung (killed after 60 s)`)
  assert.equal(r.signal, null, `${what}: kedge convert died by ${r.signal}: ${r.stderr.slice(0, 400)}`)
  assert.ok(r.status === 0 || r.status === 1, `${what}: exit ${r.status}: ${r.stderr.slice(0, 400)}`)
  assert.doesNotMatch(r.stderr, /Fatal error|crashed|Backtrac|Usage:/, `${what}: ${r.stderr.slice(0, 400)}`)
  if (r.status === 1) {
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, `${what}: the error is not one line: ${r.stderr.slice(0, 400)}`)
    assert.match(lines[0], /^Error: \S/, what)
    assert.ok(!existsSync(out), `${what}: a failed conversion left ${out} behind`)
  } else {
    assert.ok(existsSync(join(out, 'model_metadata.json')), `${what}: exit 0 without a bundle`)
  }
}

test('the libhdf5 SIGSEGV reproducer is one clear error, exit 1', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kedge-repro-'))
  try {
    const out = join(dir, 'bundle')
    const r = convert(join(fixturesDir, 'converter/bad/hdf5-segv-mutated-rnn.h5'), out)
    checkOutcome(r, out, 'reproducer')
    assert.equal(r.status, 1)
    assert.match(r.stderr, /corrupt HDF5 file \(the HDF5 library failed reading object '[^']+'\)/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('byte-mutated .h5 files: exit 0 or one clear error, never a signal or a hang', { skip, timeout: 600_000 }, () => {
  // Every model.h5 of a few suites, in a fixed order: tf-keras and Keras 3 layouts, graphs, sequence models.
  const files = []
  for (const suite of ['layers_k2', 'layers_k3', 'graphs', 'sequence_k2', 'sequence_k3']) {
    const dir = join(fixturesDir, suite)
    if (!existsSync(dir)) continue
    for (const c of readdirSync(dir).sort()) {
      const f = join(dir, c, 'model.h5')
      if (existsSync(f) && statSync(f).size < 200_000) files.push(f)
    }
  }
  assert.ok(files.length >= 50, `only ${files.length} fixture .h5 files`)
  let seed = 0x5eed1234
  const rand = n => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed % n }
  const total = Number(process.env.KEDGE_MUTATIONS ?? 240)
  const dir = mkdtempSync(join(tmpdir(), 'kedge-mutate-'))
  const counts = { converted: 0, refused: 0, corruptHDF5: 0 }
  try {
    for (let i = 0; i < total; i++) {
      const src = files[rand(files.length)]
      const bytes = new Uint8Array(readFileSync(src))
      // 1-16 bytes: most in the first 4 KB (superblock, root group, object headers), the rest anywhere.
      const n = 1 + rand(16)
      for (let k = 0; k < n; k++) {
        const at = rand(2) ? rand(Math.min(4096, bytes.length)) : rand(bytes.length)
        bytes[at] = rand(3) === 0 ? 0xff : rand(256)
      }
      const file = join(dir, `m${i}.h5`)
      writeFileSync(file, bytes)
      const out = join(dir, `b${i}`)
      const r = convert(file, out)
      checkOutcome(r, out, `mutation ${i} of ${src}`)
      if (r.status === 0) counts.converted++
      else if (/corrupt HDF5 file/.test(r.stderr)) counts.corruptHDF5++
      else counts.refused++
      rmSync(file, { force: true })
      rmSync(out, { recursive: true, force: true })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`convert-mutation: ${total} mutations of ${files.length} files: ${counts.converted} converted, ` +
    `${counts.refused} refused with an error, ${counts.corruptHDF5} crashed libhdf5 in the reader (one-line error)`)
})
