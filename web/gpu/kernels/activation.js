// activation: pointwise, formulas of Activation.swift applyPointwise (see common.js activationWGSL).
import { activationWGSL, elementwise, prod } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(outputs[0].shape), 'y[i] = act(x[i]);',
    activationWGSL(step.activation))
}
