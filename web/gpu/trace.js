// Records every WebGPU call a page makes (buffers and their uploads, shaders, pipelines, bind groups, passes and
// dispatches, copies, submits) into a trace that tools/bench/gpu_replay.py replays with the `wgpu` package over
// Vulkan. That is how the same WGSL, dispatched exactly as the executor dispatches it, is timed on a machine with a
// real GPU but no browser (SwiftShader timings say nothing about real GPUs). Used by tools/bench/gpu_trace.mjs only;
// the executor knows nothing of it.
//
//   installTrace()          patches GPUAdapter.prototype.requestDevice: every device made afterwards is recorded
//   traceMark(name)         starts a named phase ('load', 'predict'): the replay runs setup phases once, times others
//   traceExport()           {json, blob}: the trace as JSON and one ArrayBuffer holding every uploaded byte range

const ops = []
const chunks = []
let blobBytes = 0
const ids = new WeakMap()
let nextId = 1

function idOf(o) {
  if (o == null) return null
  let id = ids.get(o)
  if (id === undefined) throw new Error('trace: an object not made through the recorded device')
  return id
}
function name(o) { const id = nextId++; ids.set(o, id); return id }

function keep(data, offset = 0, size) {
  const bytes = ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data)
  const view = bytes.subarray(offset, size === undefined ? bytes.length : offset + size)
  const copy = view.slice()
  chunks.push(copy)
  const at = blobBytes
  blobBytes += copy.length
  return { at, length: copy.length }
}

function resourceOf(r) {
  if (r && r.buffer) return { buffer: idOf(r.buffer), offset: r.offset ?? 0, size: r.size ?? null }
  return { buffer: idOf(r), offset: 0, size: null }
}

function patchPipeline(pipeline, id) {
  const get = pipeline.getBindGroupLayout.bind(pipeline)
  pipeline.getBindGroupLayout = i => {
    const l = get(i)
    if (!ids.has(l)) { const lid = name(l); ops.push({ op: 'pipelineLayout', id: lid, pipeline: id, group: i }) }
    return l
  }
}

function pipelineDesc(d) {
  return {
    layout: d.layout === 'auto' ? 'auto' : idOf(d.layout),
    module: idOf(d.compute.module),
    entryPoint: d.compute.entryPoint ?? null,
    constants: d.compute.constants ?? null,
  }
}

function patchPass(pass) {
  const real = {
    setPipeline: pass.setPipeline.bind(pass), setBindGroup: pass.setBindGroup.bind(pass),
    dispatchWorkgroups: pass.dispatchWorkgroups.bind(pass), end: pass.end.bind(pass),
  }
  pass.setPipeline = p => { ops.push({ op: 'setPipeline', pipeline: idOf(p) }); real.setPipeline(p) }
  pass.setBindGroup = (i, g, ...rest) => {
    if (rest.length && rest[0] && rest[0].length) throw new Error('trace: dynamic offsets are not recorded')
    ops.push({ op: 'setBindGroup', index: i, group: idOf(g) }); real.setBindGroup(i, g, ...rest)
  }
  pass.dispatchWorkgroups = (x, y = 1, z = 1) => { ops.push({ op: 'dispatch', x, y, z }); real.dispatchWorkgroups(x, y, z) }
  pass.end = () => { ops.push({ op: 'endPass' }); real.end() }
  return pass
}

function patchEncoder(enc) {
  const begin = enc.beginComputePass.bind(enc)
  const copy = enc.copyBufferToBuffer.bind(enc)
  const clear = enc.clearBuffer?.bind(enc)
  const finish = enc.finish.bind(enc)
  enc.beginComputePass = d => { ops.push({ op: 'beginPass' }); return patchPass(begin(d)) }
  enc.copyBufferToBuffer = (s, so, d, doff, size) => {
    ops.push({ op: 'copy', src: idOf(s), srcOffset: so, dst: idOf(d), dstOffset: doff, size })
    copy(s, so, d, doff, size)
  }
  if (clear) enc.clearBuffer = (b, off = 0, size) => { ops.push({ op: 'clear', buffer: idOf(b), offset: off, size: size ?? null }); clear(b, off, size) }
  enc.finish = d => { const cb = finish(d); ops.push({ op: 'finish', id: name(cb) }); return cb }
  return enc
}

