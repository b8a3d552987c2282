// Reading CT inputs in JS (web/dicom.js, web/nifti.js, web/cascade-volume.js) against real files:
// - pydicom's own test files (uncompressed little-endian ones), decoded by pydicom for the expected values;
// - the synthetic series and NIfTI files of web/test/fixtures (tools/browser/make_volume_fixtures.py);
// - what must be refused: one slice (pydicom's CT_small.dcm), MR, compressed, big-endian, truncated, colour, not DICOM.
// pydicom is found through python3 (`pip install pydicom` when missing; tools/browser/test_cascade_page.py does it too).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DicomError, NotDicomError, decodePixels, isDicom, loadSeries, parseDicom } from '../dicom.js'
import { gunzip, parseNifti } from '../nifti.js'
import { VolumeError, checkChestCT, fitToCascade, readVolume, resampleTrilinear } from '../cascade-volume.js'

const FIX = fileURLToPath(new URL('./fixtures/', import.meta.url))
const expected = JSON.parse(readFileSync(join(FIX, 'dicom', 'series.json'), 'utf8'))
const CASCADE = { shape: [32, 80, 80], spacing: [2.5, 1.4, 1.4] }

function python(code) {
  return execFileSync('python3', ['-c', code], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] })
}

let pydicomDir = null
function pydicomFiles() {
  if (pydicomDir) return pydicomDir
  const find = 'import os, pydicom.data as d; print(os.path.dirname(d.get_testdata_file("CT_small.dcm")))'
  try {
    pydicomDir = python(find).trim()
  } catch {
    execFileSync('python3', ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'pydicom'], { stdio: 'ignore' })
    pydicomDir = python(find).trim()
  }
  return pydicomDir
}

/** pydicom's decoding of a file: rows, columns, modality and the rescaled pixels (float64). */
function pydicomPixels(name) {
  const out = python(`
import json, warnings, numpy as np, pydicom
warnings.simplefilter("ignore")
d = pydicom.dcmread(${JSON.stringify(join(pydicomFiles(), name))})
a = d.pixel_array.astype(np.float64) * float(d.get("RescaleSlope", 1) or 1) + float(d.get("RescaleIntercept", 0) or 0)
print(json.dumps({"rows": int(d.Rows), "columns": int(d.Columns), "modality": d.get("Modality", ""), "pixels": a.ravel().tolist()}))
`)
  return JSON.parse(out)
}

const read = name => new Uint8Array(readFileSync(join(pydicomFiles(), name)))
const files = dir => readdirSync(dir).sort().map(n => ({ name: n, bytes: new Uint8Array(readFileSync(join(dir, n))) }))

for (const name of ['CT_small.dcm', 'MR_small.dcm', 'MR_small_implicit.dcm', 'MR_small_padded.dcm', 'examples_overlay.dcm', 'rtdose_1frame.dcm']) {
  test(`pixels of pydicom's ${name} match pydicom`, () => {
    const ref = pydicomPixels(name)
    const bytes = read(name)
    const info = parseDicom(bytes, name)
    assert.equal(info.rows, ref.rows)
    assert.equal(info.columns, ref.columns)
    assert.equal(info.modality ?? '', ref.modality)
    const px = decodePixels(bytes, info)
    assert.equal(px.length, ref.pixels.length)
    for (let i = 0; i < px.length; i++) {
      if (px[i] !== Math.fround(ref.pixels[i])) assert.fail(`${name}: pixel ${i} is ${px[i]}, pydicom gives ${ref.pixels[i]}`)
    }
  })
}

test('CT_small.dcm (one real chest CT slice) is refused as a single slice, clearly', async () => {
  const bytes = read('CT_small.dcm')
  assert.throws(() => loadSeries([{ name: 'CT_small.dcm', bytes }]), e => e instanceof DicomError && /single CT slice \(128x128\)/.test(e.message) && /whole chest CT volume/.test(e.message))
  await assert.rejects(readVolume([{ name: 'CT_small.dcm', bytes }]), e => e instanceof VolumeError && /single CT slice/.test(e.message))
  // Twice the same slice is still not a volume.
  assert.throws(() => loadSeries([{ name: 'a.dcm', bytes }, { name: 'b.dcm', bytes }]), /same position/)
})

