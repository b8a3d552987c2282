// Turning what a person opens into the volume the cascade reads: recognises DICOM series, NIfTI-1 (.nii/.nii.gz)
// and .npy by their bytes (not their names), refuses what cannot be a chest CT with a message that says why, and
// resamples other grids to the cascade's (trilinear, to its spacing, centred, air outside). Runs in the worker.

import { DicomError, NotDicomError, isDicom, loadSeries } from './dicom.js'
import { NiftiError, gunzip, isGzip, niftiKind, parseNifti } from './nifti.js'
import { parseNpy } from './npy.js'

/** A volume the cascade cannot use; the message is meant for the person who opened it. */
export class VolumeError extends Error {
  constructor(message) { super(message); this.name = 'VolumeError' }
}

const AIR_HU = -1000

function bytesOf(input) {
  if (input instanceof Uint8Array) return input
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  return new Uint8Array(input)
}

const isNpy = b => b.length >= 6 && b[0] === 0x93 && b[1] === 0x4e && b[2] === 0x55 && b[3] === 0x4d && b[4] === 0x50 && b[5] === 0x59

/** What a non-volume file most likely is, for the refusal message. */
function sniffOther(b) {
  const starts = (...s) => s.every((c, i) => b[i] === c)
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'a PNG image'
  if (starts(0xff, 0xd8, 0xff)) return 'a JPEG image'
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'a GIF image'
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'a TIFF image'
  if (starts(0x25, 0x50, 0x44, 0x46)) return 'a PDF document'
  if (starts(0x50, 0x4b, 0x03, 0x04)) return 'a ZIP archive (unpack it and open the folder)'
  if (b.length === 0) return 'an empty file'
  return null
}

/**
 * Reads the opened file(s) into {shape: [z, y, x], data: Float32Array (HU), spacing: [mm] or null, notes, description}.
 * @param {Array<{name: string, bytes: Uint8Array}>} files one volume file, or the files of a DICOM series
 */
export async function readVolume(files) {
  if (!files.length) throw new VolumeError('nothing was opened')
  if (files.length === 1) return readOne(files[0])
  // Several files: a DICOM series (anything else among them is skipped), or one volume file among others.
  const dicom = [], others = []
  for (const f of files) (isDicom(f.bytes) ? dicom : others).push(f)
  if (dicom.length) {
    try {
      return loadSeries(files)
    } catch (e) {
      throw e instanceof DicomError || e instanceof NotDicomError ? new VolumeError(e.message) : e
    }
  }
  const volumes = []
  for (const f of others) {
    let b = bytesOf(f.bytes)
    if (isGzip(b)) { try { b = await gunzip(b) } catch { continue } }
    if (isNpy(b) || niftiKind(b)) volumes.push(f)
  }
  if (volumes.length === 1) return readOne(volumes[0])
  if (volumes.length > 1) throw new VolumeError(`${volumes.length} volume files were opened together; open one at a time`)
  throw new VolumeError(`none of the ${files.length} files is a DICOM image, a NIfTI-1 volume or a .npy array`)
}

async function readOne({ name, bytes }) {
  let b = bytesOf(bytes)
  let gz = false
  if (isGzip(b)) {
    try {
      b = await gunzip(b)
    } catch (e) {
      throw new VolumeError(`${name}: ${e.message}`)
    }
    gz = true
  }
  try {
    if (isNpy(b)) return npyVolume(b, name)
    if (niftiKind(b)) {
      const v = parseNifti(b, name)
      if (gz) v.description = v.description.replace('NIfTI-1', 'NIfTI-1 (.nii.gz)')
      return v
    }
    if (isDicom(b)) return loadSeries([{ name, bytes: b }])
  } catch (e) {
    if (e instanceof DicomError || e instanceof NotDicomError || e instanceof NiftiError || e instanceof VolumeError) {
      throw new VolumeError(e.message)
    }
    if (/\.npy$/i.test(name) || isNpy(b)) throw new VolumeError(`${name}: ${e.message}`)
    throw e
  }
  const what = sniffOther(b)
  throw new VolumeError(
    `${name} is ${what ?? 'not a file the viewer can read'}; open a chest CT as a DICOM series (folder or files), ` +
    'a NIfTI-1 file (.nii, .nii.gz) or a .npy array of Hounsfield units (z, y, x)')
}

