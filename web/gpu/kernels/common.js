// Shared helpers of the WGSL kernels: the fused-activation generator (formulas of
// Sources/KedgeCore/Layers/Activation.swift applyPointwise), the pipeline cache, and dispatch splitting
// (maxComputeWorkgroupsPerDimension 65535: large dispatches become 2D grids; shaders read a linear id).

const f = v => {
  const s = Number(v).toString()
  return /[.eE]/.test(s) ? s : s + '.0'
}

// WGSL text of `fn act(x: f32) -> f32` for a PLAN.md activation object (absent = linear).
export function activationWGSL(a) {
  const helpers = `
fn k_sigmoid(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }
fn k_softplus(x: f32) -> f32 { if (x > 0.0) { return x + log(1.0 + exp(-x)); } return log(1.0 + exp(x)); }
fn k_expm1(x: f32) -> f32 { if (abs(x) < 1e-3) { return x + 0.5 * x * x + x * x * x / 6.0; } return exp(x) - 1.0; }
fn k_tanh(x: f32) -> f32 { let c = clamp(x, -15.0, 15.0); let e = exp(2.0 * c); return (e - 1.0) / (e + 1.0); }
fn k_erf(x: f32) -> f32 {
  let s = sign(x); let a = abs(x); let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
`
  const k = a?.kind ?? 'linear'
  let body
  switch (k) {
    case 'linear': body = 'return x;'; break
    case 'relu': {
      const slope = a.negativeSlope ?? 0, m = a.maxValue ?? null, t = a.threshold ?? 0
      if (slope === 0 && t === 0) body = m === null ? 'return max(x, 0.0);' : `return min(max(x, 0.0), ${f(m)});`
      else {
        body = `var y: f32 = ${t !== 0 ? `select(0.0, x, x > ${f(t)})` : 'max(x, 0.0)'};`
        if (m !== null) body += ` y = min(max(y, 0.0), ${f(m)});`
        if (slope !== 0) body += ` y = y - ${f(slope)} * max(${f(t)} - x, 0.0);`
        body += ' return y;'
      }
      break
    }
    case 'elu': body = `if (x > 0.0) { return x; } return ${f(a.alpha ?? 1)} * k_expm1(x);`; break
    case 'selu': body = 'if (x > 0.0) { return 1.0507009873554805 * x; } return 1.0507009873554805 * 1.6732632423543772 * k_expm1(x);'; break
    case 'softplus': body = 'return k_softplus(x);'; break
    case 'softsign': body = 'return x / (1.0 + abs(x));'; break
    case 'tanh': body = 'return k_tanh(x);'; break
    case 'sigmoid': body = 'return k_sigmoid(x);'; break
    case 'hardSigmoid': body = a.keras3 === false ? 'return min(max(0.2 * x + 0.5, 0.0), 1.0);' : 'return min(max(x + 3.0, 0.0), 6.0) / 6.0;'; break
    case 'hardSwish': body = 'return x * (min(max(x + 3.0, 0.0), 6.0) / 6.0);'; break
    case 'swish': body = 'return x * k_sigmoid(x);'; break
    case 'gelu': body = a.approximate
      ? 'return 0.5 * x * (1.0 + k_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));'
      : 'return 0.5 * x * (1.0 + k_erf(x * 0.7071067811865476));'; break
    case 'mish': body = 'return x * k_tanh(k_softplus(x));'; break
    case 'exponential': body = 'return exp(x);'; break
    case 'celu': body = `return max(x, 0.0) + ${f(a.alpha ?? 1)} * k_expm1(min(x, 0.0) / ${f(a.alpha ?? 1)});`; break
    case 'squareplus': body = `return (x + sqrt(x * x + ${f(a.b ?? 4)})) / 2.0;`; break
    case 'softShrink': { const t = f(a.threshold ?? 0.5); body = `if (x > ${t}) { return x - ${t}; } if (x < -${t}) { return x + ${t}; } return 0.0;`; break }
    case 'hardShrink': body = `if (abs(x) > ${f(a.threshold ?? 0.5)}) { return x; } return 0.0;`; break
    case 'sparsePlus': body = 'if (x <= -1.0) { return 0.0; } if (x < 1.0) { return 0.25 * (x + 1.0) * (x + 1.0); } return x;'; break
    case 'sparseSigmoid': body = 'if (x <= -1.0) { return 0.0; } if (x >= 1.0) { return 1.0; } return 0.5 * (x + 1.0);'; break
    case 'tanhShrink': body = 'return x - k_tanh(x);'; break
    case 'hardTanh': body = 'return min(max(x, -1.0), 1.0);'; break
    case 'logSigmoid': body = 'return -k_softplus(-x);'; break
    default: throw new Error(`gpu kernels: activation '${k}' has no WGSL`)
  }
  return `${helpers}\nfn act(x: f32) -> f32 { ${body} }\n`
}

export function pipelineFor(ctx, code) {
  let p = ctx.pipelines.get(code)
  if (!p) {
    const module = ctx.device.createShaderModule({ code })
    p = ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
    ctx.pipelines.set(code, p)
  }
  return p
}

// Bindings in order: every buffer in `buffers` at binding i of group 0 (the shader declares them so).
export function bindAndDispatch(ctx, pipeline, buffers, groups, z = 1) {
  const bind = ctx.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((b, i) => ({ binding: i, resource: { buffer: b } })),
  })
  const [gx, gy] = grid(groups)
  ctx.pass.setPipeline(pipeline)
  ctx.pass.setBindGroup(0, bind)
  ctx.pass.dispatchWorkgroups(gx, gy, z)
}

// A linear count of workgroups as a 2D grid within 65535 per dimension. Shaders compute
// `wid = wg.x + wg.y * GX` and skip wid >= count (uniformly: the whole workgroup).
export function grid(groups) {
  const max = 65535
  if (groups <= max) return [Math.max(groups, 1), 1]
  const gy = Math.ceil(groups / max)
  return [Math.ceil(groups / gy), gy]
}

export const prod = a => a.reduce((x, y) => x * y, 1)

// Declarations of storage bindings: names of read-only inputs, then the output.
export function bindings(inputs, output = 'y') {
  return inputs.map((n, i) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`).join('\n') +
    `\n@group(0) @binding(${inputs.length}) var<storage, read_write> ${output}: array<f32>;\n`
}

// An elementwise kernel: one thread per output element, 256 per workgroup, `body` sets y[i] from i (u32).
export function elementwise(ctx, names, buffers, total, body, extra = '') {
  if (total === 0) return
  const groups = Math.ceil(total / 256)
  const [gx] = grid(groups)
  const code = `${bindings(names)}${extra}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * ${gx}u) * 256u + li;
  if (i >= ${total}u) { return; }
  ${body}
}`
  bindAndDispatch(ctx, pipelineFor(ctx, code), buffers, groups)
}

// Spatial dims of a channels-last [N, s1..sr, C] shape padded to 3 (leading 1s).
export const to3 = (a, fill) => { const r = [...a]; while (r.length < 3) r.unshift(fill); return r }
