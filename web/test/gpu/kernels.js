// Runs every GPU kernel of web/gpu/kernels on seeded random shapes/params and compares with reference.js
// (1e-4 abs, relative above 1). Posts {results: [{name, ok, err}]} to /result (web/test/gpu-kernels.test.mjs).
import { kernels } from '../../gpu/kernels/index.js'
import { reference } from './reference.js'

let seed = 12345
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
const ri = (a, b) => a + Math.floor(rnd() * (b - a + 1))
const pick = a => a[ri(0, a.length - 1)]
const prod = a => a.reduce((x, y) => x * y, 1)
const data = n => Float32Array.from({ length: n }, () => rnd() * 2 - 1)

const ACTS = [undefined, { kind: 'relu', negativeSlope: 0, maxValue: null, threshold: 0 }, { kind: 'relu', negativeSlope: 0.2, maxValue: 6, threshold: 0.1 },
  { kind: 'relu', negativeSlope: 0, maxValue: 6, threshold: 0 },
  { kind: 'elu', alpha: 1 }, { kind: 'selu' }, { kind: 'softplus' }, { kind: 'softsign' }, { kind: 'tanh' }, { kind: 'sigmoid' },
  { kind: 'hardSigmoid', keras3: true }, { kind: 'hardSigmoid', keras3: false }, { kind: 'hardSwish' }, { kind: 'swish' },
  { kind: 'gelu', approximate: false }, { kind: 'gelu', approximate: true }, { kind: 'mish' }, { kind: 'exponential' },
  { kind: 'celu', alpha: 0.7 }, { kind: 'squareplus', b: 4 }, { kind: 'softShrink', threshold: 0.5 }, { kind: 'hardShrink', threshold: 0.3 },
  { kind: 'sparsePlus' }, { kind: 'sparseSigmoid' }, { kind: 'tanhShrink' }, { kind: 'hardTanh' }, { kind: 'logSigmoid' }]

function convCase(name, opts = {}) {
  const r = opts.rank ?? ri(1, 3), groups = opts.groups ?? pick([1, 1, 2, 3])
  const cin = groups * (opts.cinG ?? ri(1, 5)), cout = groups * (opts.coutG ?? ri(1, 9))
  const kernel = [], strides = [], dilation = [], padBefore = [], sp = [], out = []
  for (let i = 0; i < r; i++) {
    const k = ri(1, 3), s = ri(1, 3), d = ri(1, 2), eff = (k - 1) * d + 1
    const n = opts.size ?? ri(Math.max(eff, 1), r === 3 ? 6 : 12)
    const pb = ri(0, Math.min(2, eff - 1)), pa = ri(0, 2)
    kernel.push(k); strides.push(s); dilation.push(d); padBefore.push(pb); sp.push(n)
    out.push(Math.floor((n + pb + pa - eff) / s) + 1)
  }
  const N = ri(1, 2)
  return {
    name, step: { op: 'conv', params: { rank: r, kernel, strides, dilation, padBefore, groups }, weights: { kernel: 0, bias: rnd() < 0.8 ? 1 : null }, activation: opts.act ?? pick(ACTS.slice(0, 4)) },
    inShapes: [[N, ...sp, cin]], outShape: [N, ...out, cout], weights: [data(prod(kernel) * (cin / groups) * cout), data(cout)],
  }
}