test('what is not CT, or not readable, gets a message that says why', async () => {
  const cases = [
    ['MR_small.dcm', /is MR \(DICOM modality\), not CT/],
    ['MR_small_implicit.dcm', /is MR \(DICOM modality\), not CT/],
    ['693_J2KI.dcm', /JPEG 2000 \(1\.2\.840\.10008\.1\.2\.4\.91\).*uncompressed little-endian/],
    ['MR_small_bigendian.dcm', /Explicit VR Big Endian/],
    ['MR_small_RLE.dcm', /RLE Lossless/],
    ['image_dfl.dcm', /Deflated/],
    ['MR_truncated.dcm', /truncated/],
    ['rtplan.dcm', /holds no image|not a DICOM image/],
    ['examples_rgb_color.dcm', /is US \(DICOM modality\), not CT/],
  ]
  for (const [name, re] of cases) {
    await assert.rejects(readVolume([{ name, bytes: read(name) }]), e => e instanceof VolumeError && re.test(e.message), name)
  }
  const rgb = read('SC_rgb_small_odd.dcm')
  assert.throws(() => decodePixels(rgb, parseDicom(rgb, 'rgb')), /colour image \(RGB, 3 samples per pixel\)/)
  // A bare dataset (no preamble, no meta group), as some old archives store files.
  const ct = read('CT_small.dcm')
  const bare = ct.subarray(132 + 12 + new DataView(ct.buffer, ct.byteOffset + 140, 4).getUint32(0, true))
  assert.equal(isDicom(bare), true)
  assert.deepEqual(decodePixels(bare, parseDicom(bare, 'bare')), decodePixels(ct, parseDicom(ct, 'ct')))
  assert.throws(() => parseDicom(new Uint8Array(300), 'zeros'), NotDicomError)
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Uint8Array(100)])
  await assert.rejects(readVolume([{ name: 'photo.png', bytes: png }]), /photo\.png is a PNG image; open a chest CT/)
  await assert.rejects(readVolume([{ name: 'x.bin', bytes: new Uint8Array(1000).fill(7) }]), /not a file the viewer can read/)
  await assert.rejects(readVolume([{ name: 'empty', bytes: new Uint8Array(0) }]), /an empty file/)
})

function checkAgainst(vol, exp, label) {
  assert.deepEqual(vol.shape, exp.shape, label)
  vol.spacing.forEach((s, i) => assert.ok(Math.abs(s - exp.spacing_mm[i]) < 1e-6, `${label}: spacing ${vol.spacing}`))
  const [Z, Y, X] = vol.shape
  for (let z = 0; z < Z; z++) {
    let s = 0
    for (let i = z * Y * X; i < (z + 1) * Y * X; i++) s += vol.data[i]
    assert.equal(s, exp.slice_sums[z], `${label}: slice ${z} (feet to head)`)
  }
  for (const v of exp.voxels) {
    const [z, y, x] = v.zyx
    assert.equal(vol.data[(z * Y + y) * X + x], v.hu, `${label}: voxel ${v.zyx}`)
  }
}

test('series A (explicit VR, shuffled names, intercept -1024) reads back exactly, sorted by position', () => {
  const dir = join(FIX, 'dicom', 'series-a')
  const list = files(dir)
  const vol = loadSeries(list)
  checkAgainst(vol, expected['series-a'], 'series A')
  assert.match(vol.description, /32 slices 80x80/)
  // Any file order gives the same volume.
  const shuffled = [...list].reverse()
  shuffled.push(shuffled.shift())
  assert.deepEqual(loadSeries(shuffled).data, vol.data)
  const fit = fitToCascade(vol, CASCADE)
  assert.equal(fit.resampled, false)
  assert.equal(fit.data, vol.data)
  checkChestCT(vol, CASCADE)
})

test('series B (implicit VR, signed, slope 0.5, head-first numbering, a README) is read and resampled', async () => {
  const dir = join(FIX, 'dicom', 'series-b')
  const vol = await readVolume(files(dir))
  checkAgainst(vol, expected['series-b'], 'series B')
  assert.ok(vol.notes.some(n => /1 file\(s\) that are not DICOM images were skipped/.test(n)), vol.notes.join('; '))
  const fit = fitToCascade(vol, CASCADE)
  assert.equal(fit.resampled, true)
  assert.deepEqual(fit.shape, CASCADE.shape)
  assert.match(fit.note, /Resampled \(trilinear\) from 40×100×100 voxels at 2\.00×1\.12×1\.12 mm to the cascade's 32×80×80 voxels at 2\.50×1\.40×1\.40 mm/)
  assert.doesNotMatch(fit.note, /centre was kept|air was added/, 'same field of view: no crop, no pad')
  // Back on the cascade's grid it is close to series A (two trilinear passes smooth a little).
  const a = loadSeries(files(join(FIX, 'dicom', 'series-a')))
  let diff = 0
  for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i] - fit.data[i])
  assert.ok(diff / a.data.length < 40, `mean |HU difference| ${diff / a.data.length}`)
})

