// NIfTI-1 volumes (.nii, and .nii.gz through DecompressionStream('gzip')) in plain JS. The voxel grid is turned into
// the cascade's axes with the sform (or qform) affine: z feet -> head, y anterior -> posterior, x patient right ->
// left, as a standard axial DICOM image is stored. Values are scaled by scl_slope/scl_inter.

export class NiftiError extends Error {
  constructor(message) { super(message); this.name = 'NiftiError' }
}

const DATATYPES = {
  2: ['uint8', 1], 4: ['int16', 2], 8: ['int32', 4], 16: ['float32', 4], 64: ['float64', 8],
  256: ['int8', 1], 512: ['uint16', 2], 768: ['uint32', 4],
}

function bytesOf(input) {
  if (input instanceof Uint8Array) return input
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  return new Uint8Array(input)
}

export const isGzip = b => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b

/** Gunzips with the platform's DecompressionStream (browsers, node >= 18). */
export async function gunzip(input) {
  if (typeof DecompressionStream === 'undefined') throw new NiftiError('this browser cannot decompress .gz files; open the .nii')
  const stream = new Blob([bytesOf(input)]).stream().pipeThrough(new DecompressionStream('gzip'))
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer())
  } catch (e) {
    throw new NiftiError(`the .gz file is damaged (${e.message})`)
  }
}

/** The header's endianness, or null when the bytes are not NIfTI-1 (NIfTI-2 is recognised to refuse it). */
export function niftiKind(input) {
  const b = bytesOf(input)
  if (b.length < 348) return null
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  for (const little of [true, false]) {
    const size = v.getInt32(0, little)
    if (size === 348 && b[344] === 0x6e && (b[345] === 0x2b || b[345] === 0x69) && b[346] === 0x31) return { version: 1, little }
    if (size === 540) return { version: 2, little }
  }
  return null
}

/** The 4x4 voxel -> world (RAS+) matrix: sform if set, else qform, else the pixdim scaling. */
function affineOf(v, little, pixdim) {
  const qformCode = v.getInt16(252, little), sformCode = v.getInt16(254, little)
  if (sformCode > 0) {
    const row = o => [0, 1, 2, 3].map(i => v.getFloat32(o + 4 * i, little))
    return { m: [row(280), row(296), row(312)], source: 'sform' }
  }
  if (qformCode > 0) {
    const b = v.getFloat32(256, little), c = v.getFloat32(260, little), d = v.getFloat32(264, little)
    const qx = v.getFloat32(268, little), qy = v.getFloat32(272, little), qz = v.getFloat32(276, little)
    const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)))
    const qfac = pixdim[0] < 0 ? -1 : 1
    const [i, j, k] = [pixdim[1], pixdim[2], pixdim[3] * qfac]
    const R = [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ]
    return { m: R.map((r, n) => [r[0] * i, r[1] * j, r[2] * k, [qx, qy, qz][n]]), source: 'qform' }
  }
  return { m: [[pixdim[1], 0, 0, 0], [0, pixdim[2], 0, 0], [0, 0, pixdim[3], 0]], source: null }
}

/**
 * Reads a NIfTI-1 file (already gunzipped) into the cascade's (z, y, x) layout.
 * @returns {{shape, data: Float32Array, spacing, notes: string[], description}}
 */