function patchDevice(device) {
  const d = {
    createBuffer: device.createBuffer.bind(device),
    createShaderModule: device.createShaderModule.bind(device),
    createComputePipeline: device.createComputePipeline.bind(device),
    createComputePipelineAsync: device.createComputePipelineAsync.bind(device),
    createBindGroupLayout: device.createBindGroupLayout.bind(device),
    createPipelineLayout: device.createPipelineLayout.bind(device),
    createBindGroup: device.createBindGroup.bind(device),
    createCommandEncoder: device.createCommandEncoder.bind(device),
  }
  device.createBuffer = desc => {
    const b = d.createBuffer(desc)
    ops.push({ op: 'buffer', id: name(b), size: desc.size, usage: desc.usage, mapped: !!desc.mappedAtCreation })
    if (desc.mappedAtCreation) {
      // The executor fills it through getMappedRange; record the bytes at unmap.
      const get = b.getMappedRange.bind(b), unmap = b.unmap.bind(b)
      const ranges = []
      b.getMappedRange = (o = 0, s) => { const r = get(o, s); ranges.push([o, r]); return r }
      b.unmap = () => {
        for (const [o, r] of ranges) ops.push({ op: 'write', buffer: idOf(b), offset: o, data: keep(r) })
        unmap()
      }
    }
    return b
  }
  device.createShaderModule = desc => {
    const m = d.createShaderModule(desc); ops.push({ op: 'shader', id: name(m), code: desc.code }); return m
  }
  device.createComputePipeline = desc => {
    const p = d.createComputePipeline(desc); const id = name(p)
    ops.push({ op: 'pipeline', id, ...pipelineDesc(desc) }); patchPipeline(p, id); return p
  }
  device.createComputePipelineAsync = async desc => {
    const p = await d.createComputePipelineAsync(desc); const id = name(p)
    ops.push({ op: 'pipeline', id, ...pipelineDesc(desc) }); patchPipeline(p, id); return p
  }
  device.createBindGroupLayout = desc => {
    const l = d.createBindGroupLayout(desc)
    ops.push({ op: 'bindGroupLayout', id: name(l), entries: desc.entries.map(e => ({ binding: e.binding, type: e.buffer?.type ?? 'uniform' })) })
    return l
  }
  device.createPipelineLayout = desc => {
    const l = d.createPipelineLayout(desc)
    ops.push({ op: 'explicitPipelineLayout', id: name(l), groups: desc.bindGroupLayouts.map(idOf) })
    return l
  }
  device.createBindGroup = desc => {
    const g = d.createBindGroup(desc)
    ops.push({ op: 'bindGroup', id: name(g), layout: idOf(desc.layout), entries: desc.entries.map(e => ({ binding: e.binding, ...resourceOf(e.resource) })) })
    return g
  }
  device.createCommandEncoder = desc => patchEncoder(d.createCommandEncoder(desc))
  const q = device.queue
  const write = q.writeBuffer.bind(q), submit = q.submit.bind(q)
  q.writeBuffer = (b, off, data, dataOffset = 0, size) => {
    const elem = ArrayBuffer.isView(data) ? data.BYTES_PER_ELEMENT ?? 1 : 1
    ops.push({ op: 'write', buffer: idOf(b), offset: off, data: keep(data, dataOffset * elem, size === undefined ? undefined : size * elem) })
    write(b, off, data, dataOffset, size)
  }
  q.submit = cbs => { ops.push({ op: 'submit', buffers: cbs.map(idOf) }); submit(cbs) }
  return device
}

export function installTrace() {
  const request = GPUAdapter.prototype.requestDevice
  GPUAdapter.prototype.requestDevice = async function (desc) {
    const device = await request.call(this, desc)
    ops.push({ op: 'device', limits: desc?.requiredLimits ?? {} })
    return patchDevice(device)
  }
}

export function traceMark(phase) { ops.push({ op: 'phase', name: phase }) }

export function traceExport() {
  const blob = new Uint8Array(blobBytes)
  let at = 0
  for (const c of chunks) { blob.set(c, at); at += c.length }
  return { json: JSON.stringify({ version: 1, ops }), blob: blob.buffer }
}