function npyVolume(b, name) {
  let t
  try {
    t = parseNpy(b)
  } catch (e) {
    throw new VolumeError(`${name}: ${e.message}`)
  }
  const shape = t.shape.slice()
  // (1, z, y, x) and (z, y, x, 1) as models write them are the same volume.
  while (shape.length > 3 && shape[0] === 1) shape.shift()
  while (shape.length > 3 && shape[shape.length - 1] === 1) shape.pop()
  if (shape.length === 2 || (shape.length === 3 && shape[0] === 1)) {
    const [h, w] = shape.slice(-2)
    throw new VolumeError(`${name} is a single slice (${h}x${w}); the cascade needs a whole chest CT volume (z, y, x)`)
  }
  if (shape.length !== 3) {
    throw new VolumeError(`${name} has shape (${t.shape.join(', ')}); a CT volume is a 3-D (z, y, x) array`)
  }
  return { shape, data: t.data, spacing: null, notes: [], description: `.npy array ${shape.join('x')} (${t.dtype})` }
}

/**
 * Refuses what cannot be a chest CT in Hounsfield units: too few slices, no air (a chest CT always has lungs and
 * the air around the body), no tissue, values of a photograph (0-255) or of a normalised array (0-1), NaNs.
 */
export function checkChestCT(vol, cascadeConfig) {
  const [Z, Y, X] = vol.shape
  if (Z < 2) throw new VolumeError(`a single slice (${Y}x${X}) cannot be analysed; the cascade needs a whole chest CT volume`)
  if (Y < 16 || X < 16) throw new VolumeError(`slices of ${Y}x${X} pixels are too small to be CT images`)
  const minSlices = Math.max(4, Math.ceil((cascadeConfig?.shape?.[0] ?? 8) / 4))
  if (Z < minSlices) {
    throw new VolumeError(`${Z} slices are too few for a chest CT volume (at least ${minSlices} are needed)`)
  }
  const d = vol.data
  const step = Math.max(1, Math.floor(d.length / 200000))
  let n = 0, air = 0, tissue = 0, low = 0, high = 0, nan = 0, min = Infinity, max = -Infinity
  for (let i = 0; i < d.length; i += step) {
    const v = d[i]
    n++
    if (!Number.isFinite(v)) { nan++; continue }
    if (v < min) min = v
    if (v > max) max = v
    if (v <= -400) air++
    if (v >= -300) tissue++
    if (v < -3100) low++
    if (v > 5000) high++
  }
  const range = `values ${fmt(min)} to ${fmt(max)}`
  if (nan) throw new VolumeError('the volume contains NaN or infinite values')
  if (min >= 0 && max <= 1) throw new VolumeError(`${range}: these are normalised intensities, not Hounsfield units; the cascade needs CT in HU`)
  if (min >= 0 && max <= 255) throw new VolumeError(`${range}: this looks like an 8-bit picture, not a CT in Hounsfield units`)
  if ((low + high) / n > 0.01) throw new VolumeError(`${range}: outside the Hounsfield range of CT (about -1024 to 3071)`)
  if (air / n < 0.02) {
    throw new VolumeError(`${range}: there is no air or lung (nothing below -400 HU), so this is not a chest CT in Hounsfield units`)
  }
  if (tissue / n < 0.02) throw new VolumeError(`${range}: there is no soft tissue (nothing above -300 HU), so this is not a chest CT`)
}

const fmt = v => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100).toString()

/**
 * The volume on the cascade's grid. With a known spacing: trilinear resampling to the cascade's spacing, centred,
 * cropped or padded with air to its shape. Without one (.npy): the array is taken to cover the cascade's field
 * of view and stretched to its shape. Returns {data, shape, spacing, resampled, note}.
 */
