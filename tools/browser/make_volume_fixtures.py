"""Writes the small synthetic chest-CT inputs of web/test/dicom.test.mjs and the browser test: two DICOM series
(pydicom) and two NIfTI-1 files (nibabel), all from one synthetic volume:

- web/test/fixtures/dicom/series-a/: the synthetic volume of seed 50000 (tools/cascade/synth.py) on the cascade's own
  grid, 32 slices of 80x80 at 2.5 x 1.4 x 1.4 mm; explicit VR little endian, unsigned pixels with RescaleIntercept
  -1024; file names shuffled so that only ImagePositionPatient gives the order.
- web/test/fixtures/dicom/series-b/: the same volume resampled (trilinear) to 40 slices of 100x100 at 2.0 x 1.12 x
  1.12 mm, the same field of view; implicit VR little endian, signed pixels with RescaleSlope 0.5, instance numbers
  running head to feet, plus a README.txt that is not DICOM. The viewer must resample it back to the cascade's grid.
- web/test/fixtures/dicom/series.json: for each series its shape, spacing and checksums of the HU values the files
  hold (sum, per-slice sums in feet-to-head order, a few voxels), which the JS reader must reproduce.
- web/test/fixtures/nifti/las.nii.gz: series A's volume as dcm2niix stores axial CT (int16, sform, i right -> left,
  j posterior -> anterior, k feet -> head), so a reader must flip y to get series A back exactly.
- web/test/fixtures/nifti/ras-qform.nii: the volume on a coarser grid of the same field of view, 20 slices of
  50x50 at 4.0 x 2.24 x 2.24 mm (float32, qform only, i left -> right, j posterior -> anterior, k head -> feet),
  uncompressed; its HU checksums are in series.json as "nifti-coarse".

    python3 tools/browser/make_volume_fixtures.py        (needs pydicom, nibabel, numpy, scipy)
"""
import json
import os
import sys

import numpy as np
from scipy import ndimage

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "cascade"))
import synth  # noqa: E402

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid  # noqa: E402

OUT = os.path.join(ROOT, "web", "test", "fixtures", "dicom")
NIFTI_OUT = os.path.join(ROOT, "web", "test", "fixtures", "nifti")
SEED = 50000
# Fixed UIDs under a made-up root so the files are byte-reproducible.
UID_ROOT = "1.2.826.0.1.3680043.10.1418."


def uid(*parts):
    return UID_ROOT + ".".join(str(p) for p in parts)


