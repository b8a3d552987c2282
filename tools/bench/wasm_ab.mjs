// A/B timing of two wasm modules on the five bench models, interleaved in one node process (the machines here are
// shared and noisy, so only the ratio in one run means anything). Prints median ms of each and B/A, and whether
// the outputs are bitwise equal.
//
//   node tools/bench/wasm_ab.mjs A.wasm B.wasm [runs=15] [models=conv2d_net,conv3d_net,res3d,resnet18,mobilenetv2]
//   node --experimental-wasm-relaxed-simd tools/bench/wasm_ab.mjs old/kedge-relaxed.wasm wasm/out/kedge-relaxed.wasm
//
// The bundles are bench-models/NAME.bundle (python3 tools/bench/compare_tf.py makes them).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { KedgeRuntime } from '../../web/kedge-runtime.js'
import { fileURLToPath } from 'node:url'
const root = fileURLToPath(new URL('../..', import.meta.url))
const [a, b, runsArg, modelsArg] = process.argv.slice(2)
const runs = Number(runsArg ?? 15)
const models = (modelsArg ?? 'conv2d_net,conv3d_net,res3d,resnet18,mobilenetv2').split(',')
const rts = [await KedgeRuntime.instantiate(readFileSync(a)), await KedgeRuntime.instantiate(readFileSync(b))]
const med = xs => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
for (const m of models) {
  const dir = join(root, 'bench-models', m + '.bundle')
  const files = ['model.json', 'model_weights.buf', 'model_metadata.json'].map(f => readFileSync(join(dir, f)))
  const hs = rts.map(rt => rt.load(...files))
  const inputs = {}
  for (const info of hs[0].list(0, false)) {
    const shape = info.shape.map(d => (d < 0 ? 1 : d)); const n = shape.reduce((x, y) => x * y, 1)
    const data = new Float32Array(n); for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.37)
    inputs[info.name] = { data, shape }
  }
  const outs = hs.map(h => h.predict(inputs).outputs[0].data)
  let same = outs[0].length === outs[1].length && outs[0].every((v, i) => Object.is(v, outs[1][i]))
  const t = [[], []]
  for (let r = 0; r < runs + 2; r++) for (const k of (r % 2 ? [1, 0] : [0, 1])) {
    const t0 = performance.now(); hs[k].predict(inputs); const dt = performance.now() - t0
    if (r >= 2) t[k].push(dt)
  }
  const ma = med(t[0]), mb = med(t[1])
  console.log(`${m.padEnd(12)} A ${ma.toFixed(1)} ms  B ${mb.toFixed(1)} ms  B/A ${(mb / ma).toFixed(3)}  outputs bitwise equal: ${same}`)
  hs.forEach(h => h.dispose())
}
