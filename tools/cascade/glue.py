"""The glue between the cascade's models, exactly as docs/CASCADE.md defines it (the Swift runtime mirrors this file).

Conventions (docs/CASCADE.md, "Conventions"):
- volumes are (z, y, x) arrays of Hounsfield units, converted to float32 before anything else;
- tensors fed to models are float32; scalar bookkeeping (centroids, box decoding, distances, features) is float64;
- voxel i has its centre at coordinate i; rounding to a voxel is floor(c + 0.5);
- every list keeps a defined order and every sort has a tie-break, so that the output does not depend on how a
  runtime happens to enumerate things.
"""
import math

import numpy as np
from scipy import ndimage


def window(hu, lo, hi):
    """HU windowing: clamp to [lo, hi], then (v - lo) / (hi - lo), all in float32."""
    x = np.asarray(hu, dtype=np.float32)
    lo32, hi32, scale = np.float32(lo), np.float32(hi), np.float32(hi - lo)
    return (np.minimum(np.maximum(x, lo32), hi32) - lo32) / scale


def crop3d(vol, center, size, pad):
    """The size = (dz, dy, dx) cube starting at center - size // 2 (so the centre voxel lands at size // 2),
    voxels outside the volume set to pad."""
    out = np.full(size, np.float32(pad), np.float32)
    src, dst = [], []
    for c, s, n in zip(center, size, vol.shape):
        start = int(c) - s // 2
        a, b = max(start, 0), min(start + s, n)
        if a >= b:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - start, b - start))
    out[tuple(dst)] = vol[tuple(src)]
    return out


def crop2d(vol, center, size, dz_offsets, pad):
    """A (h, w, len(dz_offsets)) patch: channel k is slice z + dz_offsets[k], rows/cols starting at
    y - h // 2 and x - w // 2; anything outside the volume is pad."""
    z, y, x = (int(v) for v in center)
    h, w = size
    out = np.full((h, w, len(dz_offsets)), np.float32(pad), np.float32)
    y0, x0 = y - h // 2, x - w // 2
    ya, yb = max(y0, 0), min(y0 + h, vol.shape[1])
    xa, xb = max(x0, 0), min(x0 + w, vol.shape[2])
    if ya >= yb or xa >= xb:
        return out
    for k, dz in enumerate(dz_offsets):
        zz = z + int(dz)
        if 0 <= zz < vol.shape[0]:
            out[ya - y0:yb - y0, xa - x0:xb - x0, k] = vol[zz, ya:yb, xa:xb]
    return out


def box_input(vol, heat, center, s):
    """The box model's input for one candidate: the windowed HU patch (channels dz_offsets), then the ROI
    heatmap patch (channels heatmap_dz_offsets, heatmap_pad outside the volume, not windowed)."""
    hu = window(crop2d(vol, center, tuple(s["patch"]), s["dz_offsets"], s["pad_hu"]), *s["window"])
    hm = crop2d(heat, center, tuple(s["patch"]), s["heatmap_dz_offsets"], s["heatmap_pad"])
    return np.concatenate([hu, hm], axis=-1)


def sigmoid64(v):
    v = float(v)
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def round_half_up(c):
    return int(math.floor(c + 0.5))


