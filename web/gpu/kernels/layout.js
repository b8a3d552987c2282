// Layout kernels, one thread per output element: concat, pad, crop, transpose, upsample (nearest), depthwiseConv,
// convTranspose (gather form of out[i * stride - padBefore + tap * dilation] += in[i] * w[tap]).
import { activationWGSL, elementwise, prod, to3 } from './common.js'

// WGSL lines setting o0..o{R-1} from the linear index i over `shape`.
const coords = shape => {
  let s = 'var q = i;'
  for (let d = shape.length - 1; d >= 0; d--) s += ` let o${d} = q % ${shape[d]}u; q = q / ${shape[d]}u;`
  return s
}
const linear = (shape, names) => names.reduce((a, n, d) => (d === 0 ? n : `(${a}) * ${shape[d]}u + ${n}`), '')

export const concat = { encode(ctx, step, inputs, outputs) {
  const ys = outputs[0].shape, ax = step.params.axis, names = inputs.map((_, j) => `x${j}`)
  let at = 0, body = coords(ys)
  inputs.forEach(({ shape }, j) => {
    const idx = shape.map((_, d) => (d === ax ? `(o${d} - ${at}u)` : `o${d}`))
    body += ` if (o${ax} >= ${at}u && o${ax} < ${at + shape[ax]}u) { y[i] = x${j}[${linear(shape, idx)}]; return; }`
    at += shape[ax]
  })
  elementwise(ctx, names, [...inputs.map(t => t.buffer), outputs[0].buffer], prod(ys), body)
} }

export const pad = { encode(ctx, step, inputs, outputs) {
  const ys = outputs[0].shape, xs = inputs[0].shape, b = step.params.before, v = step.params.value ?? 0
  let body = coords(ys)
  body += ' var inside = true;'
  xs.forEach((n, d) => { body += ` let j${d} = i32(o${d}) - ${b[d]}; if (j${d} < 0 || j${d} >= ${n}) { inside = false; }` })
  body += ` if (!inside) { y[i] = f32(${v}); return; } y[i] = x[${linear(xs, xs.map((_, d) => `u32(j${d})`))}];`
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(ys), body)
} }

export const crop = { encode(ctx, step, inputs, outputs) {
  const ys = outputs[0].shape, xs = inputs[0].shape, b = step.params.before
  const body = coords(ys) + ` y[i] = x[${linear(xs, ys.map((_, d) => `(o${d} + ${b[d]}u)`))}];`
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(ys), body)
} }

export const transpose = { encode(ctx, step, inputs, outputs) {
  const ys = outputs[0].shape, xs = inputs[0].shape, perm = step.params.perm
  const inv = xs.map((_, d) => `o${perm.indexOf(d)}`)
  const body = coords(ys) + ` y[i] = x[${linear(xs, inv)}];`
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(ys), body)
} }

export const upsample = { encode(ctx, step, inputs, outputs) {
  const ys = outputs[0].shape, xs = inputs[0].shape, size = step.params.size
  const mode = step.params.interpolation ?? 'nearest'
  if (mode === 'bilinear' && xs.length === 4) {
    // tf.image.resize bilinear with half-pixel centres, as Sources/KedgeCore/Kernels/Resize.swift resizeBilinear.
    const [, H, W, C] = xs, [, OH, OW] = ys
    const body = `${coords(ys)}
  let sy = (f32(o1) + 0.5) * ${H / OH} - 0.5; let fy = floor(sy); let y0 = u32(max(i32(fy), 0)); let y1 = u32(min(i32(ceil(sy)), ${H - 1})); let wy = sy - fy;
  let sx = (f32(o2) + 0.5) * ${W / OW} - 0.5; let fx = floor(sx); let x0 = u32(max(i32(fx), 0)); let x1 = u32(min(i32(ceil(sx)), ${W - 1})); let wx = sx - fx;
  let base = o0 * ${H * W * C}u + o3;
  let tl = x[base + (y0 * ${W}u + x0) * ${C}u]; let tr = x[base + (y0 * ${W}u + x1) * ${C}u];
  let bl = x[base + (y1 * ${W}u + x0) * ${C}u]; let br = x[base + (y1 * ${W}u + x1) * ${C}u];
  let t = tl + (tr - tl) * wx; let bo = bl + (br - bl) * wx;
  y[i] = t + (bo - t) * wy;`
    elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(ys), body)
    return
  }
  if (mode !== 'nearest') throw new Error(`upsample: '${mode}' has no GPU kernel`)
  const idx = xs.map((_, d) => (d >= 1 && d <= size.length ? `(o${d} / ${size[d - 1]}u)` : `o${d}`))
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(ys), coords(ys) + ` y[i] = x[${linear(xs, idx)}];`)
} }

