// add, subtract, multiply, average, maximum, minimum: one thread per output element; inputs of another shape
// broadcast numpy-style (right-aligned, size-1 axes repeat).
import { activationWGSL, elementwise, prod } from './common.js'

export function encoder(op) {
  return (ctx, step, inputs, outputs) => {
    const ys = outputs[0].shape, R = ys.length, names = inputs.map((_, j) => `x${j}`)
    const ostr = ys.map((_, d) => prod(ys.slice(d + 1)))
    const index = inputs.map(({ shape }, j) => {
      const s = [...Array(R - shape.length).fill(1), ...shape]
      if (s.every((v, d) => v === ys[d])) return 'i'
      const terms = s.map((v, d) => (v === 1 ? null : `((i / ${ostr[d]}u) % ${ys[d]}u) * ${prod(s.slice(d + 1))}u`)).filter(Boolean)
      return terms.length ? terms.join(' + ') : '0u'
    })
    const v = names.map((n, j) => `${n}[${index[j]}]`)
    let e
    if (op === 'add') e = v.join(' + ')
    else if (op === 'subtract') e = `${v[0]} - ${v[1]}`
    else if (op === 'multiply') e = v.join(' * ')
    else if (op === 'average') e = `(${v.join(' + ')}) / ${v.length}.0`
    else e = v.slice(1).reduce((a, b) => `${op === 'maximum' ? 'max' : 'min'}(${a}, ${b})`, v[0])
    elementwise(ctx, names, [...inputs.map(t => t.buffer), outputs[0].buffer], prod(ys), `y[i] = act(${e});`,
      activationWGSL(step.activation))
  }
}