export function parseNifti(input, name = 'file') {
  const b = bytesOf(input)
  const kind = niftiKind(b)
  if (!kind) throw new NiftiError(`${name} is not a NIfTI-1 file`)
  if (kind.version === 2) throw new NiftiError(`${name} is NIfTI-2; save it as NIfTI-1 (.nii)`)
  const little = kind.little
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const notes = []
  if (b[345] === 0x69) throw new NiftiError(`${name} is the header of a .hdr/.img pair; open a single-file .nii instead`)
  const dim = [0, 1, 2, 3, 4, 5, 6, 7].map(i => v.getInt16(40 + 2 * i, little))
  const ndim = dim[0]
  if (ndim < 1 || ndim > 7) throw new NiftiError(`${name} has an invalid dim[0] (${ndim})`)
  const sizes = dim.slice(1, 1 + ndim)
  // Extra dimensions of size 1 are harmless; a fourth one of more (time, echoes) is not a CT volume.
  while (sizes.length > 3 && sizes[sizes.length - 1] === 1) sizes.pop()
  if (sizes.length > 3) throw new NiftiError(`${name} is ${sizes.length}-D (${sizes.join('x')}); a CT volume is 3-D`)
  while (sizes.length < 3) sizes.push(1)
  const [I, J, K] = sizes
  if (I < 1 || J < 1 || K < 1) throw new NiftiError(`${name} has an empty dimension (${sizes.join('x')})`)
  const datatype = v.getInt16(70, little)
  const dt = DATATYPES[datatype]
  if (!dt) {
    const what = { 128: 'RGB', 2304: 'RGBA', 32: 'complex', 1792: 'complex', 1024: 'int64', 1280: 'uint64', 1536: 'float128' }[datatype]
    throw new NiftiError(`${name} stores ${what ?? `datatype ${datatype}`} voxels; a CT volume is stored as integers or floats`)
  }
  const pixdim = [0, 1, 2, 3].map(i => v.getFloat32(76 + 4 * i, little))
  const voxOffset = Math.round(v.getFloat32(108, little))
  let slope = v.getFloat32(112, little), inter = v.getFloat32(116, little)
  if (!Number.isFinite(slope) || slope === 0) { slope = 1; inter = 0 }
  if (!Number.isFinite(inter)) inter = 0
  const n = I * J * K
  if (voxOffset < 348 || voxOffset + n * dt[1] > b.length) {
    throw new NiftiError(`${name} is truncated: ${I}x${J}x${K} ${dt[0]} voxels need ${voxOffset + n * dt[1]} bytes, the file has ${b.length}`)
  }
  const read = {
    uint8: o => b[o], int8: o => v.getInt8(o), int16: o => v.getInt16(o, little), uint16: o => v.getUint16(o, little),
    int32: o => v.getInt32(o, little), uint32: o => v.getUint32(o, little), float32: o => v.getFloat32(o, little),
    float64: o => v.getFloat64(o, little),
  }[dt[0]]

  // Which voxel axis runs along which world axis, and which way.
  const { m, source } = affineOf(v, little, pixdim)
  if (!source) notes.push('the file has no orientation (qform/sform): axial slices in radiological order are assumed')
  const cols = [0, 1, 2].map(a => [m[0][a], m[1][a], m[2][a]])
  const spacingOf = a => Math.hypot(...cols[a]) || 1
  const used = new Set()
  const axisOf = [] // voxel axis a -> world axis (0 R, 1 A, 2 S)
  for (const a of [0, 1, 2]) {
    const c = cols[a].map(Math.abs)
    let best = -1
    for (const w of [0, 1, 2]) if (!used.has(w) && (best < 0 || c[w] > c[best])) best = w
    used.add(best)
    axisOf.push(best)
  }
  // Output axes: z = +S, y = -A (posterior), x = -R (left).
  const outAxisOfWorld = { 2: 0, 1: 1, 0: 2 }
  const wantSign = { 2: 1, 1: -1, 0: -1 }
  const src = [I, J, K]
  const outShape = [0, 0, 0], outSpacing = [0, 0, 0], stride = [0, 0, 0], flip = [false, false, false]
  const voxStride = [1, I, I * J]
  for (const a of [0, 1, 2]) {
    const w = axisOf[a], o = outAxisOfWorld[w]
    outShape[o] = src[a]
    outSpacing[o] = spacingOf(a)
    stride[o] = voxStride[a]
    flip[o] = Math.sign(cols[a][w] || 1) !== wantSign[w]
  }
  if (axisOf[2] !== 2) {
    notes.push(`the file's slices are ${axisOf[2] === 0 ? 'sagittal' : 'coronal'}; they were reordered to axial`)
  }
  const [Z, Y, X] = outShape
  const data = new Float32Array(n)
  let i = 0
  for (let z = 0; z < Z; z++) {
    const oz = (flip[0] ? Z - 1 - z : z) * stride[0]
    for (let y = 0; y < Y; y++) {
      const oy = oz + (flip[1] ? Y - 1 - y : y) * stride[1]
      for (let x = 0; x < X; x++) {
        const idx = oy + (flip[2] ? X - 1 - x : x) * stride[2]
        data[i++] = read(voxOffset + idx * dt[1]) * slope + inter
      }
    }
  }
  const xyzUnits = v.getUint8(123, little) & 7
  if (xyzUnits === 1) for (let a = 0; a < 3; a++) outSpacing[a] *= 1000 // metres
  else if (xyzUnits === 3) for (let a = 0; a < 3; a++) outSpacing[a] /= 1000 // micrometres
  return {
    shape: [Z, Y, X], data, spacing: outSpacing, notes,
    description: `NIfTI-1 volume ${I}x${J}x${K} (${dt[0]})`,
  }
}