function spatial(step, xs, ys) {
  const p = step.params, r = p.rank
  return {
    I: to3(xs.slice(1, 1 + r), 1), O: to3(ys.slice(1, 1 + r), 1), K: to3(p.kernel, 1), S: to3(p.strides, 1),
    Dl: to3(p.dilation, 1), P: to3(p.padBefore, 0),
  }
}
const head = (C, O) => `let co = i % ${C}u; var q = i / ${C}u; let ow = q % ${O[2]}u; q = q / ${O[2]}u; let oh = q % ${O[1]}u; q = q / ${O[1]}u; let od = q % ${O[0]}u; let b = q / ${O[0]}u;`
function withBias(ctx, step, inputs, outputs, body) {
  const hasBias = step.weights?.bias != null
  const names = ['x', 'w', ...(hasBias ? ['bias'] : [])]
  const bufs = [inputs[0].buffer, ctx.weights[step.weights.kernel], ...(hasBias ? [ctx.weights[step.weights.bias]] : []), outputs[0].buffer]
  elementwise(ctx, names, bufs, prod(outputs[0].shape), body.replace('INIT', hasBias ? 'bias[co]' : '0.0'), activationWGSL(step.activation))
}

export const depthwiseConv = { encode(ctx, step, inputs, outputs) {
  const xs = inputs[0].shape, ys = outputs[0].shape, { I, O, K, S, Dl, P } = spatial(step, xs, ys)
  const C = xs.at(-1), M = step.params.multiplier, CO = ys.at(-1)
  const body = `${head(CO, O)} let c = co / ${M}u; var s: f32 = INIT;
  for (var kd = 0u; kd < ${K[0]}u; kd++) { let iz = i32(od * ${S[0]}u + kd * ${Dl[0]}u) - ${P[0]}; if (iz < 0 || iz >= ${I[0]}) { continue; }
  for (var kh = 0u; kh < ${K[1]}u; kh++) { let iy = i32(oh * ${S[1]}u + kh * ${Dl[1]}u) - ${P[1]}; if (iy < 0 || iy >= ${I[1]}) { continue; }
  for (var kw = 0u; kw < ${K[2]}u; kw++) { let ix = i32(ow * ${S[2]}u + kw * ${Dl[2]}u) - ${P[2]}; if (ix < 0 || ix >= ${I[2]}) { continue; }
    s = s + x[(((b * ${I[0]}u + u32(iz)) * ${I[1]}u + u32(iy)) * ${I[2]}u + u32(ix)) * ${C}u + c] * w[((kd * ${K[1]}u + kh) * ${K[2]}u + kw) * ${CO}u + co];
  } } }
  y[i] = act(s);`
  withBias(ctx, step, inputs, outputs, body)
} }

export const convTranspose = { encode(ctx, step, inputs, outputs) {
  const xs = inputs[0].shape, ys = outputs[0].shape, { I, O, K, S, Dl, P } = spatial(step, xs, ys)
  const CI = xs.at(-1), CO = ys.at(-1)
  const ax = (n, o) => `let t${n} = i32(${o}) + ${P['dhw'.indexOf(n)]} - i32(k${n} * ${Dl['dhw'.indexOf(n)]}u); if (t${n} < 0 || t${n} % ${S['dhw'.indexOf(n)]} != 0 || t${n} / ${S['dhw'.indexOf(n)]} >= ${I['dhw'.indexOf(n)]}) { continue; } let i${n} = u32(t${n} / ${S['dhw'.indexOf(n)]});`
  const body = `${head(CO, O)} var s: f32 = INIT;
  for (var kd = 0u; kd < ${K[0]}u; kd++) { ${ax('d', 'od')}
  for (var kh = 0u; kh < ${K[1]}u; kh++) { ${ax('h', 'oh')}
  for (var kw = 0u; kw < ${K[2]}u; kw++) { ${ax('w', 'ow')}
    let xb = (((b * ${I[0]}u + id) * ${I[1]}u + ih) * ${I[2]}u + iw) * ${CI}u;
    let wb = (((kd * ${K[1]}u + kh) * ${K[2]}u + kw) * ${CO}u + co) * ${CI}u;
    for (var ci = 0u; ci < ${CI}u; ci++) { s = s + x[xb + ci] * w[wb + ci]; }
  } } }
  y[i] = act(s);`
  withBias(ctx, step, inputs, outputs, body)
} }
