// globalPool (max/avg over every spatial axis): one thread per (batch, channel).
import { activationWGSL, elementwise, prod } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  const xs = inputs[0].shape, C = xs[xs.length - 1], N = xs[0], S = prod(xs.slice(1, -1))
  const max = step.params.kind === 'max'
  const body = `
  let c = i % ${C}u; let b = i / ${C}u;
  var acc: f32 = ${max ? '-3.402823e38' : '0.0'};
  for (var s = 0u; s < ${S}u; s++) { let v = x[(b * ${S}u + s) * ${C}u + c]; ${max ? 'acc = max(acc, v);' : 'acc = acc + v;'} }
  ${max ? '' : `acc = acc / ${S}.0;`}
  y[i] = act(acc);`
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], N * C, body, activationWGSL(step.activation))
}
