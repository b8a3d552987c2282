// scaleShift: y = x * scale[c] + shift[c] along `axis` (an unfused BatchNormalization).
import { activationWGSL, elementwise, prod } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  const s = inputs[0].shape, ax = step.params.axis, inner = prod(s.slice(ax + 1)), C = s[ax]
  elementwise(ctx, ['x', 'sc', 'sh'],
    [inputs[0].buffer, ctx.weights[step.params.scale ?? step.weights.scale], ctx.weights[step.params.shift ?? step.weights.shift], outputs[0].buffer],
    prod(s), `let c = (i / ${inner}u) % ${C}u; y[i] = act(x[i] * sc[c] + sh[c]);`, activationWGSL(step.activation))
}
