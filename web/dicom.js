// DICOM CT series in plain JS: Part 10 files (and bare datasets without the 128-byte preamble) in the two
// uncompressed little-endian transfer syntaxes, implicit VR (1.2.840.10008.1.2) and explicit VR (1.2.840.10008.1.2.1).
// Pixel values become Hounsfield units through RescaleSlope/RescaleIntercept; slices are sorted along the normal of
// ImageOrientationPatient by their ImagePositionPatient. Anything else is refused with a message a person can act on.

export const IMPLICIT_LE = '1.2.840.10008.1.2'
export const EXPLICIT_LE = '1.2.840.10008.1.2.1'

const TRANSFER_SYNTAX_NAMES = {
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
}

const CT_SOP_CLASSES = new Set(['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2'])

/** A file that is not DICOM at all (the caller may try other formats, or skip it in a folder). */
export class NotDicomError extends Error {
  constructor(message) { super(message); this.name = 'NotDicomError' }
}

/** A DICOM file (or series) the cascade cannot use; `message` says why and what would work. */
export class DicomError extends Error {
  constructor(message) { super(message); this.name = 'DicomError' }
}

// Explicit VR: these VRs have a 2-byte reserved field and a 4-byte length.
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'])
const UNDEFINED = 0xffffffff
const tagOf = (g, e) => ((g << 16) | e) >>> 0
const ITEM = tagOf(0xfffe, 0xe000)
const ITEM_END = tagOf(0xfffe, 0xe00d)
const SEQUENCE_END = tagOf(0xfffe, 0xe0dd)
const PIXEL_DATA = tagOf(0x7fe0, 0x0010)

// The elements read from each file (top level only); everything else is skipped, sequences included.
const WANTED = {
  [tagOf(0x0002, 0x0010)]: 'transferSyntax',
  [tagOf(0x0008, 0x0016)]: 'sopClass',
  [tagOf(0x0008, 0x0018)]: 'sopInstance',
  [tagOf(0x0008, 0x0060)]: 'modality',
  [tagOf(0x0008, 0x103e)]: 'seriesDescription',
  [tagOf(0x0018, 0x0050)]: 'sliceThickness',
  [tagOf(0x0020, 0x000e)]: 'seriesUID',
  [tagOf(0x0020, 0x0013)]: 'instanceNumber',
  [tagOf(0x0020, 0x0032)]: 'position',
  [tagOf(0x0020, 0x0037)]: 'orientation',
  [tagOf(0x0028, 0x0002)]: 'samplesPerPixel',
  [tagOf(0x0028, 0x0004)]: 'photometric',
  [tagOf(0x0028, 0x0008)]: 'frames',
  [tagOf(0x0028, 0x0010)]: 'rows',
  [tagOf(0x0028, 0x0011)]: 'columns',
  [tagOf(0x0028, 0x0030)]: 'pixelSpacing',
  [tagOf(0x0028, 0x0100)]: 'bitsAllocated',
  [tagOf(0x0028, 0x0101)]: 'bitsStored',
  [tagOf(0x0028, 0x0103)]: 'pixelRepresentation',
  [tagOf(0x0028, 0x0120)]: 'pixelPadding',
  [tagOf(0x0028, 0x1052)]: 'rescaleIntercept',
  [tagOf(0x0028, 0x1053)]: 'rescaleSlope',
}
// Value representations of the wanted elements, for implicit-VR files (which do not carry them).
const US_TAGS = new Set(['samplesPerPixel', 'rows', 'columns', 'bitsAllocated', 'bitsStored', 'pixelRepresentation', 'pixelPadding'])

const ascii = new TextDecoder('latin1')

function bytesOf(input) {
  if (input instanceof Uint8Array) return input
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  return new Uint8Array(input)
}

