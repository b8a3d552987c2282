// pool (max/avg, 1-3D): one thread per output element; max skips padded positions, avg divides by the count of
// in-input positions (Keras/TF 'same').
import { activationWGSL, elementwise, prod, to3 } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  const p = step.params, r = p.rank
  const xs = inputs[0].shape, ys = outputs[0].shape, C = xs[xs.length - 1]
  const [D, H, W] = to3(xs.slice(1, 1 + r), 1), [OD, OH, OW] = to3(ys.slice(1, 1 + r), 1)
  const [KD, KH, KW] = to3(p.size, 1), [SD, SH, SW] = to3(p.strides, 1), [PD, PH, PW] = to3(p.padBefore, 0)
  const max = p.kind === 'max'
  const body = `
  let c = i % ${C}u; var q = i / ${C}u;
  let ow = q % ${OW}u; q = q / ${OW}u; let oh = q % ${OH}u; q = q / ${OH}u; let od = q % ${OD}u; let b = q / ${OD}u;
  var acc: f32 = ${max ? '-3.402823e38' : '0.0'}; var n = 0u;
  for (var kd = 0; kd < ${KD}; kd++) { let iz = i32(od * ${SD}u) - ${PD} + kd; if (iz < 0 || iz >= ${D}) { continue; }
  for (var kh = 0; kh < ${KH}; kh++) { let iy = i32(oh * ${SH}u) - ${PH} + kh; if (iy < 0 || iy >= ${H}) { continue; }
  for (var kw = 0; kw < ${KW}; kw++) { let ix = i32(ow * ${SW}u) - ${PW} + kw; if (ix < 0 || ix >= ${W}) { continue; }
    let v = x[(((b * ${D}u + u32(iz)) * ${H}u + u32(iy)) * ${W}u + u32(ix)) * ${C}u + c];
    ${max ? 'acc = max(acc, v);' : 'acc = acc + v;'} n = n + 1u;
  } } }
  ${max ? '' : 'if (n > 0u) { acc = acc / f32(n); }'}
  y[i] = act(acc);`
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(ys), body, activationWGSL(step.activation))
}
