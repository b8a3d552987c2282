// Plain JS references of the GPU kernels (straightforward loops), for web/test/gpu/kernels.html.
const prod = a => a.reduce((x, y) => x * y, 1)
const to3 = (a, fill) => { const r = [...a]; while (r.length < 3) r.unshift(fill); return r }
const sig = x => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)))
const sp = x => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)))
function erf(x) { // Maclaurin series (exact to ~1e-9 for |x| <= 4; beyond, erf is 1 to within 2e-8)
  if (Math.abs(x) > 4) return Math.sign(x)
  let s = 0, t = x, n = 0
  while (Math.abs(t) > 1e-17 && n < 200) { s += t / (2 * n + 1); n++; t *= -x * x / n }
  return 2 / Math.sqrt(Math.PI) * s
}
export function act(a, x) {
  switch (a?.kind ?? 'linear') {
    case 'linear': return x
    case 'relu': {
      const s = a.negativeSlope ?? 0, m = a.maxValue ?? null, t = a.threshold ?? 0
      let y = t !== 0 ? (x > t ? x : 0) : Math.max(x, 0)
      if (m !== null) y = Math.min(Math.max(y, 0), m)
      if (s !== 0) y -= s * Math.max(t - x, 0)
      return y
    }
    case 'elu': return x > 0 ? x : a.alpha * Math.expm1(x)
    case 'selu': return x > 0 ? 1.0507009873554805 * x : 1.0507009873554805 * 1.6732632423543772 * Math.expm1(x)
    case 'softplus': return sp(x)
    case 'softsign': return x / (1 + Math.abs(x))
    case 'tanh': return Math.tanh(x)
    case 'sigmoid': return sig(x)
    case 'hardSigmoid': return a.keras3 === false ? Math.min(Math.max(0.2 * x + 0.5, 0), 1) : Math.min(Math.max(x + 3, 0), 6) / 6
    case 'hardSwish': return x * Math.min(Math.max(x + 3, 0), 6) / 6
    case 'swish': return x * sig(x)
    case 'gelu': return a.approximate ? 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3))) : 0.5 * x * (1 + erf(x / Math.SQRT2))
    case 'mish': return x * Math.tanh(sp(x))
    case 'exponential': return Math.exp(x)
    case 'celu': return Math.max(x, 0) + a.alpha * Math.expm1(Math.min(x, 0) / a.alpha)
    case 'squareplus': return (x + Math.sqrt(x * x + a.b)) / 2
    case 'softShrink': return x > a.threshold ? x - a.threshold : x < -a.threshold ? x + a.threshold : 0
    case 'hardShrink': return Math.abs(x) > a.threshold ? x : 0
    case 'sparsePlus': return x <= -1 ? 0 : x < 1 ? 0.25 * (x + 1) ** 2 : x
    case 'sparseSigmoid': return x <= -1 ? 0 : x >= 1 ? 1 : 0.5 * (x + 1)
    case 'tanhShrink': return x - Math.tanh(x)
    case 'hardTanh': return Math.min(Math.max(x, -1), 1)
    case 'logSigmoid': return -sp(-x)
  }
  throw new Error('no reference for ' + a.kind)
}