/** Where the dataset starts and how it is encoded, or null when the bytes are not DICOM. */
function locateDataset(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  if (b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d) {
    return { offset: 132, explicit: true, meta: true }
  }
  // A bare dataset (no preamble): it starts with a small group number in ascending tag order.
  if (b.length < 8) return null
  const group = v.getUint16(0, true)
  if (group !== 0x0002 && group !== 0x0008) return null
  const isLetter = c => c >= 0x41 && c <= 0x5a
  const explicit = isLetter(b[4]) && isLetter(b[5])
  if (!explicit && v.getUint32(4, true) > b.length) return null
  return { offset: 0, explicit, meta: group === 0x0002 }
}

/**
 * Reads one DICOM file's header and pixel data location.
 * @returns {{transferSyntax, modality, rows, columns, ..., pixelOffset, pixelLength, name}}
 * @throws NotDicomError when the bytes are not DICOM; DicomError when they are but cannot be read
 */
export function parseDicom(input, name = 'file') {
  const b = bytesOf(input)
  const loc = locateDataset(b)
  if (!loc) throw new NotDicomError(`${name} is not a DICOM file (no "DICM" marker at byte 128)`)
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const info = { name }
  const truncated = what => new DicomError(`${name} is damaged or truncated (${what} runs past the end of the file)`)

  let pos = loc.offset
  // The file meta group (0002) is always explicit VR little endian; the rest follows the transfer syntax.
  let explicit = loc.explicit
  let inMeta = loc.meta
  let syntaxKnown = !loc.meta

  const readHeader = (exp) => {
    if (pos + 8 > b.length) throw truncated('an element header')
    const group = v.getUint16(pos, true), element = v.getUint16(pos + 2, true)
    const tag = tagOf(group, element)
    if (group === 0xfffe) return { tag, vr: null, length: v.getUint32(pos + 4, true), header: 8 }
    if (exp) {
      const vr = String.fromCharCode(b[pos + 4], b[pos + 5])
      if (LONG_VRS.has(vr)) {
        if (pos + 12 > b.length) throw truncated('an element header')
        return { tag, vr, length: v.getUint32(pos + 8, true), header: 12 }
      }
      return { tag, vr, length: v.getUint16(pos + 6, true), header: 8 }
    }
    return { tag, vr: null, length: v.getUint32(pos + 4, true), header: 8 }
  }

  // Skips an undefined-length sequence or item list (nested datasets) starting at pos.
  const skipUndefined = (exp, depth = 0) => {
    if (depth > 64) throw new DicomError(`${name}: sequences are nested too deeply`)
    for (;;) {
      const h = readHeader(exp)
      pos += h.header
      if (h.tag === SEQUENCE_END || h.tag === ITEM_END) return
      if (h.length === UNDEFINED) {
        skipUndefined(exp, depth + 1)
      } else {
        if (pos + h.length > b.length) throw truncated('a sequence')
        pos += h.length
      }
    }
  }

  while (pos < b.length) {
    if (inMeta && pos + 2 <= b.length && v.getUint16(pos, true) !== 0x0002) {
      inMeta = false
      const ts = info.transferSyntax
      if (!ts) throw new DicomError(`${name} has no transfer syntax in its file meta information`)
      if (ts !== IMPLICIT_LE && ts !== EXPLICIT_LE) {
        const what = TRANSFER_SYNTAX_NAMES[ts] ? `${TRANSFER_SYNTAX_NAMES[ts]} (${ts})` : ts
        throw new DicomError(
          `${name} uses the transfer syntax ${what}; only uncompressed little-endian DICOM can be read ` +
          `(implicit VR ${IMPLICIT_LE} or explicit VR ${EXPLICIT_LE}): export the series uncompressed, e.g. with ` +
          '`dcmdjpeg`/`gdcmconv --raw`')
      }
      explicit = ts === EXPLICIT_LE
      syntaxKnown = true
    }
    if (pos + 8 > b.length) {
      if (b.length - pos <= 8 && [...b.subarray(pos)].every(x => x === 0)) break // trailing padding
      throw truncated('an element header')
    }
    const h = readHeader(inMeta ? true : explicit)
    const start = pos + h.header
    if (h.tag === PIXEL_DATA) {
      if (h.length === UNDEFINED) {
        throw new DicomError(`${name} has encapsulated (compressed) pixel data; only uncompressed DICOM can be read`)
      }
      if (start + h.length > b.length) throw truncated('the pixel data')
      info.pixelOffset = start
      info.pixelLength = h.length
      break
    }
    if (h.length === UNDEFINED) {
      pos = start
      skipUndefined(inMeta ? true : explicit)
      continue
    }
    if (start + h.length > b.length) throw truncated(`element (${hex(h.tag >>> 16)},${hex(h.tag & 0xffff)})`)
    const key = WANTED[h.tag]
    if (key) {
      if (US_TAGS.has(key)) {
        info[key] = h.length >= 2 ? v.getUint16(start, true) : undefined
      } else {
        info[key] = ascii.decode(b.subarray(start, start + h.length)).replace(/[\0 ]+$/, '').trim()
      }
    }
    pos = start + h.length
  }
  if (!syntaxKnown && !inMeta) syntaxKnown = true
  info.transferSyntax ??= explicit ? EXPLICIT_LE : IMPLICIT_LE
  info.explicit = explicit
  return info
}

