// The size budget of kedge.wasm (the issue's: under 400 KB uncompressed, read as 400,000 bytes), checked on the
// modules the build just wrote. Sizes are deterministic for a given toolchain, so this is not a timing test.
// wasm/ABI.md "Module size" says where the bytes are and what to do when this fails.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { wasmPath } from './wasm.mjs'

const BUDGET = 400_000

for (const name of ['kedge.wasm', 'kedge-relaxed.wasm']) {
  test(`${name} is under the ${BUDGET}-byte budget`, t => {
    const p = join(dirname(wasmPath), name)
    if (name !== 'kedge.wasm' && !existsSync(p)) return t.skip(`${p} not built (KEDGE_WASM_RELAXED=0)`)
    const size = statSync(p).size
    assert.ok(
      size < BUDGET,
      `${p} is ${size} bytes, over the ${BUDGET}-byte budget by ${size - BUDGET}: see wasm/ABI.md "Module size" ` +
        '(make the new code smaller, or move its family to kedge-full.wasm)')
  })
}
