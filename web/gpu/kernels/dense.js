// dense: rows = all leading axes, kernel [in, units], as the tiled GEMM.
import { gemm } from './gemm.js'
import { prod } from './common.js'

export function encode(ctx, step, inputs, outputs) {
  const xs = inputs[0].shape
  const K = xs[xs.length - 1], N = outputs[0].shape[outputs[0].shape.length - 1], M = prod(xs) / K
  const hasBias = step.weights?.bias !== undefined && step.weights?.bias !== null
  const buffers = [inputs[0].buffer, ctx.weights[step.weights.kernel]]
  if (hasBias) buffers.push(ctx.weights[step.weights.bias])
  buffers.push(outputs[0].buffer)
  gemm(ctx, {
    M, N, K, loadA: `return x[m * ${K}u + k];`, bBase: `k * ${N}u + n`, outCol: 'n', ldc: N,
    bias: hasBias, act: step.activation, buffers,
  })
}