function hex(n) { return n.toString(16).toUpperCase().padStart(4, '0') }

function numbers(s) {
  if (s === undefined || s === '') return null
  const a = s.split('\\').map(x => Number(x.trim()))
  return a.some(x => !Number.isFinite(x)) ? null : a
}

/** Checks that a parsed file is an image this code can decode; returns its geometry. */
function imageOf(info) {
  const n = info.name
  if (info.pixelOffset === undefined) {
    throw new DicomError(`${n} holds no image (it is a DICOM ${info.modality || 'object'} without pixel data)`)
  }
  const rows = info.rows, cols = info.columns
  if (!rows || !cols) throw new DicomError(`${n} has pixel data but no Rows/Columns`)
  const spp = info.samplesPerPixel ?? 1
  const photometric = info.photometric ?? 'MONOCHROME2'
  if (spp !== 1 || !photometric.startsWith('MONOCHROME')) {
    throw new DicomError(`${n} is a colour image (${photometric}, ${spp} samples per pixel), not a CT slice`)
  }
  const bits = info.bitsAllocated ?? 16
  if (![8, 16, 32].includes(bits)) throw new DicomError(`${n} has ${bits}-bit pixels; CT slices have 16`)
  const frames = Number(info.frames ?? 1) || 1
  const need = rows * cols * (bits / 8) * frames
  if (info.pixelLength < need) {
    throw new DicomError(`${n} is truncated: its pixel data has ${info.pixelLength} bytes, ${rows}x${cols} pixels need ${need}`)
  }
  return { rows, cols, bits, frames }
}

/**
 * The pixel values of one frame in Hounsfield units (Float32Array, rows * columns, row-major), with the rescale
 * applied and the stored bits masked (sign-extended when PixelRepresentation is 1). Pixels equal to
 * PixelPaddingValue (outside the scanner's field of view, often -2000 or -32768 stored) become air, -1024 HU.
 */
export function decodePixels(input, info, frame = 0) {
  const b = bytesOf(input)
  const { rows, cols, bits } = imageOf(info)
  const n = rows * cols
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const signed = (info.pixelRepresentation ?? 0) === 1
  const stored = Math.min(info.bitsStored ?? bits, bits)
  const slope = Number(info.rescaleSlope ?? 1) || 1
  const intercept = Number(info.rescaleIntercept ?? 0) || 0
  const base = info.pixelOffset + frame * n * (bits / 8)
  const out = new Float32Array(n)
  const shift = 32 - stored
  // PixelPaddingValue is US or SS like the pixels; read as unsigned 16 bits, so sign-extend it for signed pixels.
  const padding = info.pixelPadding === undefined ? null : signed && bits === 16 ? (info.pixelPadding << 16) >> 16 : info.pixelPadding
  for (let i = 0; i < n; i++) {
    let raw
    if (bits === 16) raw = v.getUint16(base + 2 * i, true)
    else if (bits === 8) raw = b[base + i]
    else raw = v.getUint32(base + 4 * i, true)
    // Keep the stored bits only; sign-extend from the top stored bit for signed pixels.
    raw = signed ? (raw << shift) >> shift : stored >= 32 ? raw >>> 0 : (raw & ((1 << stored) - 1)) >>> 0
    out[i] = raw === padding ? -1024 : raw * slope + intercept
  }
  return out
}