def write_series(folder, hu, spacing, syntax, signed, slope, intercept, series_no, order, names):
    """hu: (z, y, x) float HU, z feet -> head. order: instance numbers follow z ascending ('up') or descending."""
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    Z, Y, X = hu.shape
    stored = np.round((hu - intercept) / slope)
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    assert stored.min() >= info.min and stored.max() <= info.max, "HU do not fit the stored type"
    stored = stored.astype(dtype)
    exact = stored.astype(np.float64) * slope + intercept  # what a reader must get back
    z0 = -0.5 * (Z - 1) * spacing[0]
    for z in range(Z):
        instance = z + 1 if order == "up" else Z - z
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid(series_no, instance)
        meta.TransferSyntaxUID = syntax
        meta.ImplementationClassUID = uid(0)
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = uid(series_no, 0, 1)
        ds.SeriesInstanceUID = uid(series_no, 0, 2)
        ds.FrameOfReferenceUID = uid(0, 0, 3)
        ds.Modality = "CT"
        ds.PatientName = "Synthetic^Phantom"
        ds.PatientID = "KEDGE-SYNTH-%d" % SEED
        ds.SeriesDescription = "Synthetic chest CT (seed %d) %dx%dx%d" % (SEED, Z, Y, X)
        ds.SeriesNumber = series_no
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [round(-0.5 * (X - 1) * spacing[2], 4), round(-0.5 * (Y - 1) * spacing[1], 4),
                                   round(z0 + z * spacing[0], 4)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = Y, X
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept = intercept
        ds.RescaleSlope = slope
        ds.RescaleType = "HU"
        ds.PixelData = stored[z].tobytes()
        ds.save_as(os.path.join(folder, names[z]), enforce_file_format=True)
    Zs = exact.reshape(Z, -1).sum(axis=1)
    picks = [[z, y, x] for z, y, x in [(0, 0, 0), (Z // 2, Y // 2, X // 2), (Z - 1, Y - 1, X - 1), (Z // 3, Y // 4, 3 * X // 4)]]
    return {
        "shape": [Z, Y, X], "spacing_mm": list(spacing), "sum": float(exact.sum()), "slice_sums": [float(s) for s in Zs],
        "voxels": [{"zyx": p, "hu": float(exact[tuple(p)])} for p in picks], "min": float(exact.min()),
        "max": float(exact.max()), "syntax": str(syntax),
    }


def resample(hu, shape, spacing):
    """Trilinear resampling to a grid sharing the volume's centre (voxel centres at (i - (n-1)/2) * spacing)."""
    coords = [(np.arange(n) - (n - 1) / 2) * s / s0 + (n0 - 1) / 2
              for n, s, n0, s0 in zip(shape, spacing, hu.shape, synth.SPACING)]
    grid = np.meshgrid(*coords, indexing="ij")
    return ndimage.map_coordinates(hu, grid, order=1, mode="nearest")


def main():
    vol, label, _ = synth.generate(SEED, force_cancer=True)
    hu = vol.astype(np.float64)
    rng = np.random.default_rng(7)
    Z = hu.shape[0]
    names_a = ["IM%04d" % i for i in rng.permutation(Z)]
    a = write_series(os.path.join(OUT, "series-a"), hu, list(synth.SPACING), ExplicitVRLittleEndian, False, 1.0, -1024.0,
                     1, "up", names_a)
    # The same field of view on a finer grid (voxel centres of both grids share the volume's centre).
    shape_b = (40, 100, 100)
    spacing_b = [2.0, 1.12, 1.12]
    hu_b = resample(hu, shape_b, spacing_b)
    names_b = ["slice_%03d.dcm" % (shape_b[0] - z) for z in range(shape_b[0])]
    b = write_series(os.path.join(OUT, "series-b"), hu_b, spacing_b, ImplicitVRLittleEndian, True, 0.5, -1024.0, 2,
                     "down", names_b)
    with open(os.path.join(OUT, "series-b", "README.txt"), "w") as f:
        f.write("Not a DICOM file: the viewer skips it.\n")
    summary = {"made_by": "python3 tools/browser/make_volume_fixtures.py", "seed": SEED, "label": label,
               "series-a": a, "series-b": b}
    coarse = resample(hu, (20, 50, 50), [4.0, 2.24, 2.24])
    write_nifti(hu, coarse, [4.0, 2.24, 2.24])
    summary["nifti-coarse"] = {"shape": list(coarse.shape), "spacing_mm": [4.0, 2.24, 2.24], "sum": float(coarse.astype(np.float32).astype(np.float64).sum())}
    with open(os.path.join(OUT, "series.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for o in (OUT, NIFTI_OUT) for d, _, ns in os.walk(o) for n in ns)
    print("wrote %s and %s (%.0f KB)" % (OUT, NIFTI_OUT, total / 1024))


def write_nifti(hu, coarse, spacing_c):
    import gzip
    import io

    import nibabel as nib

    os.makedirs(NIFTI_OUT, exist_ok=True)
    # (z, y, x) with y anterior -> posterior and x right -> left  ->  (i, j, k) = (x, reversed y, z).
    dz, dy, dx = synth.SPACING
    data = np.ascontiguousarray(np.transpose(hu[:, ::-1, :], (2, 1, 0))).astype(np.int16)
    aff = np.diag([-dx, dy, dz, 1.0])
    img = nib.Nifti1Image(data, aff)
    img.set_sform(aff, code=1)
    img.set_qform(None, code=0)
    img.header.set_xyzt_units("mm")
    raw = img.to_bytes()
    # gzip without a timestamp, so the file is byte-reproducible.
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(raw)
    with open(os.path.join(NIFTI_OUT, "las.nii.gz"), "wb") as f:
        f.write(buf.getvalue())
    # The coarse grid: i left -> right (x reversed), j posterior -> anterior (y reversed), k head -> feet (z reversed).
    sz, sy, sx = spacing_c
    data_b = np.ascontiguousarray(np.transpose(coarse[::-1, ::-1, ::-1], (2, 1, 0))).astype(np.float32)
    aff_b = np.array([[sx, 0, 0, 10.0], [0, sy, 0, -20.0], [0, 0, -sz, 30.0], [0, 0, 0, 1]])
    img_b = nib.Nifti1Image(data_b, aff_b)
    img_b.set_qform(aff_b, code=1)
    img_b.set_sform(None, code=0)
    img_b.header.set_xyzt_units("mm")
    img_b.to_filename(os.path.join(NIFTI_OUT, "ras-qform.nii"))


if __name__ == "__main__":
    main()