// Reference of one step: (step, [{data, shape}], weights: Float32Array[], outShape) -> Float64Array
export function reference(step, ins, weights, ys) {
  if (['concat', 'pad', 'crop', 'transpose', 'upsample', 'depthwiseConv', 'convTranspose'].includes(step.op)) return referenceLayout(step, ins, weights, ys)
  const p = step.params ?? {}, y = new Float64Array(prod(ys)), a = v => act(step.activation, v)
  const xs = ins[0].shape, x = ins[0].data
  switch (step.op) {
    case 'conv': {
      const r = p.rank, [D, H, W] = to3(xs.slice(1, 1 + r), 1), [OD, OH, OW] = to3(ys.slice(1, 1 + r), 1)
      const [KD, KH, KW] = to3(p.kernel, 1), [SD, SH, SW] = to3(p.strides, 1), [DD, DH, DW] = to3(p.dilation, 1)
      const [PD, PH, PW] = to3(p.padBefore, 0), cin = xs.at(-1), cout = ys.at(-1), G = p.groups, cg = cin / G, og = cout / G
      const k = weights[step.weights.kernel], bias = step.weights.bias != null ? weights[step.weights.bias] : null
      let o = 0
      for (let b = 0; b < ys[0]; b++) for (let od = 0; od < OD; od++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++)
        for (let co = 0; co < cout; co++) {
          const g = Math.floor(co / og); let s = bias ? bias[co] : 0
          for (let kd = 0; kd < KD; kd++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
            const iz = od * SD - PD + kd * DD, iy = oh * SH - PH + kh * DH, ix = ow * SW - PW + kw * DW
            if (iz < 0 || iz >= D || iy < 0 || iy >= H || ix < 0 || ix >= W) continue
            for (let ci = 0; ci < cg; ci++)
              s += x[(((b * D + iz) * H + iy) * W + ix) * cin + g * cg + ci] * k[(((kd * KH + kh) * KW + kw) * cg + ci) * cout + co]
          }
          y[o++] = a(s)
        }
      return y
    }
    case 'dense': {
      const K = xs.at(-1), N = ys.at(-1), M = prod(xs) / K, k = weights[step.weights.kernel]
      const bias = step.weights.bias != null ? weights[step.weights.bias] : null
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        let s = bias ? bias[n] : 0
        for (let i = 0; i < K; i++) s += x[m * K + i] * k[i * N + n]
        y[m * N + n] = a(s)
      }
      return y
    }
    case 'pool': {
      const r = p.rank, [D, H, W] = to3(xs.slice(1, 1 + r), 1), [OD, OH, OW] = to3(ys.slice(1, 1 + r), 1), C = xs.at(-1)
      const [KD, KH, KW] = to3(p.size, 1), [SD, SH, SW] = to3(p.strides, 1), [PD, PH, PW] = to3(p.padBefore, 0)
      let o = 0
      for (let b = 0; b < ys[0]; b++) for (let od = 0; od < OD; od++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++)
        for (let c = 0; c < C; c++) {
          let s = p.kind === 'max' ? -Infinity : 0, n = 0
          for (let kd = 0; kd < KD; kd++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
            const iz = od * SD - PD + kd, iy = oh * SH - PH + kh, ix = ow * SW - PW + kw
            if (iz < 0 || iz >= D || iy < 0 || iy >= H || ix < 0 || ix >= W) continue
            const v = x[(((b * D + iz) * H + iy) * W + ix) * C + c]
            s = p.kind === 'max' ? Math.max(s, v) : s + v; n++
          }
          y[o++] = a(p.kind === 'max' ? s : s / n)
        }
      return y
    }
    case 'globalPool': {
      const C = xs.at(-1), S = prod(xs.slice(1, -1))
      for (let b = 0; b < xs[0]; b++) for (let c = 0; c < C; c++) {
        let s = p.kind === 'max' ? -Infinity : 0
        for (let i = 0; i < S; i++) { const v = x[(b * S + i) * C + c]; s = p.kind === 'max' ? Math.max(s, v) : s + v }
        y[b * C + c] = a(p.kind === 'max' ? s : s / S)
      }
      return y
    }
    case 'activation': for (let i = 0; i < y.length; i++) y[i] = a(x[i]); return y
    case 'copy': for (let i = 0; i < y.length; i++) y[i] = x[i]; return y
    case 'scaleShift': {
      const inner = prod(xs.slice(p.axis + 1)), C = xs[p.axis], sc = weights[p.scale], sh = weights[p.shift]
      for (let i = 0; i < y.length; i++) { const c = Math.floor(i / inner) % C; y[i] = a(x[i] * sc[c] + sh[c]) }
      return y
    }
    case 'softmax': {
      const ax = p.axis, n = xs[ax], inner = prod(xs.slice(ax + 1)), outer = prod(xs.slice(0, ax))
      for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
        const at = k => o * n * inner + k * inner + i
        let m = -Infinity; for (let k = 0; k < n; k++) m = Math.max(m, x[at(k)])
        let s = 0; for (let k = 0; k < n; k++) s += Math.exp(x[at(k)] - m)
        for (let k = 0; k < n; k++) y[at(k)] = p.log ? x[at(k)] - m - Math.log(s) : Math.exp(x[at(k)] - m) / s
      }
      return y
    }
    default: {
      // merges with numpy broadcasting
      const R = ys.length
      for (let i = 0; i < y.length; i++) {
        const idx = []; let q = i
        for (let d = R - 1; d >= 0; d--) { idx[d] = q % ys[d]; q = Math.floor(q / ys[d]) }
        const v = ins.map(({ data, shape }) => {
          const s = [...Array(R - shape.length).fill(1), ...shape]
          let off = 0; for (let d = 0; d < R; d++) off = off * s[d] + (s[d] === 1 ? 0 : idx[d])
          return data[off]
        })
        let r
        switch (step.op) {
          case 'add': r = v.reduce((p, q) => p + q); break
          case 'subtract': r = v[0] - v[1]; break
          case 'multiply': r = v.reduce((p, q) => p * q); break
          case 'average': r = v.reduce((p, q) => p + q) / v.length; break
          case 'maximum': r = Math.max(...v); break
          case 'minimum': r = Math.min(...v); break
          default: throw new Error('no reference for ' + step.op)
        }
        y[i] = a(r)
      }
      return y
    }
  }
}