const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2]

/**
 * Builds a (z, y, x) volume in HU from the files of one or more series. Files that are not DICOM (or hold no
 * image, like DICOMDIR) are skipped and counted; the series with the most slices is taken when there are several.
 * @param {Array<{name: string, bytes: Uint8Array}>} files
 * @returns {{shape: number[], data: Float32Array, spacing: number[], notes: string[], description: string,
 *   modality: string, orientation: string}}
 */
export function loadSeries(files) {
  const slices = []
  const skipped = []
  let firstError = null
  for (const f of files) {
    let info
    try {
      info = parseDicom(f.bytes, f.name)
    } catch (e) {
      if (e instanceof NotDicomError) { skipped.push(f.name); continue }
      firstError ??= e
      continue
    }
    if (info.pixelOffset === undefined) { skipped.push(f.name); continue }
    slices.push({ info, bytes: f.bytes })
  }
  if (slices.length === 0) {
    if (firstError) throw firstError
    throw new DicomError(files.length === 1
      ? `${files[0].name} is not a DICOM image`
      : `none of the ${files.length} files is a DICOM image`)
  }
  const notes = []
  if (firstError) notes.push(`${firstError.message} (skipped)`)
  if (skipped.length) notes.push(`${skipped.length} file(s) that are not DICOM images were skipped`)

  // One series: the one with the most images.
  const bySeries = new Map()
  for (const s of slices) {
    const k = s.info.seriesUID ?? ''
    if (!bySeries.has(k)) bySeries.set(k, [])
    bySeries.get(k).push(s)
  }
  let series = slices
  if (bySeries.size > 1) {
    series = [...bySeries.values()].sort((a, b) => b.length - a.length)[0]
    notes.push(`${bySeries.size} series were given; the largest (${series.length} images) is used`)
  }
  const first = series[0].info
  const modality = first.modality ?? ''
  if (modality && modality !== 'CT') {
    throw new DicomError(`this series is ${modality} (DICOM modality), not CT: the cascade reads chest CT in Hounsfield units`)
  }
  if (!modality && first.sopClass && !CT_SOP_CLASSES.has(first.sopClass)) {
    throw new DicomError(`this DICOM object (SOP class ${first.sopClass}) is not a CT image`)
  }
  const geo = imageOf(first)
  if (geo.frames > 1) {
    throw new DicomError(`${first.name} is a multi-frame (enhanced) image of ${geo.frames} frames; export the series as one file per slice`)
  }
  for (const s of series) {
    const g = imageOf(s.info)
    if (g.rows !== geo.rows || g.cols !== geo.cols) {
      throw new DicomError(`the series mixes image sizes (${geo.rows}x${geo.cols} in ${first.name}, ${g.rows}x${g.cols} in ${s.info.name})`)
    }
  }
  if (series.length === 1) {
    throw new DicomError(
      `${first.name} is a single CT slice (${geo.rows}x${geo.cols}); the cascade needs a whole chest CT volume: ` +
      'open the folder (or all the files) of the series')
  }

  // Orientation and the slice normal.
  const iop = numbers(first.orientation)
  let rowDir = [1, 0, 0], colDir = [0, 1, 0]
  if (iop && iop.length === 6) {
    rowDir = iop.slice(0, 3)
    colDir = iop.slice(3, 6)
  } else {
    notes.push('ImageOrientationPatient is missing; axial slices are assumed')
  }
  const normal = cross(rowDir, colDir)
  const axis = normal.map(Math.abs).indexOf(Math.max(...normal.map(Math.abs)))
  if (axis !== 2) {
    const plane = axis === 0 ? 'sagittal' : 'coronal'
    throw new DicomError(`this is a ${plane} series; the cascade needs axial slices (a ${plane} reformat cannot be used)`)
  }
  for (const s of series) {
    const o = numbers(s.info.orientation)
    if (o && iop && o.some((x, i) => Math.abs(x - iop[i]) > 1e-3)) {
      throw new DicomError(`the slices of the series have different orientations (${first.name}, ${s.info.name})`)
    }
  }

  // Sort along the normal, feet to head.
  const haveAll = series.every(s => numbers(s.info.position)?.length === 3)
  let order
  let dz
  if (haveAll) {
    const sign = normal[2] >= 0 ? 1 : -1
    order = series.map(s => ({ s, d: sign * dot(numbers(s.info.position), normal) }))
    order.sort((a, b) => a.d - b.d)
    const gaps = []
    for (let i = 1; i < order.length; i++) gaps.push(order[i].d - order[i - 1].d)
    if (gaps.some(g => Math.abs(g) < 1e-4)) {
      throw new DicomError('two images of the series lie at the same position: it holds duplicates or several acquisitions')
    }
    const sorted = [...gaps].sort((a, b) => a - b)
    dz = sorted[sorted.length >> 1]
    if (gaps.some(g => Math.abs(g - dz) > 0.1 * dz + 0.01)) {
      notes.push(`slice spacing varies from ${sorted[0].toFixed(2)} to ${sorted[sorted.length - 1].toFixed(2)} mm (${dz.toFixed(2)} mm assumed)`)
    }
  } else {
    notes.push('ImagePositionPatient is missing: slices are ordered by InstanceNumber and spaced by SliceThickness')
    order = series.map(s => ({ s, d: Number(s.info.instanceNumber ?? 0) }))
    order.sort((a, b) => a.d - b.d)
    dz = Number(first.sliceThickness) || 0
    if (!(dz > 0)) throw new DicomError('the slices have neither ImagePositionPatient nor SliceThickness: their spacing is unknown')
  }
  const ps = numbers(first.pixelSpacing)
  let dy = 1, dx = 1
  if (ps && ps.length >= 2 && ps[0] > 0 && ps[1] > 0) [dy, dx] = ps
  else notes.push('PixelSpacing is missing; 1 mm pixels are assumed')

  const Z = order.length, Y = geo.rows, X = geo.cols
  const data = new Float32Array(Z * Y * X)
  order.forEach(({ s }, z) => data.set(decodePixels(s.bytes, s.info), z * Y * X))
  // The cascade's axes: y runs anterior -> posterior, x patient right -> left (LPS), as in a standard axial image.
  const flipY = colDir[1] < 0, flipX = rowDir[0] < 0
  if (flipX || flipY) {
    flipInPlane(data, Z, Y, X, flipY, flipX)
    notes.push(`the images were flipped ${[flipY && 'top-bottom', flipX && 'left-right'].filter(Boolean).join(' and ')} to the standard axial orientation`)
  }
  return {
    shape: [Z, Y, X], data, spacing: [dz, dy, dx], notes, modality: modality || 'CT',
    description: `DICOM series of ${Z} slices ${Y}x${X}${first.seriesDescription ? ` (${first.seriesDescription})` : ''}`,
  }
}

function flipInPlane(data, Z, Y, X, flipY, flipX) {
  const slice = new Float32Array(Y * X)
  for (let z = 0; z < Z; z++) {
    const s = data.subarray(z * Y * X, (z + 1) * Y * X)
    slice.set(s)
    for (let y = 0; y < Y; y++) {
      const sy = flipY ? Y - 1 - y : y
      for (let x = 0; x < X; x++) s[y * X + x] = slice[sy * X + (flipX ? X - 1 - x : x)]
    }
  }
}

/** True when the bytes look like DICOM (Part 10 or a bare dataset). */
export function isDicom(input) { return locateDataset(bytesOf(input)) !== null }
