// Where the tests find the modules: $KEDGE_WASM (kedge.wasm, the small build) and $KEDGE_WASM_FULL
// (kedge-full.wasm), else the build output (run `bash wasm/build.sh` first).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { KedgeRuntime } from '../kedge-runtime.js'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const wasmPath = process.env.KEDGE_WASM || fileURLToPath(new URL('../../wasm/out/kedge.wasm', import.meta.url))
export const fullWasmPath = process.env.KEDGE_WASM_FULL || join(dirname(wasmPath), 'kedge-full.wasm')

const paths = { kedge: wasmPath, 'kedge-full': fullWasmPath }
const modules = {}

/** The compiled module of a build: 'kedge' (kedge.wasm) or 'kedge-full' (kedge-full.wasm). */
export async function compiled(build = 'kedge') {
  if (!modules[build]) {
    const p = paths[build]
    if (!existsSync(p)) throw new Error(`${p} does not exist: run \`bash wasm/build.sh\` first`)
    modules[build] = await WebAssembly.compile(readFileSync(p))
  }
  return modules[build]
}

/** A fresh instance (its own memory) of a build's module. */
export async function runtime(build = 'kedge') {
  return KedgeRuntime.instantiate(await compiled(build))
}

/**
 * Loads a bundle as kedge.js does: into kedge.wasm, moving to a fresh kedge-full.wasm instance when kedge.wasm
 * leaves out a class the model needs. The handle's `runtime.build` says which one holds it.
 */
export async function loadAuto(files, { keepLayers = false } = {}) {
  const rt = await runtime('kedge')
  return rt.loadWithFallback(files.model, files.weights, files.metadata, { keepLayers, full: () => runtime('kedge-full') })
}