function cases() {
  const c = []
  for (let i = 0; i < 24; i++) c.push(convCase(`conv random ${i}`))
  c.push(convCase('conv 1x1 many channels', { rank: 2, groups: 1, cinG: 70, coutG: 67, size: 5 }))
  c.push(convCase('conv big K', { rank: 2, groups: 1, cinG: 37, coutG: 5, size: 9 }))
  // 2D conv with more than 65535 tiles' worth of rows is too slow on SwiftShader; the grid split is exercised by
  // the elementwise kernels below.
  for (let i = 0; i < 6; i++) {
    const lead = Array.from({ length: ri(1, 3) }, () => ri(1, 7)), K = ri(1, 80), N = ri(1, 90)
    c.push({ name: `dense ${i}`, step: { op: 'dense', params: { units: N }, weights: { kernel: 0, bias: i % 2 ? null : 1 }, activation: pick(ACTS) },
      inShapes: [[...lead, K]], outShape: [...lead, N], weights: [data(K * N), data(N)] })
  }
  for (let i = 0; i < 12; i++) {
    const r = ri(1, 3), size = [], strides = [], padBefore = [], sp = [], out = []
    for (let j = 0; j < r; j++) {
      const k = ri(1, 3), s = ri(1, 3), n = ri(k, r === 3 ? 7 : 11), pb = ri(0, k - 1), pa = ri(0, k - 1)
      size.push(k); strides.push(s); padBefore.push(pb); sp.push(n); out.push(Math.floor((n + pb + pa - k) / s) + 1)
    }
    const C = ri(1, 6)
    c.push({ name: `pool ${i}`, step: { op: 'pool', params: { kind: i % 2 ? 'max' : 'avg', rank: r, size, strides, padBefore } },
      inShapes: [[ri(1, 2), ...sp, C]], outShape: [ri(1, 1) && 0, ...out, C], weights: [] })
    c.at(-1).outShape[0] = c.at(-1).inShapes[0][0]
  }
  for (const kind of ['max', 'avg']) {
    c.push({ name: `globalPool ${kind}`, step: { op: 'globalPool', params: { kind, rank: 2 } }, inShapes: [[2, 5, 7, 3]], outShape: [2, 3], weights: [] })
  }
  ACTS.forEach((a, i) => c.push({ name: `activation ${a?.kind ?? 'none'} ${i}`, step: { op: 'activation', activation: a },
    inShapes: [[3, 257]], outShape: [3, 257], weights: [] }))
  ACTS.forEach((a, i) => c.push({ name: `activation ${a?.kind ?? 'none'} ${i} wide range`, step: { op: 'activation', activation: a },
    inShapes: [[1000]], outShape: [1000], weights: [], scale: a?.kind === 'exponential' ? 20 : 40 }))
  c.push({ name: 'softmax wide range', step: { op: 'softmax', params: { axis: 1, log: false } }, inShapes: [[3, 50]], outShape: [3, 50], weights: [], scale: 60 })
  c.push({ name: 'log softmax wide range', step: { op: 'softmax', params: { axis: 1, log: true } }, inShapes: [[3, 50]], outShape: [3, 50], weights: [], scale: 60 })
  c.push({ name: 'activation large (2D grid)', step: { op: 'activation', activation: ACTS[1] }, inShapes: [[65536 * 256 + 77]], outShape: [65536 * 256 + 77], weights: [] })
  c.push({ name: 'copy', step: { op: 'copy' }, inShapes: [[4, 5, 6]], outShape: [120], weights: [] })
  for (const [s, ax, log] of [[[2, 7], 1, false], [[2, 5, 3], 1, true], [[3, 4, 6], 2, false], [[1, 1000], 1, true]])
    c.push({ name: `softmax ${s} axis ${ax}${log ? ' log' : ''}`, step: { op: 'softmax', params: { axis: ax, log } }, inShapes: [s], outShape: s, weights: [] })
  c.push({ name: 'scaleShift', step: { op: 'scaleShift', params: { scale: 0, shift: 1, axis: 3 } }, inShapes: [[2, 3, 4, 5]], outShape: [2, 3, 4, 5], weights: [data(5), data(5)] })
  c.push({ name: 'scaleShift axis 1', step: { op: 'scaleShift', params: { scale: 0, shift: 1, axis: 1 }, activation: ACTS[1] }, inShapes: [[2, 3, 4]], outShape: [2, 3, 4], weights: [data(3), data(3)] })
  const bshapes = [[[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[2, 1, 4], [3, 1]], [[1], [5, 6]], [[2, 3, 1, 5], [1, 3, 4, 1], [4, 5]]]
  for (const op of ['add', 'subtract', 'multiply', 'average', 'maximum', 'minimum'])
    bshapes.forEach((ss, i) => {
      if (op === 'subtract' && ss.length !== 2) return
      const R = Math.max(...ss.map(s => s.length))
      const out = Array.from({ length: R }, (_, d) => Math.max(...ss.map(s => s[d - (R - s.length)] ?? 1)))
      c.push({ name: `${op} broadcast ${i}`, step: { op, activation: i === 1 ? ACTS[4] : undefined }, inShapes: ss, outShape: out, weights: [] })
    })

  c.push({ name: 'concat axis 1', step: { op: 'concat', params: { axis: 1 } }, inShapes: [[2, 3, 4], [2, 5, 4], [2, 1, 4]], outShape: [2, 9, 4], weights: [] })
  c.push({ name: 'concat last axis', step: { op: 'concat', params: { axis: 2 } }, inShapes: [[2, 3, 4], [2, 3, 7]], outShape: [2, 3, 11], weights: [] })
  c.push({ name: 'pad', step: { op: 'pad', params: { before: [0, 1, 2, 0], after: [0, 2, 0, 1], value: 0.5 } }, inShapes: [[2, 3, 4, 3]], outShape: [2, 6, 6, 4], weights: [] })
  c.push({ name: 'crop', step: { op: 'crop', params: { before: [0, 1, 2, 0] } }, inShapes: [[2, 5, 6, 3]], outShape: [2, 3, 2, 3], weights: [] })
  c.push({ name: 'transpose', step: { op: 'transpose', params: { perm: [0, 3, 1, 2] } }, inShapes: [[2, 3, 4, 5]], outShape: [2, 5, 3, 4], weights: [] })
  c.push({ name: 'upsample 2D', step: { op: 'upsample', params: { rank: 2, size: [2, 3], interpolation: 'nearest' } }, inShapes: [[2, 3, 4, 2]], outShape: [2, 6, 12, 2], weights: [] })
  c.push({ name: 'upsample bilinear', step: { op: 'upsample', params: { rank: 2, size: [2, 3], interpolation: 'bilinear' } }, inShapes: [[2, 3, 5, 3]], outShape: [2, 6, 15, 3], weights: [] })
  c.push({ name: 'upsample bilinear 1x1', step: { op: 'upsample', params: { rank: 2, size: [3, 2], interpolation: 'bilinear' } }, inShapes: [[1, 1, 4, 2]], outShape: [1, 3, 8, 2], weights: [] })
  c.push({ name: 'upsample 3D', step: { op: 'upsample', params: { rank: 3, size: [2, 1, 3] } }, inShapes: [[1, 2, 3, 2, 3]], outShape: [1, 4, 3, 6, 3], weights: [] })
  for (let i = 0; i < 8; i++) {
    const r = ri(1, 3), kernel = [], strides = [], dilation = [], padBefore = [], sp = [], out = [], outT = []
    for (let j = 0; j < r; j++) {
      const k = ri(1, 3), s = ri(1, 3), d = ri(1, 2), eff = (k - 1) * d + 1, n = ri(eff, r === 3 ? 5 : 9), pb = ri(0, eff - 1), pa = ri(0, 1)
      kernel.push(k); strides.push(s); dilation.push(d); padBefore.push(pb); sp.push(n)
      out.push(Math.floor((n + pb + pa - eff) / s) + 1); outT.push(Math.max(1, (n - 1) * s + eff - pb - pa))
    }
    const C = ri(1, 5), M = ri(1, 3), CO = ri(1, 6), N = ri(1, 2), bias = i % 2 ? null : 1
    c.push({ name: `depthwiseConv ${i}`, step: { op: 'depthwiseConv', params: { rank: r, kernel, strides, dilation, padBefore, multiplier: M }, weights: { kernel: 0, bias }, activation: pick(ACTS.slice(0, 4)) },
      inShapes: [[N, ...sp, C]], outShape: [N, ...out, C * M], weights: [data(prod(kernel) * C * M), data(C * M)] })
    c.push({ name: `convTranspose ${i}`, step: { op: 'convTranspose', params: { rank: r, kernel, strides, dilation, padBefore }, weights: { kernel: 0, bias }, activation: pick(ACTS.slice(0, 4)) },
      inShapes: [[N, ...sp, C]], outShape: [N, ...outT, CO], weights: [data(prod(kernel) * CO * C), data(CO)] })
  }
  return c
}

async function main() {
  const results = []
  const adapter = await navigator.gpu?.requestAdapter()
  if (!adapter) return { results, error: 'no WebGPU adapter' }
  const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } })
  const pipelines = new Map()
  const buf = d => {
    const b = device.createBuffer({ size: Math.max(4, d.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC })
    device.queue.writeBuffer(b, 0, d); return b
  }
  for (const t of cases()) {
    try {
      const ins = t.inShapes.map(s => ({ shape: s, data: data(prod(s)).map(v => v * (t.scale ?? 1)) }))
      const wb = t.weights.map(buf)
      const outN = prod(t.outShape)
      const out = device.createBuffer({ size: Math.max(4, outN * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC })
      const read = device.createBuffer({ size: Math.max(4, outN * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
      device.pushErrorScope('validation')
      const enc = device.createCommandEncoder()
      const pass = enc.beginComputePass()
      const ctx = { device, weights: wb, pipelines, pass }
      kernels[t.step.op].encode(ctx, t.step, ins.map(i => ({ buffer: buf(i.data), shape: i.shape })), [{ buffer: out, shape: t.outShape }])
      pass.end()
      enc.copyBufferToBuffer(out, 0, read, 0, outN * 4)
      device.queue.submit([enc.finish()])
      const verr = await device.popErrorScope()
      if (verr) throw new Error(verr.message)
      await read.mapAsync(GPUMapMode.READ)
      const got = new Float32Array(read.getMappedRange().slice(0))
      read.unmap()
      const want = reference(t.step, ins, t.weights, t.outShape)
      let err = 0, bad = -1
      for (let i = 0; i < outN; i++) {
        const e = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]))
        if (!(e <= err)) { err = e; bad = i }
        if (Number.isNaN(got[i])) { err = Infinity; bad = i; break }
      }
      results.push({ name: t.name, ok: err <= 1e-4, err, at: bad, got: got[bad], want: want[bad], params: JSON.stringify(t.step.params ?? {}) })
      out.destroy(); read.destroy()
    } catch (e) {
      results.push({ name: t.name, ok: false, err: String(e?.message ?? e) })
    }
  }
  return { results, adapter: adapter.info?.architecture ?? '' }
}

// Runs only as the page's script: `node --test web/test/` also loads every file under web/test, and there is no
// document (nor WebGPU) there.
if (typeof document !== 'undefined') {
  main().catch(e => ({ results: [], error: String(e?.stack ?? e) })).then(r => {
    document.getElementById('log').textContent = JSON.stringify(r, null, 1)
    return fetch('/result', { method: 'POST', body: JSON.stringify(r) })
  })
}
