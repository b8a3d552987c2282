#!/usr/bin/env node
// The wasm build from the command line, with the native `kedge predict` semantics:
//
//   node web/kedge-node.mjs predict BUNDLE_DIR --input NAME=FILE.npy [--input ...] --output-dir OUT [--all-layers]
//       [--wasm kedge.wasm] [--wasm-full kedge-full.wasm]
//
// writes OUT/<output name>.npy (float32, C order) and, with --all-layers, OUT/layers/<layer name>.npy. A model
// that needs a layer class kedge.wasm leaves out runs in kedge-full.wasm (--wasm-full, else beside kedge.wasm).

import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KedgeRuntime } from './kedge-runtime.js'
import { BUNDLE_FILES, fullRuntime, loadWasm } from './kedge-fetch.js'
import { parseNpy, writeNpy } from './npy.js'

const USAGE = 'usage: kedge-node.mjs predict BUNDLE_DIR --input NAME=FILE.npy [--input ...] --output-dir OUT [--all-layers] [--wasm FILE] [--wasm-full FILE]'

/** Layer names are user text; keep file names inside the output folder (as the native CLI does). */
export function safeFileName(name) {
  return Array.from(name, c => (/[\p{L}\p{N}_\-@.]/u.test(c) ? c : '_')).join('').replaceAll('..', '__')
}

function parseArgs(argv) {
  const a = { inputs: [], allLayers: false }
  const rest = [...argv]
  a.command = rest.shift()
  while (rest.length) {
    const t = rest.shift()
    const value = () => {
      if (!rest.length) throw new Error(`${t} needs a value\n${USAGE}`)
      return rest.shift()
    }
    if (t === '--input') a.inputs.push(value())
    else if (t.startsWith('--input=')) a.inputs.push(t.slice(8))
    else if (t === '--output-dir') a.outputDir = value()
    else if (t.startsWith('--output-dir=')) a.outputDir = t.slice(13)
    else if (t === '--wasm') a.wasm = value()
    else if (t === '--wasm-full') a.wasmFull = value()
    else if (t === '--all-layers') a.allLayers = true
    else if (t === '-h' || t === '--help') { a.help = true } else if (t.startsWith('-')) throw new Error(`unknown option ${t}\n${USAGE}`)
    else if (a.bundle === undefined) a.bundle = t
    else throw new Error(`unexpected argument ${t}\n${USAGE}`)
  }
  return a
}

export async function main(argv, log = console.log) {
  const a = parseArgs(argv)
  if (a.help) { log(USAGE); return }
  if (a.command !== 'predict') throw new Error(`unknown command ${a.command ?? '(none)'}\n${USAGE}`)
  if (!a.bundle) throw new Error(`the bundle folder is missing\n${USAGE}`)
  if (!a.outputDir) throw new Error(`--output-dir is missing\n${USAGE}`)

  const files = {}
  for (const [k, name] of Object.entries(BUNDLE_FILES)) {
    const p = join(a.bundle, name)
    try { files[k] = await readFile(p) } catch {
      throw new Error(`${p} is missing or unreadable; a bundle has model.json, model_weights.buf and model_metadata.json`)
    }
  }
  const runtime = await KedgeRuntime.instantiate(await loadWasm(a.wasm))
  let model
  try {
    model = await runtime.loadWithFallback(files.model, files.weights, files.metadata,
      { keepLayers: a.allLayers, full: fullRuntime({ wasm: a.wasm, wasmFull: a.wasmFull }) })
  } catch (e) {
    throw new Error(`${a.bundle}: ${e.message}`)
  }
  const inputs = {}
  for (const spec of a.inputs) {
    const eq = spec.indexOf('=')
    if (eq < 0) throw new Error(`--input '${spec}' must be NAME=FILE.npy; the model expects ${model.describeInputs()}`)
    const name = spec.slice(0, eq), file = spec.slice(eq + 1)
    let bytes
    try { bytes = await readFile(file) } catch { throw new Error(`cannot read ${file} (input '${name}')`) }
    try {
      const t = parseNpy(bytes)
      inputs[name] = { data: t.data, shape: t.shape }
    } catch (e) {
      throw new Error(`${file}: ${e.message}`)
    }
  }
  const r = model.predict(inputs, { recordLayers: a.allLayers })
  await mkdir(a.outputDir, { recursive: true })
  if (a.allLayers) {
    await mkdir(join(a.outputDir, 'layers'), { recursive: true })
    for (const t of r.layers) await writeFile(join(a.outputDir, 'layers', safeFileName(t.name) + '.npy'), writeNpy(t.shape, t.data))
  }
  for (const t of r.outputs) {
    await writeFile(join(a.outputDir, safeFileName(t.name) + '.npy'), writeNpy(t.shape, t.data))
    log(`${t.name} (${t.shape.join(', ')}${t.shape.length === 1 ? ',' : ''}) -> ${safeFileName(t.name)}.npy`)
  }
  model.dispose()
}

if (import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch(e => {
    console.error(`Error: ${e.message}`)
    process.exit(1)
  })
}
