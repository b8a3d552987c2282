// softmax / log-softmax along `axis`: one thread per (outer, inner) row, stable (max subtracted), as the core.
import { elementwise, prod } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  const s = inputs[0].shape, ax = step.params.axis, n = s[ax], inner = prod(s.slice(ax + 1)), outer = prod(s.slice(0, ax))
  const log = !!step.params.log
  const body = `
  let base = (i / ${inner}u) * ${n * inner}u + i % ${inner}u;
  var m: f32 = -3.402823e38;
  for (var k = 0u; k < ${n}u; k++) { m = max(m, x[base + k * ${inner}u]); }
  var sum = 0.0;
  for (var k = 0u; k < ${n}u; k++) { sum = sum + exp(x[base + k * ${inner}u] - m); }
  ${log ? 'let ls = log(sum);' : 'let r = 1.0 / sum;'}
  for (var k = 0u; k < ${n}u; k++) { let v = x[base + k * ${inner}u];
    ${log ? 'y[base + k * ' + inner + 'u] = v - m - ls;' : 'y[base + k * ' + inner + 'u] = exp(v - m) * r;'} }`
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], outer * inner, body)
}