test('NIfTI-1: .nii.gz as dcm2niix writes axial CT (sform, L-A-S) gives series A back exactly', async () => {
  const gz = new Uint8Array(readFileSync(join(FIX, 'nifti', 'las.nii.gz')))
  const vol = parseNifti(await gunzip(gz), 'las.nii.gz')
  checkAgainst(vol, expected['series-a'], 'las.nii.gz')
  const viaReader = await readVolume([{ name: 'las.nii.gz', bytes: gz }])
  assert.deepEqual(viaReader.data, vol.data)
  assert.match(viaReader.description, /\.nii\.gz/)
})

test('NIfTI-1: qform-only float32, R-A-I on a coarser grid, is reoriented and resampled', async () => {
  const bytes = new Uint8Array(readFileSync(join(FIX, 'nifti', 'ras-qform.nii')))
  const vol = await readVolume([{ name: 'ras-qform.nii', bytes }])
  const exp = expected['nifti-coarse']
  assert.deepEqual(vol.shape, exp.shape)
  vol.spacing.forEach((s, i) => assert.ok(Math.abs(s - exp.spacing_mm[i]) < 1e-5))
  let sum = 0
  for (const v of vol.data) sum += v
  assert.ok(Math.abs(sum - exp.sum) < 1e-6 * Math.abs(exp.sum) + 1)
  const fit = fitToCascade(vol, CASCADE)
  assert.ok(fit.resampled)
  // Orientation: the result correlates with series A (a flipped axis would not).
  const a = loadSeries(files(join(FIX, 'dicom', 'series-a')))
  let diff = 0
  for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i] - fit.data[i])
  assert.ok(diff / a.data.length < 80, `mean |HU difference| ${diff / a.data.length}`)
  // A broken header is refused.
  const broken = bytes.slice(0, 20000)
  await assert.rejects(readVolume([{ name: 'cut.nii', bytes: broken }]), /cut\.nii is truncated/)
})

test('.npy volumes: single slices, wrong ranks and pictures are refused', async () => {
  const { writeNpy } = await import('../npy.js')
  const npy = (shape, fill) => writeNpy(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, fill))
  await assert.rejects(readVolume([{ name: 's.npy', bytes: npy([80, 80], () => -500) }]), /s\.npy is a single slice \(80x80\)/)
  await assert.rejects(readVolume([{ name: 's.npy', bytes: npy([1, 64, 64], () => -500) }]), /single slice \(64x64\)/)
  await assert.rejects(readVolume([{ name: 'v.npy', bytes: npy([2, 3, 4, 5], () => 0) }]), /a CT volume is a 3-D \(z, y, x\) array/)
  const photo = await readVolume([{ name: 'p.npy', bytes: npy([32, 80, 80], (_, i) => i % 256) }])
  assert.throws(() => checkChestCT(photo, CASCADE), /8-bit picture, not a CT/)
  const unit = await readVolume([{ name: 'u.npy', bytes: npy([32, 80, 80], (_, i) => (i % 100) / 100) }])
  assert.throws(() => checkChestCT(unit, CASCADE), /normalised intensities/)
  const water = await readVolume([{ name: 'w.npy', bytes: npy([32, 80, 80], () => 500) }])
  assert.throws(() => checkChestCT(water, CASCADE), /no air or lung/)
  const thin = await readVolume([{ name: 't.npy', bytes: npy([3, 80, 80], (_, i) => (i % 2 ? -1000 : 40)) }])
  assert.throws(() => checkChestCT(thin, CASCADE), /3 slices are too few/)
  const ok = await readVolume([{ name: 'ok.npy', bytes: npy([1, 32, 80, 80, 1], (_, i) => (i % 2 ? -1000 : 40)) }])
  assert.deepEqual(ok.shape, [32, 80, 80])
  checkChestCT(ok, CASCADE)
  const other = await readVolume([{ name: 'o.npy', bytes: npy([64, 120, 100], (_, i) => (i % 2 ? -1000 : 40)) }])
  const fit = fitToCascade(other, CASCADE)
  assert.deepEqual(fit.shape, CASCADE.shape)
  assert.match(fit.note, /no spacing; it was stretched/)
})