def candidates(heat, cfg):
    """Heatmap (z, y, x) float32 -> candidate list (dicts), per docs/CASCADE.md "candidates"."""
    t = float(cfg["threshold"])
    mask = heat >= np.float32(t)
    if cfg["connectivity"] == 6:
        structure = ndimage.generate_binary_structure(3, 1)
    elif cfg["connectivity"] == 26:
        structure = ndimage.generate_binary_structure(3, 3)
    else:
        raise ValueError("connectivity must be 6 or 26")
    labels, n = ndimage.label(mask, structure=structure)  # only the partition is used, not scipy's numbering
    if n == 0:
        return []
    flat_labels = labels.ravel()
    idx = np.flatnonzero(flat_labels)  # increasing flat index = raster order
    lab = flat_labels[idx]
    order = np.argsort(lab, kind="stable")  # group by label, raster order inside each group
    idx, lab = idx[order], lab[order]
    bounds = np.flatnonzero(np.diff(lab)) + 1
    groups = np.split(idx, bounds)
    Z, Y, X = heat.shape
    flat_heat = heat.ravel()
    out = []
    for g in groups:
        if len(g) < cfg["min_voxels"]:
            continue
        p = flat_heat[g].astype(np.float64)
        w = p - t
        zc, yc, xc = (g // (Y * X)).astype(np.float64), ((g // X) % Y).astype(np.float64), (g % X).astype(np.float64)
        mass = float(np.sum(w))
        if mass > 0.0:
            cen = [float(np.sum(w * zc)) / mass, float(np.sum(w * yc)) / mass, float(np.sum(w * xc)) / mass]
        else:
            cen = [float(np.mean(zc)), float(np.mean(yc)), float(np.mean(xc))]
        out.append({
            "first_index": int(g[0]),
            "voxels": int(len(g)),
            "mass": mass,
            "max_p": float(p.max()),
            "centroid": cen,
            "center": [round_half_up(c) for c in cen],
        })
    out.sort(key=lambda c: (-c["mass"], c["first_index"]))
    return out[: cfg["max_candidates"]]


def select_nodules(cands, logits, cfg, spacing):
    """FP threshold on the logit, sort by logit (desc, then candidate index), greedy NMS in mm, cap."""
    keep_idx = [i for i, l in enumerate(logits) if float(l) >= cfg["fp_logit_threshold"]]
    keep_idx.sort(key=lambda i: (-float(logits[i]), i))
    r2 = float(cfg["nms_radius_mm"]) ** 2
    kept = []
    for i in keep_idx:
        ci = cands[i]["center"]
        close = False
        for j in kept:
            cj = cands[j]["center"]
            d2 = sum(((ci[a] - cj[a]) * float(spacing[a])) ** 2 for a in range(3))
            if d2 < r2:
                close = True
                break
        if not close:
            kept.append(i)
            if len(kept) == cfg["max_nodules"]:
                break
    return kept


def box_target(center, size, rows, cols):
    """Normalised box-regression target for a patch at center (z, y, x) of size (h, w) around the pixels
    (rows, cols) of one nodule in that slice: (s_cy, s_cx, s_h, s_w)."""
    h, w = size
    y0, x0 = center[1] - h // 2, center[2] - w // 2
    rmin, rmax, cmin, cmax = rows.min(), rows.max(), cols.min(), cols.max()
    cy, cx = (rmin + rmax) / 2.0, (cmin + cmax) / 2.0
    return np.array([(cy - y0 + 0.5) / h, (cx - x0 + 0.5) / w, (rmax - rmin + 1) / h, (cmax - cmin + 1) / w], np.float32)


def decode_box(center, size, s, spacing):
    """Box-model output s = (s_cy, s_cx, s_h, s_w) for the patch at center -> box in voxel coordinates."""
    h, w = size
    s = [min(max(float(v), 0.0), 1.0) for v in s]  # float32 -> float64 (exact), clamped to [0, 1]
    cy = (center[1] - h // 2) + s[0] * h - 0.5
    cx = (center[2] - w // 2) + s[1] * w - 0.5
    bh, bw = s[2] * h, s[3] * w
    return {
        "z": int(center[0]),
        "cy": cy, "cx": cx, "h": bh, "w": bw,
        "y0": cy - bh / 2.0, "x0": cx - bw / 2.0, "y1": cy + bh / 2.0, "x1": cx + bw / 2.0,
        "diameter_mm": 0.5 * (bh * float(spacing[1]) + bw * float(spacing[2])),
        "patch_center": [int(center[0]), round_half_up(cy), round_half_up(cx)],
    }


FEATURES = [
    "sex_male_prob",
    "n_nodules",
    "max_malignancy",
    "mean_malignancy",
    "largest_malignancy",
    "max_diameter_mm",
    "mean_diameter_mm",
    "max_fp_prob",
    "mean_fp_prob",
]


def features(sex_p, cand_logits, nodules):
    """The meta-classifier's feature vector (float64 here, float32 when handed to XGBoost)."""
    f = dict.fromkeys(FEATURES, 0.0)
    f["sex_male_prob"] = float(sex_p)
    if len(cand_logits):
        f["max_fp_prob"] = sigmoid64(max(float(v) for v in cand_logits))
    if nodules:
        mal = [float(n["malignancy"]) for n in nodules]
        dia = [float(n["box"]["diameter_mm"]) for n in nodules]
        fp = [float(n["fp_prob"]) for n in nodules]
        largest = 0
        for i in range(1, len(dia)):
            if dia[i] > dia[largest]:
                largest = i
        f["n_nodules"] = float(len(nodules))
        f["max_malignancy"] = max(mal)
        f["mean_malignancy"] = sum(mal) / len(mal)
        f["largest_malignancy"] = mal[largest]
        f["max_diameter_mm"] = max(dia)
        f["mean_diameter_mm"] = sum(dia) / len(dia)
        f["mean_fp_prob"] = sum(fp) / len(fp)
    return f


class Cascade:
    """Runs cascade.json's steps with callables for the five networks and the meta-classifier.

    nets: dict name -> f(batch float32 array) -> float32 array (batch first), for sex, roi, fp, box, malignancy;
    meta: f(features float32 (n, k)) -> probabilities.
    """

    def __init__(self, cfg, nets, meta):
        self.cfg, self.nets, self.meta = cfg, nets, meta
        self.spacing = cfg["input"]["spacing_mm"]
        self.steps = {s["name"]: s for s in cfg["steps"]}

    def run(self, hu, keep_heatmap=False):
        c = self.steps
        vol = np.asarray(hu).astype(np.float32)
        want = tuple(self.cfg["input"]["shape"])
        if vol.shape != want:
            raise ValueError("volume shape %s, cascade expects %s" % (vol.shape, want))
        res = {}
        # 1. sex
        s = c["sex"]
        x = window(vol, *s["window"])[None, :, :, :, None]
        res["sex_male_prob"] = float(np.asarray(self.nets["sex"](x)).reshape(-1)[0])
        # 2. ROI heatmap, slice by slice
        s = c["roi"]
        x = window(vol, *s["window"])[:, :, :, None]
        heat = np.asarray(self.nets["roi"](x), np.float32).reshape(vol.shape)
        res["heatmap"] = {
            "sum": float(np.sum(heat, dtype=np.float64)),
            "max": float(heat.max()),
            "above_threshold": int(np.count_nonzero(heat >= np.float32(c["candidates"]["threshold"]))),
        }
        if keep_heatmap:
            res["_heat"] = heat
        # 3. candidates
        cands = candidates(heat, c["candidates"])
        # 4. false-positive reduction
        s = c["fp"]
        if cands:
            cubes = np.stack([crop3d(vol, cd["center"], tuple(s["cube"]), s["pad_hu"]) for cd in cands])
            x = window(cubes, *s["window"])[..., None]
            logits = np.asarray(self.nets["fp"](x), np.float32).reshape(-1)
        else:
            logits = np.zeros((0,), np.float32)
        for cd, l in zip(cands, logits):
            cd["fp_logit"] = float(l)
            cd["fp_prob"] = sigmoid64(l)
        res["candidates"] = cands
        # 5. selection + NMS
        kept = select_nodules(cands, logits, c["select"], self.spacing)
        nodules = [{"candidate": i, "center": cands[i]["center"], "fp_logit": cands[i]["fp_logit"],
                    "fp_prob": cands[i]["fp_prob"]} for i in kept]
        # 6. boxes
        s = c["box"]
        if nodules:
            patches = np.stack([box_input(vol, heat, n["center"], s) for n in nodules])
            out = np.asarray(self.nets["box"](patches), np.float32).reshape(len(nodules), 4)
            for n, o in zip(nodules, out):
                n["box_raw"] = [float(v) for v in o]
                n["box"] = decode_box(n["center"], tuple(s["patch"]), o, self.spacing)
        # 7. malignancy
        s = c["malignancy"]
        if nodules:
            patches = np.stack([crop2d(vol, n["box"]["patch_center"], tuple(s["patch"]), s["dz_offsets"], s["pad_hu"])
                                for n in nodules])
            out = np.asarray(self.nets["malignancy"](window(patches, *s["window"])), np.float32).reshape(-1)
            for n, o in zip(nodules, out):
                n["malignancy"] = float(o)
        res["nodules"] = nodules
        # 8. features + meta-classifier
        f = features(res["sex_male_prob"], logits, nodules)
        res["features"] = f
        vec = np.array([[f[k] for k in self.cfg["features"]]], np.float32)
        res["feature_vector"] = [float(v) for v in vec[0]]
        res["probability"] = float(np.asarray(self.meta(vec)).reshape(-1)[0])
        return res