export function fitToCascade(vol, cfg) {
  const shape = cfg.shape, spacing = cfg.spacing
  const same = vol.shape.every((d, i) => d === shape[i])
  const spacingKnown = Array.isArray(vol.spacing) && vol.spacing.every(s => s > 0)
  const spacingSame = spacingKnown && vol.spacing.every((s, i) => Math.abs(s - spacing[i]) < 1e-3)
  if (same && (!spacingKnown || spacingSame)) {
    return { data: vol.data, shape: shape.slice(), spacing: spacing.slice(), resampled: false, note: null }
  }
  const srcSpacing = spacingKnown ? vol.spacing : shape.map((d, i) => (spacing[i] * d) / vol.shape[i])
  const data = resampleTrilinear(vol.data, vol.shape, srcSpacing, shape, spacing, AIR_HU)
  const dims = (s, sp) => `${s.join('×')} voxels at ${sp.map(v => v.toFixed(2)).join('×')} mm`
  let note = spacingKnown
    ? `Resampled (trilinear) from ${dims(vol.shape, vol.spacing)} to the cascade's ${dims(shape, spacing)}`
    : `The .npy has shape ${vol.shape.join('×')} and no spacing; it was stretched (trilinear) to the cascade's ${dims(shape, spacing)}`
  if (spacingKnown) {
    const extent = vol.shape.map((d, i) => d * vol.spacing[i])
    const fov = shape.map((d, i) => d * spacing[i])
    const cropped = [], padded = []
    const names = ['z', 'y', 'x']
    for (let i = 0; i < 3; i++) {
      if (extent[i] > fov[i] + spacing[i]) cropped.push(`${names[i]} ${extent[i].toFixed(0)}→${fov[i].toFixed(0)} mm`)
      else if (extent[i] < fov[i] - spacing[i]) padded.push(`${names[i]} ${extent[i].toFixed(0)}→${fov[i].toFixed(0)} mm`)
    }
    if (cropped.length) note += `; the centre was kept (${cropped.join(', ')})`
    if (padded.length) note += `; air was added around it (${padded.join(', ')})`
  }
  return { data, shape: shape.slice(), spacing: spacing.slice(), resampled: true, note: note + '.' }
}

/**
 * Trilinear resampling between two grids that share their centre: output voxel i sits at (i - (n-1)/2) * spacing
 * from the centre; samples outside the source take `pad`.
 */
export function resampleTrilinear(src, srcShape, srcSpacing, dstShape, dstSpacing, pad) {
  const [SZ, SY, SX] = srcShape, [DZ, DY, DX] = dstShape
  const out = new Float32Array(DZ * DY * DX)
  // Per axis, each output index's source coordinate: lower index and weight (lower index -2 means outside).
  const axis = (S, D, s, d) => {
    const lo = new Int32Array(D), w = new Float32Array(D)
    for (let i = 0; i < D; i++) {
      const c = (i - (D - 1) / 2) * (d / s) + (S - 1) / 2
      if (c < -0.5 || c > S - 0.5) { lo[i] = -2; continue }
      const cc = Math.min(Math.max(c, 0), S - 1)
      const f = Math.min(Math.floor(cc), S - 2)
      lo[i] = Math.max(f, 0)
      w[i] = S === 1 ? 0 : cc - lo[i]
    }
    return { lo, w }
  }
  const az = axis(SZ, DZ, srcSpacing[0], dstSpacing[0])
  const ay = axis(SY, DY, srcSpacing[1], dstSpacing[1])
  const ax = axis(SX, DX, srcSpacing[2], dstSpacing[2])
  const sz1 = SZ > 1 ? SY * SX : 0, sy1 = SY > 1 ? SX : 0, sx1 = SX > 1 ? 1 : 0
  let o = 0
  for (let z = 0; z < DZ; z++) {
    const z0 = az.lo[z], wz = az.w[z]
    for (let y = 0; y < DY; y++) {
      const y0 = ay.lo[y], wy = ay.w[y]
      for (let x = 0; x < DX; x++, o++) {
        const x0 = ax.lo[x], wx = ax.w[x]
        if (z0 < 0 || y0 < 0 || x0 < 0) { out[o] = pad; continue }
        const i = (z0 * SY + y0) * SX + x0
        const c00 = src[i] + (src[i + sx1] - src[i]) * wx
        const c01 = src[i + sy1] + (src[i + sy1 + sx1] - src[i + sy1]) * wx
        const c10 = src[i + sz1] + (src[i + sz1 + sx1] - src[i + sz1]) * wx
        const c11 = src[i + sz1 + sy1] + (src[i + sz1 + sy1 + sx1] - src[i + sz1 + sy1]) * wx
        const c0 = c00 + (c01 - c00) * wy
        const c1 = c10 + (c11 - c10) * wy
        out[o] = c0 + (c1 - c0) * wz
      }
    }
  }
  return out
}