// Layout ops and the direct depthwise / transposed convolutions.
const unravel = (i, s) => { const c = []; for (let d = s.length - 1; d >= 0; d--) { c[d] = i % s[d]; i = Math.floor(i / s[d]) } return c }
const ravel = (c, s) => c.reduce((a, v, d) => a * s[d] + v, 0)
export function referenceLayout(step, ins, weights, ys) {
  const p = step.params ?? {}, y = new Float64Array(prod(ys)), xs = ins[0].shape, x = ins[0].data, a = v => act(step.activation, v)
  for (let i = 0; i < y.length; i++) {
    const o = unravel(i, ys)
    switch (step.op) {
      case 'concat': { let at = 0; for (const t of ins) { if (o[p.axis] < at + t.shape[p.axis]) { const c = [...o]; c[p.axis] -= at; y[i] = t.data[ravel(c, t.shape)]; break } at += t.shape[p.axis] } break }
      case 'pad': { const c = o.map((v, d) => v - p.before[d]); y[i] = c.every((v, d) => v >= 0 && v < xs[d]) ? x[ravel(c, xs)] : p.value; break }
      case 'crop': y[i] = x[ravel(o.map((v, d) => v + p.before[d]), xs)]; break
      case 'transpose': { const c = []; p.perm.forEach((src, d) => { c[src] = o[d] }); y[i] = x[ravel(c, xs)]; break }
      case 'upsample': if (p.interpolation === 'bilinear') {
        const [, H, W, C] = xs, src = (o, n, m) => (o + 0.5) * (n / m) - 0.5
        const sy = Math.fround(src(o[1], H, ys[1])), sx = Math.fround(src(o[2], W, ys[2]))
        const y0 = Math.max(Math.floor(sy), 0), y1 = Math.min(Math.ceil(sy), H - 1), x0 = Math.max(Math.floor(sx), 0), x1 = Math.min(Math.ceil(sx), W - 1)
        const wy = sy - Math.floor(sy), wx = sx - Math.floor(sx), at = (yy, xx) => x[((o[0] * H + yy) * W + xx) * C + o[3]]
        const t = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * wx, bo = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * wx
        y[i] = t + (bo - t) * wy; break
      }
        y[i] = x[ravel(o.map((v, d) => (d >= 1 && d <= p.size.length ? Math.floor(v / p.size[d - 1]) : v)), xs)]; break
      case 'depthwiseConv': case 'convTranspose': {
        const r = p.rank, sp = o.slice(1, 1 + r), co = o.at(-1), b = o[0], k = weights[step.weights.kernel]
        let s = step.weights.bias != null ? weights[step.weights.bias][co] : 0
        const taps = prod(p.kernel)
        for (let t = 0; t < taps; t++) {
          const tc = unravel(t, p.kernel)
          if (step.op === 'depthwiseConv') {
            const ic = sp.map((v, d) => v * p.strides[d] - p.padBefore[d] + tc[d] * p.dilation[d])
            if (ic.some((v, d) => v < 0 || v >= xs[1 + d])) continue
            const c = Math.floor(co / p.multiplier)
            s += x[ravel([b, ...ic, c], xs)] * k[t * ys.at(-1) + co]
          } else {
            const tt = sp.map((v, d) => v + p.padBefore[d] - tc[d] * p.dilation[d])
            if (tt.some((v, d) => v < 0 || v % p.strides[d] !== 0 || v / p.strides[d] >= xs[1 + d])) continue
            const ic = tt.map((v, d) => v / p.strides[d]), CI = xs.at(-1)
            for (let ci = 0; ci < CI; ci++) s += x[ravel([b, ...ic, ci], xs)] * k[(t * ys.at(-1) + co) * CI + ci]
          }
        }
        y[i] = a(s); break
      }
      default: throw new Error('no reference for ' + step.op)
    }
  }
  return y
}
