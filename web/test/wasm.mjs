// Where the tests find kedge.wasm: $KEDGE_WASM, else the build output (run `bash wasm/build.sh` first).
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { KedgeRuntime } from '../kedge-runtime.js'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const wasmPath = process.env.KEDGE_WASM || fileURLToPath(new URL('../../wasm/out/kedge.wasm', import.meta.url))

let module = null
/** A fresh instance (its own memory) of the built module. */
export async function runtime() {
  if (!module) {
    if (!existsSync(wasmPath)) throw new Error(`${wasmPath} does not exist: run \`bash wasm/build.sh\` first`)
    module = await WebAssembly.compile(readFileSync(wasmPath))
  }
  return KedgeRuntime.instantiate(module)
}
