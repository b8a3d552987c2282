// Small bundles written by hand (model.json, model_weights.buf, model_metadata.json as docs/FORMAT.md describes
// them), with a plain-JS reference forward pass, so the wasm ABI can be tested without the converter.

const enc = new TextEncoder()

/** A deterministic pseudo-random stream in [-1, 1). */
export function randoms(n, seed = 1) {
  const out = new Float32Array(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return out
}

/** Packs named float32 tensors into a weights buffer (16-byte aligned) and metadata entries. */
export function packWeights(tensors) {
  let offset = 0
  const entries = []
  for (const t of tensors) {
    offset = Math.ceil(offset / 16) * 16
    entries.push({
      layer_name: t.layer, weight_name: t.weight, dtype: 'float32', shape: t.shape,
      offset, length: t.data.length * 4, quantization: null,
    })
    offset += t.data.length * 4
  }
  const buf = new Uint8Array(Math.ceil(offset / 16) * 16)
  tensors.forEach((t, i) => buf.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), entries[i].offset))
  return { weights: buf, entries }
}

/**
 * Functional model: x (None, 4) -> Dense(3, relu) "hidden"; y (None, 3); add = hidden + y;
 * out = Dense(2, softmax)(add). Two inputs, one output, three named layers.
 */
export function tinyFunctional() {
  const k1 = randoms(12, 7), b1 = randoms(3, 8), k2 = randoms(6, 9), b2 = randoms(2, 10)
  const tensor = (layer, i = 0) => ({
    class_name: '__keras_tensor__', config: { shape: [null, layer === 'x' ? 4 : 3], dtype: 'float32', keras_history: [layer, 0, i] },
  })
  const model = {
    class_name: 'Functional',
    config: {
      name: 'tiny',
      layers: [
        { class_name: 'InputLayer', name: 'x', config: { batch_shape: [null, 4], dtype: 'float32', name: 'x' }, inbound_nodes: [] },
        { class_name: 'InputLayer', name: 'y', config: { batch_shape: [null, 3], dtype: 'float32', name: 'y' }, inbound_nodes: [] },
        {
          class_name: 'Dense', name: 'hidden', config: { name: 'hidden', units: 3, activation: 'relu', use_bias: true },
          inbound_nodes: [{ args: [tensor('x')], kwargs: {} }],
        },
        {
          class_name: 'Add', name: 'add', config: { name: 'add' },
          inbound_nodes: [{ args: [[tensor('hidden'), tensor('y')]], kwargs: {} }],
        },
        {
          class_name: 'Dense', name: 'out', config: { name: 'out', units: 2, activation: 'softmax', use_bias: true },
          inbound_nodes: [{ args: [tensor('add')], kwargs: {} }],
        },
      ],
      input_layers: [['x', 0, 0], ['y', 0, 0]],
      output_layers: [['out', 0, 0]],
    },
  }
  const { weights, entries } = packWeights([
    { layer: 'hidden', weight: 'kernel', shape: [4, 3], data: k1 },
    { layer: 'hidden', weight: 'bias', shape: [3], data: b1 },
    { layer: 'out', weight: 'kernel', shape: [3, 2], data: k2 },
    { layer: 'out', weight: 'bias', shape: [2], data: b2 },
  ])
  const metadata = {
    format: 'kedge-bundle', format_version: 1, producer: 'web/test/bundles.mjs', keras_version: '3.15.1',
    inputs: [{ name: 'x', shape: [null, 4] }, { name: 'y', shape: [null, 3] }],
    outputs: [{ name: 'out', shape: [null, 2] }],
    weights: entries,
  }

  /** Reference forward pass: returns every layer's output for a batch. */
  function reference(x, y, batch) {
    const hidden = new Float32Array(batch * 3), add = new Float32Array(batch * 3), out = new Float32Array(batch * 2)
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < 3; j++) {
        let s = b1[j]
        for (let i = 0; i < 4; i++) s += x[b * 4 + i] * k1[i * 3 + j]
        hidden[b * 3 + j] = Math.max(s, 0)
        add[b * 3 + j] = hidden[b * 3 + j] + y[b * 3 + j]
      }
      const z = [0, 1].map(j => { let s = b2[j]; for (let i = 0; i < 3; i++) s += add[b * 3 + i] * k2[i * 2 + j]; return s })
      const m = Math.max(...z), e = z.map(v => Math.exp(v - m)), sum = e[0] + e[1]
      out[b * 2] = e[0] / sum
      out[b * 2 + 1] = e[1] / sum
    }
    return { hidden, add, out }
  }

  return {
    modelJSON: enc.encode(JSON.stringify(model)),
    weights,
    metadata: enc.encode(JSON.stringify(metadata)),
    reference,
  }
}

/** |a - b| <= atol + rtol * |b| everywhere; returns a description of the worst element or null. */
export function mismatch(a, b, atol = 1e-4, rtol = 1e-4) {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`
  let worst = null, worstExcess = 0
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]))
    if (!(excess <= 0) && (worst === null || excess > worstExcess || Number.isNaN(excess))) {
      worst = `element ${i}: got ${a[i]}, expected ${b[i]}`
      worstExcess = excess
    }
  }
  return worst
}

/**
 * Functional model: tokens (None, 4) -> Embedding(6, 3) "embed". Embedding is one of the classes kedge.wasm leaves
 * out, so this model loads in kedge-full.wasm.
 */
export function tinyEmbedding() {
  const table = randoms(18, 21)
  const model = {
    class_name: 'Functional',
    config: {
      name: 'tiny_embedding',
      layers: [
        { class_name: 'InputLayer', name: 'tokens', config: { batch_shape: [null, 4], dtype: 'float32', name: 'tokens' }, inbound_nodes: [] },
        {
          class_name: 'Embedding', name: 'embed', config: { name: 'embed', input_dim: 6, output_dim: 3, mask_zero: false },
          inbound_nodes: [{
            args: [{ class_name: '__keras_tensor__', config: { shape: [null, 4], dtype: 'float32', keras_history: ['tokens', 0, 0] } }],
            kwargs: {},
          }],
        },
      ],
      input_layers: [['tokens', 0, 0]],
      output_layers: [['embed', 0, 0]],
    },
  }
  const { weights, entries } = packWeights([{ layer: 'embed', weight: 'embeddings', shape: [6, 3], data: table }])
  const metadata = {
    format: 'kedge-bundle', format_version: 1, producer: 'web/test/bundles.mjs', keras_version: '3.15.1',
    inputs: [{ name: 'tokens', shape: [null, 4] }], outputs: [{ name: 'embed', shape: [null, 4, 3] }], weights: entries,
  }
  /** The rows of the table the ids pick. */
  function reference(ids) {
    const out = new Float32Array(ids.length * 3)
    ids.forEach((id, i) => out.set(table.subarray(id * 3, id * 3 + 3), i * 3))
    return out
  }
  return { modelJSON: enc.encode(JSON.stringify(model)), weights, metadata: enc.encode(JSON.stringify(metadata)), reference }
}

/** tinyFunctional with its first Dense layer renamed to a class no build of Kedge has. */
export function tinyUnknownClass() {
  const b = tinyFunctional()
  const json = JSON.parse(new TextDecoder().decode(b.modelJSON))
  json.config.layers.find(l => l.name === 'hidden').class_name = 'NoSuchLayer'
  return { ...b, modelJSON: enc.encode(JSON.stringify(json)) }
}
