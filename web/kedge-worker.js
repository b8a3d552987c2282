// The dedicated Web Worker kedge.js runs models in by default, so that loading and inference never block the
// page. It fetches kedge.wasm (and kedge-full.wasm if the model needs it) and the bundle itself (the bytes never
// cross to the page) and answers messages
// {id, type, ...} with {id, result} or {id, error: {message, kind}}; progress goes out as {type: 'progress'}.

import { loadModel } from './kedge-fetch.js'

let model = null

const handlers = {
  async load({ wasm, wasmFull, filepaths, headers, keepLayers }) {
    model = await loadModel({ wasm, wasmFull, filepaths, headers, keepLayers, onProgress: p => postMessage({ type: 'progress', ...p }) })
    return { inputs: model.inputs, outputs: model.outputs, backend: model.runtime.backend, build: model.runtime.build }
  },

  predict({ inputs, recordLayers }) {
    const r = model.predict(inputs, { recordLayers })
    const transfer = r.outputs.map(t => t.data.buffer)
    if (r.layers) for (const t of r.layers) transfer.push(t.data.buffer)
    return [r, transfer]
  },

  resetStates() { model.resetStates() },

  memory() { return model.runtime.memoryBytes },

  dispose() {
    model?.dispose()
    model = null
  },
}

self.onmessage = async ({ data: msg }) => {
  try {
    if (msg.type !== 'load' && !model) throw new Error('the model is not loaded (or was disposed)')
    let result = await handlers[msg.type](msg)
    let transfer = []
    if (msg.type === 'predict') [result, transfer] = result
    postMessage({ id: msg.id, result }, transfer)
    if (msg.type === 'dispose') close()
  } catch (e) {
    postMessage({ id: msg.id, error: { message: e.message, kind: e.kind ?? 0 } })
  }
}