test('trilinear resampling: identity, exact on linear ramps, air outside', () => {
  const shape = [4, 5, 6]
  const n = 4 * 5 * 6
  const ramp = Float32Array.from({ length: n }, (_, i) => {
    const z = Math.floor(i / 30), y = Math.floor(i / 6) % 5, x = i % 6
    return 3 * z - 2 * y + x
  })
  assert.deepEqual(resampleTrilinear(ramp, shape, [1, 1, 1], shape, [1, 1, 1], -1000), ramp)
  // Half the spacing, same centre: the ramp continues linearly between voxels.
  const fine = resampleTrilinear(ramp, shape, [2, 2, 2], [7, 9, 11], [1, 1, 1], -1000)
  for (let z = 0; z < 7; z++) {
    for (let y = 0; y < 9; y++) {
      for (let x = 0; x < 11; x++) {
        const v = fine[(z * 9 + y) * 11 + x]
        assert.ok(Math.abs(v - (3 * z / 2 - 2 * y / 2 + x / 2)) < 1e-5, `(${z},${y},${x}) = ${v}`)
      }
    }
  }
  // A wider field of view than the source: air around it.
  const wide = resampleTrilinear(ramp, shape, [1, 1, 1], [4, 5, 20], [1, 1, 1], -1000)
  assert.equal(wide[0], -1000)
  assert.equal(wide[7], ramp[0])
})

/** A minimal explicit-VR little-endian CT file written here, element by element. */
function tinyCT({ pixels, rows, cols, signed, padding, intercept = -1024, z = 0 }) {
  const parts = []
  const el = (g, e, vr, bytes) => {
    const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr)
    const h = new DataView(new ArrayBuffer(long ? 12 : 8))
    h.setUint16(0, g, true); h.setUint16(2, e, true)
    h.setUint8(4, vr.charCodeAt(0)); h.setUint8(5, vr.charCodeAt(1))
    if (long) h.setUint32(8, bytes.length, true)
    else h.setUint16(6, bytes.length, true)
    parts.push(new Uint8Array(h.buffer), bytes)
  }
  const str = t => { const b = new TextEncoder().encode(t.length % 2 ? t + ' ' : t); return b }
  const u16 = v => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v & 0xffff, true); return b }
  parts.push(new Uint8Array(128), new TextEncoder().encode('DICM'))
  const ts = new TextEncoder().encode('1.2.840.10008.1.2.1\0')
  el(0x0002, 0x0010, 'UI', ts)
  el(0x0008, 0x0060, 'CS', str('CT'))
  el(0x0020, 0x0032, 'DS', str(`0\\0\\${z}`))
  el(0x0020, 0x0037, 'DS', str('1\\0\\0\\0\\1\\0'))
  el(0x0028, 0x0010, 'US', u16(rows))
  el(0x0028, 0x0011, 'US', u16(cols))
  el(0x0028, 0x0100, 'US', u16(16))
  el(0x0028, 0x0101, 'US', u16(16))
  el(0x0028, 0x0103, 'US', u16(signed ? 1 : 0))
  if (padding !== undefined) el(0x0028, 0x0120, signed ? 'SS' : 'US', u16(padding))
  el(0x0028, 0x1052, 'DS', str(String(intercept)))
  el(0x0028, 0x1053, 'DS', str('1'))
  const px = new Uint8Array(pixels.length * 2)
  pixels.forEach((v, i) => new DataView(px.buffer).setUint16(2 * i, v & 0xffff, true))
  el(0x7fe0, 0x0010, 'OW', px)
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

test('PixelPaddingValue pixels become air; signed and unsigned padding', () => {
  const signed = tinyCT({ pixels: [-2000, 0, 1024, -2000], rows: 2, cols: 2, signed: true, padding: -2000 })
  assert.deepEqual([...decodePixels(signed, parseDicom(signed, 's'))], [-1024, -1024, 0, -1024])
  const unsigned = tinyCT({ pixels: [63536, 0, 1024, 2048], rows: 2, cols: 2, signed: false, padding: 63536 })
  assert.deepEqual([...decodePixels(unsigned, parseDicom(unsigned, 'u'))], [-1024, -1024, 0, 1024])
  const none = tinyCT({ pixels: [-2000, 0, 1024, 5], rows: 2, cols: 2, signed: true })
  assert.deepEqual([...decodePixels(none, parseDicom(none, 'n'))], [-3024, -1024, 0, -1019])
})

test('a folder with several series takes the largest and says so', () => {
  const a = files(join(FIX, 'dicom', 'series-a'))
  const b = files(join(FIX, 'dicom', 'series-b')).filter(f => f.name.endsWith('.dcm')).slice(0, 5)
  const vol = loadSeries([...a, ...b])
  assert.deepEqual(vol.shape, [32, 80, 80])
  assert.ok(vol.notes.some(n => /2 series were given; the largest \(32 images\) is used/.test(n)))
})

test('the fixtures exist (run tools/browser/make_volume_fixtures.py to remake them)', () => {
  for (const p of ['dicom/series-a', 'dicom/series-b', 'nifti/las.nii.gz', 'nifti/ras-qform.nii']) assert.ok(existsSync(join(FIX, p)), p)
})
