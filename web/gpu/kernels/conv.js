// conv (1-3D, strides, dilation, padBefore, groups) as implicit GEMM: M = output pixels, N = Cout/groups,
// K = taps * Cin/groups, kernel [k1..kr, cin/groups, cout] read in place (row k = tap * cinG + ci).
import { gemm } from './gemm.js'
import { prod, to3 } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  const p = step.params
  const xs = inputs[0].shape, ys = outputs[0].shape
  const r = p.rank
  const [D, H, W] = to3(xs.slice(1, 1 + r), 1), [OD, OH, OW] = to3(ys.slice(1, 1 + r), 1)
  const [KD, KH, KW] = to3(p.kernel, 1), [SD, SH, SW] = to3(p.strides, 1)
  const [DD, DH, DW] = to3(p.dilation, 1), [PD, PH, PW] = to3(p.padBefore, 0)
  const cin = xs[xs.length - 1], cout = ys[ys.length - 1], groups = p.groups ?? 1
  const cinG = cin / groups, coutG = cout / groups
  const M = ys[0] * OD * OH * OW, K = KD * KH * KW * cinG
  const loadA = `
    let ow = m % ${OW}u; let r1 = m / ${OW}u; let oh = r1 % ${OH}u; let r2 = r1 / ${OH}u;
    let od = r2 % ${OD}u; let b = r2 / ${OD}u;
    let ci = k % ${cinG}u; let tap = k / ${cinG}u;
    let kw = tap % ${KW}u; let kh = (tap / ${KW}u) % ${KH}u; let kd = tap / ${KW * KH}u;
    let iz = i32(od * ${SD}u + kd * ${DD}u) - ${PD}; let iy = i32(oh * ${SH}u + kh * ${DH}u) - ${PH};
    let ix = i32(ow * ${SW}u + kw * ${DW}u) - ${PW};
    if (iz < 0 || iz >= ${D} || iy < 0 || iy >= ${H} || ix < 0 || ix >= ${W}) { return 0.0; }
    return x[(((b * ${D}u + u32(iz)) * ${H}u + u32(iy)) * ${W}u + u32(ix)) * ${cin}u + g * ${cinG}u + ci];`
  const hasBias = step.weights?.bias !== undefined && step.weights?.bias !== null
  const buffers = [inputs[0].buffer, ctx.weights[step.weights.kernel]]
  if (hasBias) buffers.push(ctx.weights[step.weights.bias])
  buffers.push(outputs[0].buffer)
  void prod
  gemm(ctx, {
    M, N: coutG, K, groups, loadA, bBase: `k * ${cout}u + g * ${coutG}u + n`, outCol: `g * ${coutG}u + n`, ldc: cout,
    bias: hasBias, act: step.activation, buffers,
  })
}
