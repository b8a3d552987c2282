// copy: same elements, new shape (Reshape, Flatten, identity layers).
import { elementwise, prod } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  elementwise(ctx, ['x'], [inputs[0].buffer, outputs[0].buffer], prod(outputs[0].shape), 'y[i] = x[i];')
}
