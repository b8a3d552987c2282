// NumPy .npy files (versions 1-3) in plain JS, as the core's IO/NPY.swift reads and writes them: arrays come in
// as float32 whatever their dtype, and go out as little-endian float32 in C order.

const DTYPES = {
  '<f4': [4, (v, o) => v.getFloat32(o, true)],
  '<f8': [8, (v, o) => v.getFloat64(o, true)],
  '<f2': [2, (v, o) => half(v.getUint16(o, true))],
  '|i1': [1, (v, o) => v.getInt8(o)], '<i1': [1, (v, o) => v.getInt8(o)],
  '|u1': [1, (v, o) => v.getUint8(o)], '<u1': [1, (v, o) => v.getUint8(o)],
  '<i2': [2, (v, o) => v.getInt16(o, true)],
  '<u2': [2, (v, o) => v.getUint16(o, true)],
  '<i4': [4, (v, o) => v.getInt32(o, true)],
  '<i8': [8, (v, o) => Number(v.getBigInt64(o, true))],
  '|b1': [1, (v, o) => v.getUint8(o)],
}

function half(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff
  if (e === 0) return s * f * 2 ** -24
  if (e === 31) return f ? NaN : s * Infinity
  return s * (1 + f / 1024) * 2 ** (e - 15)
}

/** @returns {{shape: number[], data: Float32Array, dtype: string}} */
export function parseNpy(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer ?? bytes, bytes.byteOffset ?? 0, bytes.byteLength)
  const fail = m => new Error(`not a readable .npy file: ${m}`)
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]
  if (b.length < 10 || magic.some((m, i) => b[i] !== m)) throw fail('missing the \\x93NUMPY magic')
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  let headerLen, start
  if (b[6] === 1) { headerLen = view.getUint16(8, true); start = 10 } else if (b[6] === 2 || b[6] === 3) {
    if (b.length < 12) throw fail('truncated header')
    headerLen = view.getUint32(8, true); start = 12
  } else throw fail(`format version ${b[6]} is unknown`)
  if (start + headerLen > b.length) throw fail('truncated header')
  const header = new TextDecoder().decode(b.subarray(start, start + headerLen))
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1]
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1]
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1]
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw fail('header lacks descr, fortran_order or shape')
  if (fortran === 'True') throw fail('Fortran-order arrays are not supported; save with C order')
  const shape = shapeText.split(',').map(s => s.trim()).filter(s => s.length).map(Number)
  const dt = DTYPES[descr === '<b1' ? '|b1' : descr]
  if (!dt) throw fail(`dtype ${descr} is not supported (little-endian float, int, uint8/16 and bool are)`)
  const n = shape.reduce((a, d) => a * d, 1)
  const dataStart = start + headerLen
  if (dataStart + n * dt[0] > b.length) throw fail(`data is shorter than shape (${shape.join(', ')}) needs`)
  let data
  if (descr === '<f4' && (b.byteOffset + dataStart) % 4 === 0) {
    data = new Float32Array(b.buffer, b.byteOffset + dataStart, n).slice()
  } else {
    data = new Float32Array(n)
    for (let i = 0; i < n; i++) data[i] = dt[1](view, dataStart + i * dt[0])
  }
  return { shape, data, dtype: descr }
}

/** A version 1.0 .npy file of float32 data in C order. */
export function writeNpy(shape, data) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ')
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`
  // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64 as NumPy does.
  const pad = 64 - ((10 + header.length + 1) % 64)
  header += ' '.repeat(pad % 64) + '\n'
  const out = new Uint8Array(10 + header.length + data.length * 4)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  new DataView(out.buffer).setUint16(8, header.length, true)
  out.set(new TextEncoder().encode(header), 10)
  const f = data instanceof Float32Array ? data : Float32Array.from(data)
  out.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), 10 + header.length)
  return out
}
