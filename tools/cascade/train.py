"""Trains the lung-CT cascade on synthetic volumes and writes models/cascade/ (five Keras .h5 models, the XGBoost
meta-classifier as JSON and UBJ, cascade.json, TRAINING.md).

    TF_ENABLE_ONEDNN_OPTS=0 nice -n 10 python3 tools/cascade/train.py

Three disjoint sets of seeded volumes: A trains the networks, B trains the meta-classifier on the cascade's own
outputs (so that it sees realistic, imperfect stage outputs), C is held out for every metric. Generated volumes
are cached under --cache (not in the repository).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue  # noqa: E402
import synth  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUNG = [-1000.0, 400.0]
ROI_CROP = 48
FROZEN_BN_EPOCHS = 2
FP_PER_VOLUME = 0.5

# The cascade description; train.py writes it as models/cascade/cascade.json (docs/CASCADE.md explains each field).
CONFIG = {
    "format": "kedge-cascade",
    "version": 1,
    "name": "lung-ct-synthetic",
    "description": "Synthetic low-dose chest CT screening cascade: sex, nodule ROIs, false-positive reduction, "
                   "boxes, malignancy, XGBoost meta-classifier. Semantics: docs/CASCADE.md.",
    "input": {"shape": list(synth.SHAPE), "axes": ["z", "y", "x"], "spacing_mm": list(synth.SPACING),
              "unit": "HU", "dtypes": ["int16", "float32"], "resample": "none"},
    "models": {
        "sex": {"file": "sex.h5", "format": "keras-h5", "input_shape": [1] + list(synth.SHAPE) + [1],
                "output_shape": [1, 1], "output": "probability (sigmoid): male"},
        "roi": {"file": "roi.h5", "format": "keras-h5", "input_shape": [synth.SHAPE[0]] + list(synth.SHAPE[1:]) + [1],
                "output_shape": [synth.SHAPE[0]] + list(synth.SHAPE[1:]) + [1],
                "output": "probability (sigmoid) per pixel: nodule", "batch": "one item per axial slice z, in order"},
        "fp": {"file": "fp.h5", "format": "keras-h5", "input_shape": ["n", 8, 24, 24, 1], "output_shape": ["n", 1],
               "output": "logit (linear): candidate is a real nodule"},
        "box": {"file": "box.h5", "format": "keras-h5", "input_shape": ["n", 32, 32, 4], "output_shape": ["n", 4],
                "output": "linear (s_cy, s_cx, s_h, s_w) relative to the patch, clamped to [0, 1] by the glue"},
        "malignancy": {"file": "malignancy.h5", "format": "keras-h5", "input_shape": ["n", 32, 32, 3],
                       "output_shape": ["n", 1], "output": "probability (sigmoid): malignant"},
        "meta": {"file": "meta.json", "ubj": "training/meta.ubj", "format": "xgboost", "objective": "binary:logistic",
                 "input_shape": [1, 9], "output": "probability: cancer"},
    },
    "steps": [
        {"name": "sex", "op": "classify_volume", "model": "sex", "window": [-250.0, 250.0]},
        {"name": "roi", "op": "heatmap_slices", "model": "roi", "window": LUNG},
        {"name": "candidates", "op": "components", "input": "roi", "threshold": 0.5, "connectivity": 6,
         "min_voxels": 2, "max_candidates": 32, "weight": "p - threshold", "order": "mass desc, first_index asc"},
        {"name": "fp", "op": "classify_cubes", "model": "fp", "input": "candidates", "cube": [8, 24, 24],
         "pad_hu": -1000.0, "window": LUNG},
        {"name": "select", "op": "select_nms", "input": "fp", "fp_logit_threshold": 0.0, "nms_radius_mm": 8.0,
         "max_nodules": 5, "order": "fp_logit desc, candidate index asc"},
        {"name": "box", "op": "box_patches", "model": "box", "input": "select", "patch": [32, 32],
         "dz_offsets": [-1, 0, 1], "pad_hu": -1000.0, "window": LUNG, "heatmap_dz_offsets": [0], "heatmap_pad": 0.0},
        {"name": "malignancy", "op": "classify_patches", "model": "malignancy", "input": "box", "patch": [32, 32],
         "dz_offsets": [-1, 0, 1], "pad_hu": -1000.0, "window": LUNG, "center": "box patch_center"},
        {"name": "features", "op": "features", "input": ["sex", "fp", "select", "box", "malignancy"]},
        {"name": "meta", "op": "meta", "model": "meta", "input": "features"},
    ],
    "features": list(glue.FEATURES),
}


def dump_json(v, indent=0):
    """JSON with objects one key per line and lists of scalars on one line (readable cascade.json)."""
    pad = " " * indent
    if isinstance(v, dict):
        items = ['%s  %s: %s' % (pad, json.dumps(k), dump_json(x, indent + 2)) for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
        return "[\n" + ",\n".join(pad + "  " + dump_json(x, indent + 2) for x in v) + "\n" + pad + "]"
    return json.dumps(v)


def steps():
    return {s["name"]: s for s in CONFIG["steps"]}


# ---------------------------------------------------------------------------------------------------- data
def make_set(cache, name, seeds):
    path = os.path.join(cache, "%s_%d_%d.npz" % (name, seeds[0], len(seeds)))
    if os.path.exists(path):
        d = np.load(path, allow_pickle=False)
        return d["vols"], d["maps"], d["vessel"], json.loads(str(d["labels"]))
    vols, maps, vessel, labels = [], [], [], []
    for s in seeds:
        v, l, e = synth.generate(s)
        vols.append(v)
        maps.append(e["nodule_map"])
        vessel.append(e["vessel"])
        labels.append(l)
    vols, maps, vessel = np.stack(vols), np.stack(maps), np.stack(vessel)
    os.makedirs(cache, exist_ok=True)
    np.savez(path, vols=vols, maps=maps, vessel=vessel, labels=json.dumps(labels))
    return vols, maps, vessel, labels


def auc(labels, scores):
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, np.float64)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def match(center, nodules, nmap):
    """Index of the ground-truth nodule a candidate centre hits (inside its mask, or within r + 2 mm), or -1."""
    k = int(nmap[tuple(center)])
    if k > 0:
        return k - 1
    best, bd = -1, 1e9
    for i, n in enumerate(nodules):
        d = np.sqrt(sum(((center[a] - n["center_vox"][a]) * synth.SPACING[a]) ** 2 for a in range(3)))
        if d <= n["diameter_mm"] / 2.0 + 2.0 and d < bd:
            best, bd = i, d
    return best


def freeze_bn(keras, m):
    """Last epochs with BatchNormalization in inference mode (moving statistics) at a lower learning rate, so
    that the weights fit the statistics the model is run with: with few training steps, batch statistics and
    moving statistics differ enough to shift the outputs (the sex model's threshold moved by this alone)."""
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    m.compile(optimizer=keras.optimizers.Adam(5e-4), loss=m.loss, metrics=None)


def flip_aug(rng, x, axes):
    """Random flips of each sample along the given axes (numpy, per sample)."""
    x = x.copy()
    for i in range(len(x)):
        for a in axes:
            if rng.random() < 0.5:
                x[i] = np.flip(x[i], axis=a - 1)
    return x


# ---------------------------------------------------------------------------------------------------- stages
def train_sex(keras, nets, vols, labels, epochs, log):
    keras.utils.set_random_seed(101)  # per stage: a stage trains the same whether or not others are reused
    s = steps()["sex"]
    x = glue.window(vols, *s["window"])[..., None]
    y = np.array([l["male"] for l in labels], np.float32)
    m = nets.sex_net(synth.SHAPE)
    m.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(1)
    for e in range(epochs):
        if e == epochs - FROZEN_BN_EPOCHS:
            freeze_bn(keras, m)
        xa = flip_aug(rng, x, [3])  # left-right mirror
        h = m.fit(xa, y, batch_size=16, epochs=1, verbose=0, shuffle=True)
        log("  sex epoch %d loss %.4f" % (e + 1, h.history["loss"][-1]))
    return m


def dice_bce(tf):
    def loss(y, p):
        p = tf.clip_by_value(p, 1e-6, 1 - 1e-6)
        bce = -tf.reduce_mean(3.0 * y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))
        inter = tf.reduce_sum(y * p)
        dice = (2 * inter + 1.0) / (tf.reduce_sum(y) + tf.reduce_sum(p) + 1.0)
        return bce + (1.0 - dice)

    return loss


def train_roi(keras, tf, nets, vols, maps, epochs, log):
    keras.utils.set_random_seed(102)  # per stage: a stage trains the same whether or not others are reused
    s = steps()["roi"]
    rng = np.random.default_rng(2)
    pos, neg = [], []
    for i in range(len(vols)):
        has = (maps[i] > 0).any(axis=(1, 2))
        for z in range(vols.shape[1]):
            (pos if has[z] else neg).append((i, z))
    neg_pick = [neg[j] for j in rng.choice(len(neg), min(len(neg), len(pos)), replace=False)]
    # the net is fully convolutional: train on CROP x CROP crops (cheaper), run on whole slices
    H, W = synth.SHAPE[1:]
    xs, ys = [], []
    for k, (i, z) in enumerate(pos + neg_pick):
        t = maps[i, z] > 0
        if k < len(pos):
            py, px = np.argwhere(t)[rng.integers(int(t.sum()))]
            y0 = int(np.clip(py - rng.integers(8, ROI_CROP - 8), 0, H - ROI_CROP))
            x0 = int(np.clip(px - rng.integers(8, ROI_CROP - 8), 0, W - ROI_CROP))
        else:
            y0, x0 = int(rng.integers(0, H - ROI_CROP + 1)), int(rng.integers(0, W - ROI_CROP + 1))
        xs.append(glue.window(vols[i, z, y0:y0 + ROI_CROP, x0:x0 + ROI_CROP], *s["window"]))
        ys.append(t[y0:y0 + ROI_CROP, x0:x0 + ROI_CROP].astype(np.float32))
    x, y = np.stack(xs)[..., None], np.stack(ys)[..., None]
    log("  roi crops (%dx%d): %d with nodule, %d without" % (ROI_CROP, ROI_CROP, len(pos), len(neg_pick)))
    m = nets.roi_net((ROI_CROP, ROI_CROP))
    m.compile(optimizer=keras.optimizers.Adam(2e-3), loss=dice_bce(tf))
    for e in range(epochs):
        if e == epochs - FROZEN_BN_EPOCHS:
            freeze_bn(keras, m)
        xy = np.concatenate([x, y], axis=-1)
        xy = flip_aug(rng, xy, [1, 2])
        h = m.fit(xy[..., :1], xy[..., 1:], batch_size=32, epochs=1, verbose=0, shuffle=True)
        log("  roi epoch %d loss %.4f" % (e + 1, h.history["loss"][-1]))
    full = nets.roi_net(synth.SHAPE[1:])  # same weights, whole-slice input
    full.set_weights(m.get_weights())
    return full


def heatmaps(m, vols):
    s = steps()["roi"]
    out = np.zeros(vols.shape, np.float32)
    for i in range(len(vols)):
        out[i] = np.asarray(m.predict_on_batch(glue.window(vols[i], *s["window"])[..., None])).reshape(vols.shape[1:])
    return out


def fp_dataset(vols, maps, vessel, labels, heats, rng):
    st = steps()
    cube, pad = tuple(st["fp"]["cube"]), st["fp"]["pad_hu"]
    xs, ys, unmatched = [], [], []
    for i in range(len(vols)):
        nods = labels[i]["nodules"]
        cands = glue.candidates(heats[i], st["candidates"])
        for c in cands:
            k = match(c["center"], nods, maps[i])
            xs.append(glue.crop3d(vols[i], c["center"], cube, pad))
            ys.append(1.0 if k >= 0 else 0.0)
            if k < 0:
                unmatched.append((i, c["center"]))
        for k, n in enumerate(nods):  # extra positives around every true nodule
            vox = np.argwhere(maps[i] == k + 1)
            if len(vox) == 0:
                continue
            cz, cy, cx = n["center_vox"]
            for _ in range(3):
                c = [int(np.floor(cz + rng.normal(0, 0.5) + 0.5)), int(np.floor(cy + rng.normal(0, 1.0) + 0.5)),
                     int(np.floor(cx + rng.normal(0, 1.0) + 0.5))]
                c = [int(np.clip(c[a], 0, synth.SHAPE[a] - 1)) for a in range(3)]
                xs.append(glue.crop3d(vols[i], c, cube, pad))
                ys.append(1.0)
        vv = np.argwhere(vessel[i])  # hard negatives: points on vessels
        for j in rng.choice(len(vv), min(3, len(vv)), replace=False) if len(vv) else []:
            xs.append(glue.crop3d(vols[i], vv[j], cube, pad))
            ys.append(0.0)
    return np.stack(xs), np.array(ys, np.float32), unmatched


def train_fp(keras, nets, x, y, epochs, log):
    keras.utils.set_random_seed(103)  # per stage: a stage trains the same whether or not others are reused
    s = steps()["fp"]
    xw = glue.window(x, *s["window"])[..., None]
    npos = float(y.sum())
    nneg = float(len(y) - npos)
    log("  fp cubes: %d positive, %d negative" % (npos, nneg))
    cw = {0: 1.0, 1: max(1.0, nneg / max(npos, 1.0))}
    m = nets.fp_net(tuple(s["cube"]))
    m.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    for e in range(epochs):
        if e == epochs - FROZEN_BN_EPOCHS:
            freeze_bn(keras, m)
        xa = flip_aug(rng, xw, [2, 3])
        h = m.fit(xa, y, batch_size=32, epochs=1, verbose=0, shuffle=True, class_weight=cw)
        log("  fp epoch %d loss %.4f" % (e + 1, h.history["loss"][-1]))
    return m


def jittered_centers(n, nmap_k, rng, count):
    """Centres near a nodule's centre (as the candidate stage would produce) whose slice still shows the nodule."""
    vox = np.argwhere(nmap_k)
    zs = np.unique(vox[:, 0])
    out = []
    cz, cy, cx = n["center_vox"]
    for _ in range(count):
        z = int(np.clip(np.floor(cz + rng.normal(0, 0.6) + 0.5), zs.min(), zs.max()))
        if z not in zs:
            z = int(zs[np.argmin(np.abs(zs - cz))])
        y = int(np.floor(cy + rng.normal(0, 1.0) + 0.5))
        x = int(np.floor(cx + rng.normal(0, 1.0) + 0.5))
        out.append((z, y, x))
    return out


def patch_aug(rng, x, boxes=None):
    """Flips and transposes of square patches (and of their box targets)."""
    x = x.copy()
    b = None if boxes is None else boxes.copy()
    for i in range(len(x)):
        if rng.random() < 0.5:
            x[i] = x[i][::-1]
            if b is not None:
                b[i, 0] = 1.0 - b[i, 0]
        if rng.random() < 0.5:
            x[i] = x[i][:, ::-1]
            if b is not None:
                b[i, 1] = 1.0 - b[i, 1]
        if rng.random() < 0.5:
            x[i] = np.transpose(x[i], (1, 0, 2))
            if b is not None:
                b[i] = b[i][[1, 0, 3, 2]]
    return x, b


def box_dataset(vols, maps, labels, heats, rng, per_nodule):
    s = steps()["box"]
    size = tuple(s["patch"])
    xs, bs = [], []
    for i in range(len(vols)):
        for k, n in enumerate(labels[i]["nodules"]):
            mk = maps[i] == k + 1
            if not mk.any():
                continue
            for c in jittered_centers(n, mk, rng, per_nodule):
                rows, cols = np.nonzero(mk[c[0]])
                xs.append(glue.box_input(vols[i], heats[i], c, s))
                bs.append(glue.box_target(c, size, rows, cols))
    return np.stack(xs), np.stack(bs)


def iou(a, b):
    """IoU of boxes given as (y0, x0, y1, x1)."""
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def target_to_box(c, size, t):
    d = glue.decode_box(c, size, t, synth.SPACING)
    return (d["y0"], d["x0"], d["y1"], d["x1"])


def train_box(keras, nets, x, b, epochs, log, frozen=2):
    """Regression suffers most from batch statistics: half the epochs run with BatchNormalization frozen."""
    keras.utils.set_random_seed(104)  # per stage: a stage trains the same whether or not others are reused
    s = steps()["box"]
    xw = x  # box_input has windowed it already
    m = nets.box_net(tuple(s["patch"]), len(s["dz_offsets"]) + len(s["heatmap_dz_offsets"]))
    m.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    rng = np.random.default_rng(4)
    log("  box patches: %d" % len(x))
    for e in range(epochs):
        if e == epochs - frozen:
            freeze_bn(keras, m)
        xa, ba = patch_aug(rng, xw, b)
        h = m.fit(xa, ba, batch_size=32, epochs=1, verbose=0, shuffle=True)
        log("  box epoch %d loss %.5f" % (e + 1, h.history["loss"][-1]))
    return m


def malignancy_dataset(vols, maps, labels, unmatched, rng, per_nodule):
    s = steps()["malignancy"]
    size = tuple(s["patch"])
    xs, ys = [], []
    for i in range(len(vols)):
        for k, n in enumerate(labels[i]["nodules"]):
            mk = maps[i] == k + 1
            if not mk.any():
                continue
            reps = per_nodule * (2 if n["malignant"] else 1)
            for c in jittered_centers(n, mk, rng, reps):
                xs.append(glue.crop2d(vols[i], c, size, s["dz_offsets"], s["pad_hu"]))
                ys.append(1.0 if n["malignant"] else 0.0)
    n_fp = min(len(unmatched), len(xs) // 4)
    for j in rng.choice(len(unmatched), n_fp, replace=False) if n_fp else []:
        i, c = unmatched[j]
        xs.append(glue.crop2d(vols[i], c, size, s["dz_offsets"], s["pad_hu"]))
        ys.append(0.0)
    return np.stack(xs), np.array(ys, np.float32)


def train_malignancy(keras, nets, x, y, epochs, log, frozen=2):
    keras.utils.set_random_seed(105)  # per stage: a stage trains the same whether or not others are reused
    s = steps()["malignancy"]
    xw = glue.window(x, *s["window"])
    m = nets.malignancy_net(tuple(s["patch"]), len(s["dz_offsets"]))
    m.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(5)
    log("  malignancy patches: %d malignant, %d not" % (int(y.sum()), int(len(y) - y.sum())))
    for e in range(epochs):
        if e == epochs - frozen:
            freeze_bn(keras, m)
        xa, _ = patch_aug(rng, xw)
        h = m.fit(xa, y, batch_size=32, epochs=1, verbose=0, shuffle=True)
        log("  malignancy epoch %d loss %.4f" % (e + 1, h.history["loss"][-1]))
    return m


# ---------------------------------------------------------------------------------------------------- cascade runs
def keras_nets(models):
    return {k: (lambda x, m=m: np.asarray(m.predict_on_batch(np.ascontiguousarray(x, np.float32)))) for k, m in models.items()}


def run_cascade(cfg, models, meta, vols):
    c = glue.Cascade(cfg, keras_nets(models), meta)
    return [c.run(v, keep_heatmap=True) for v in vols]


def evaluate(results, maps, labels, log):
    """Per-stage metrics of cascade runs against the ground truth."""
    m = {}
    sex_y = [l["male"] for l in labels]
    sex_p = [r["sex_male_prob"] for r in results]
    m["sex_accuracy"] = float(np.mean([(p >= 0.5) == bool(y) for p, y in zip(sex_p, sex_y)]))
    m["sex_auc"] = auc(sex_y, sex_p)
    # ROI: global Dice at the threshold, pixel AUC on all nodule voxels + a sample of the others
    rng = np.random.default_rng(7)
    inter = psum = tsum = 0.0
    pos_s, neg_s = [], []
    for r, nm in zip(results, maps):
        h, t = r["_heat"], nm > 0
        p = h >= np.float32(0.5)
        inter += float(np.count_nonzero(p & t))
        psum += float(np.count_nonzero(p))
        tsum += float(np.count_nonzero(t))
        pos_s.append(h[t])
        neg = h[~t]
        neg_s.append(neg[rng.choice(len(neg), 4000, replace=False)])
    m["roi_dice"] = 2 * inter / max(psum + tsum, 1.0)
    pos_s, neg_s = np.concatenate(pos_s), np.concatenate(neg_s)
    m["roi_pixel_auc"] = auc(np.r_[np.ones(len(pos_s)), np.zeros(len(neg_s))], np.r_[pos_s, neg_s])
    # FP reduction, detection, boxes, malignancy
    fp_y, fp_s, mal_y, mal_s, ious = [], [], [], [], []
    n_nod = found = fps = n_cand = hit_cand = n_mal = found_mal = 0
    missed_sizes = []
    for r, nm, l in zip(results, maps, labels):
        nods = l["nodules"]
        n_nod += len(nods)
        for c in r["candidates"]:
            k = match(c["center"], nods, nm)
            fp_y.append(int(k >= 0))
            fp_s.append(c["fp_logit"])
        n_cand += len(r["candidates"])
        hit = set()
        for c in r["candidates"]:
            k = match(c["center"], nods, nm)
            if k >= 0:
                hit.add(k)
        hit_cand += len(hit)
        got = set()
        for n in r["nodules"]:
            k = match(n["center"], nods, nm)
            if k < 0:
                fps += 1
                continue
            got.add(k)
            mal_y.append(int(nods[k]["malignant"]))
            mal_s.append(n["malignancy"])
            z = n["box"]["z"]
            rows, cols = np.nonzero(nm[z] == k + 1)
            if len(rows):
                gt = (rows.min() - 0.5, cols.min() - 0.5, rows.max() + 0.5, cols.max() + 0.5)
                b = n["box"]
                ious.append(iou((b["y0"], b["x0"], b["y1"], b["x1"]), gt))
        found += len(got)
        n_mal += sum(1 for n in nods if n["malignant"])
        found_mal += sum(1 for k in got if nods[k]["malignant"])
        missed_sizes += [nods[k]["diameter_mm"] for k in range(len(nods)) if k not in got]
    m["candidates_per_volume"] = n_cand / len(results)
    m["candidate_sensitivity"] = hit_cand / max(n_nod, 1)
    m["fp_auc"] = auc(fp_y, fp_s)
    m["detection_sensitivity"] = found / max(n_nod, 1)
    m["detection_sensitivity_malignant"] = found_mal / max(n_mal, 1)
    m["false_positives_per_volume"] = fps / len(results)
    m["missed_nodules_median_mm"] = float(np.median(missed_sizes)) if missed_sizes else 0.0
    m["box_mean_iou"] = float(np.mean(ious)) if ious else float("nan")
    m["box_iou_ge_0.5"] = float(np.mean(np.array(ious) >= 0.5)) if ious else float("nan")
    m["malignancy_auc"] = auc(mal_y, mal_s)
    m["final_auc"] = auc([l["cancer"] for l in labels], [r["probability"] for r in results])
    m["final_accuracy_at_0.5"] = float(np.mean([(r["probability"] >= 0.5) == bool(l["cancer"]) for r, l in zip(results, labels)]))
    for k, v in m.items():
        log("  %-28s %.4f" % (k, v))
    return m


# ---------------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "cascade"))
    ap.add_argument("--cache", default="/tmp/kedge_cascade_cache")
    ap.add_argument("--n-train", type=int, default=320)
    ap.add_argument("--n-meta", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--epochs", type=float, default=1.0, help="scales every stage's epoch count")
    ap.add_argument("--reuse", default="", help="comma-separated stages to load from --out instead of training")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(0)
    import keras

    keras.utils.set_random_seed(0)
    import xgboost as xgb

    import nets

    os.makedirs(a.out, exist_ok=True)
    reuse = set(x for x in a.reuse.split(",") if x)
    log_lines = []
    t_all, c_all = time.time(), time.process_time()

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)

    timings = {}

    def timed(name, fn):
        t0, c0 = time.time(), time.process_time()
        r = fn()
        timings[name] = (time.time() - t0, time.process_time() - c0)
        log("[%s] %.1f s wall, %.1f s CPU" % (name, *timings[name]))
        return r

    def ep(n):
        return max(1, int(round(n * a.epochs)))

    A = timed("data A", lambda: make_set(a.cache, "train", list(range(1000, 1000 + a.n_train))))
    B = timed("data B", lambda: make_set(a.cache, "meta", list(range(20000, 20000 + a.n_meta))))
    C = timed("data C", lambda: make_set(a.cache, "test", list(range(30000, 30000 + a.n_test))))
    volsA, mapsA, vesA, labA = A
    log("train volumes: %d (%d cancer, %d male, %d nodules)" % (
        len(labA), sum(l["cancer"] for l in labA), sum(l["male"] for l in labA), sum(len(l["nodules"]) for l in labA)))

    def load(name):
        return keras.models.load_model(os.path.join(a.out, name + ".h5"), compile=False)

    def save(name, m):
        m.save(os.path.join(a.out, name + ".h5"), include_optimizer=False)
        return m

    models = {}
    models["sex"] = load("sex") if "sex" in reuse else timed("train sex", lambda: save("sex", train_sex(keras, nets, volsA, labA, ep(8), log)))
    models["roi"] = load("roi") if "roi" in reuse else timed("train roi", lambda: save("roi", train_roi(keras, tf, nets, volsA, mapsA, ep(12), log)))
    heatsA = timed("roi on A", lambda: heatmaps(models["roi"], volsA))
    rng = np.random.default_rng(11)
    fx, fy, unmatched = timed("fp data", lambda: fp_dataset(volsA, mapsA, vesA, labA, heatsA, rng))
    models["fp"] = load("fp") if "fp" in reuse else timed("train fp", lambda: save("fp", train_fp(keras, nets, fx, fy, ep(10), log)))
    del fx, fy
    bx, bb = box_dataset(volsA, mapsA, labA, heatsA, rng, 6)
    del heatsA
    models["box"] = load("box") if "box" in reuse else timed("train box", lambda: save("box", train_box(keras, nets, bx, bb, ep(16), log, frozen=ep(8))))
    del bx, bb
    mx, my = malignancy_dataset(volsA, mapsA, labA, unmatched, rng, 8)
    models["malignancy"] = load("malignancy") if "malignancy" in reuse else timed(
        "train malignancy", lambda: save("malignancy", train_malignancy(keras, nets, mx, my, ep(14), log, frozen=ep(6))))
    del mx, my

    # meta-classifier on the cascade's own outputs for set B
    volsB, mapsB, _, labB = B
    resB = timed("cascade on B", lambda: run_cascade(CONFIG, models, lambda v: np.zeros(len(v)), volsB))
    # FP operating point, chosen on B: the lowest logit threshold (on a 0.25 grid) that keeps at most
    # FP_PER_VOLUME unmatched candidates per volume
    neg = np.sort([c["fp_logit"] for r, nm, l in zip(resB, mapsB, labB) for c in r["candidates"]
                   if match(c["center"], l["nodules"], nm) < 0])[::-1]
    k = int(FP_PER_VOLUME * len(resB))
    thr = float(np.floor(neg[k] / 0.25) * 0.25 + 0.25) if len(neg) > k else -2.0
    sel = steps()["select"]
    log("  FP threshold from B: logit >= %.2f (%d unmatched candidates in B)" % (thr, len(neg)))
    if thr != sel["fp_logit_threshold"]:
        sel["fp_logit_threshold"] = thr
        resB = timed("cascade on B (new threshold)", lambda: run_cascade(CONFIG, models, lambda v: np.zeros(len(v)), volsB))
    XB = np.array([r["feature_vector"] for r in resB], np.float32)
    yB = np.array([l["cancer"] for l in labB], np.float32)
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.1, "min_child_weight": 3.0,
              "eval_metric": "auc", "nthread": 1, "seed": 0, "tree_method": "exact"}
    booster = timed("train meta", lambda: xgb.train(params, xgb.DMatrix(XB, label=yB, feature_names=CONFIG["features"]),
                                                   num_boost_round=80))
    booster.save_model(os.path.join(a.out, "meta.json"))
    # Beside the served models only what `kedge serve` should serve: the UBJSON copy, the metrics and the demo
    # volume's label go to training/ (a subfolder the server does not scan).
    os.makedirs(os.path.join(a.out, "training"), exist_ok=True)
    booster.save_model(os.path.join(a.out, "training", "meta.ubj"))

    def meta(v):
        return booster.predict(xgb.DMatrix(np.asarray(v, np.float32), feature_names=CONFIG["features"]))

    with open(os.path.join(a.out, "cascade.json"), "w") as f:
        f.write(dump_json(CONFIG) + "\n")

    log("meta-set (B) metrics:")
    for r in resB:
        r["probability"] = float(meta(np.array([r["feature_vector"]], np.float32))[0])
    mB = evaluate(resB, mapsB, labB, log)
    del resB
    volsC, mapsC, _, labC = C
    resC = timed("cascade on C", lambda: run_cascade(CONFIG, models, meta, volsC))
    log("held-out (C) metrics:")
    mC = evaluate(resC, mapsC, labC, log)
    imp = booster.get_score(importance_type="gain")
    wall, cpu = time.time() - t_all, time.process_time() - c_all
    log("total %.1f s wall, %.1f s CPU" % (wall, cpu))
    with open(os.path.join(a.out, "training", "metrics.json"), "w") as f:
        json.dump({"held_out": mC, "meta_set": mB, "timings_s": {k: {"wall": v[0], "cpu": v[1]} for k, v in timings.items()},
                   "total_wall_s": wall, "total_cpu_s": cpu, "feature_gain": imp,
                   "sets": {"train": len(labA), "meta": len(labB), "test": len(labC)}}, f, indent=1)
    write_training_md(a, mC, mB, timings, wall, cpu, imp, labA, labB, labC, models)


def write_training_md(a, mC, mB, timings, wall, cpu, imp, labA, labB, labC, models):
    def sizes():
        rows = []
        for n in ["sex", "roi", "fp", "box", "malignancy"]:
            p = os.path.join(a.out, n + ".h5")
            rows.append("| %s.h5 | %s | %d | %.0f KB |" % (n, models[n].name, models[n].count_params(), os.path.getsize(p) / 1024))
        for n in ["meta.json", "training/meta.ubj"]:
            rows.append("| %s | xgboost | | %.0f KB |" % (n, os.path.getsize(os.path.join(a.out, n)) / 1024))
        return "\n".join(rows)

    def cnt(labs):
        return "%d volumes, %d with cancer, %d male, %d nodules" % (
            len(labs), sum(l["cancer"] for l in labs), sum(l["male"] for l in labs), sum(len(l["nodules"]) for l in labs))

    cmd = "TF_ENABLE_ONEDNN_OPTS=0 nice -n 10 python3 tools/cascade/train.py"
    if a.n_train != 320 or a.n_meta != 300 or a.n_test != 200 or a.epochs != 1.0:
        cmd += " --n-train %d --n-meta %d --n-test %d --epochs %g" % (a.n_train, a.n_meta, a.n_test, a.epochs)
    rows = [
        ("1 sex (3D ResNet)", "accuracy / ROC AUC", "%.3f / %.3f" % (mC["sex_accuracy"], mC["sex_auc"])),
        ("2 ROI (2D residual U-Net)", "Dice at p >= 0.5 / pixel ROC AUC", "%.3f / %.4f" % (mC["roi_dice"], mC["roi_pixel_auc"])),
        ("  candidates", "per volume / nodules hit", "%.2f / %.3f" % (mC["candidates_per_volume"], mC["candidate_sensitivity"])),
        ("3 FP reduction (3D ResNet)", "candidate ROC AUC", "%.3f" % mC["fp_auc"]),
        ("  after select + NMS", "nodule sensitivity (all / malignant) / false positives per volume",
         "%.3f / %.3f / %.2f" % (mC["detection_sensitivity"], mC["detection_sensitivity_malignant"],
                                 mC["false_positives_per_volume"])),
        ("4 boxes (2D ResNet)", "mean IoU / share with IoU >= 0.5", "%.3f / %.3f" % (mC["box_mean_iou"], mC["box_iou_ge_0.5"])),
        ("5 malignancy (2D ResNet)", "ROC AUC over detected true nodules", "%.3f" % mC["malignancy_auc"]),
        ("6 meta-classifier (XGBoost)", "final ROC AUC (cancer per volume) / accuracy at 0.5",
         "**%.3f** / %.3f" % (mC["final_auc"], mC["final_accuracy_at_0.5"])),
    ]
    t = "\n".join("| %s | %s | %s |" % r for r in rows)
    tim = "\n".join("| %s | %.0f | %.0f |" % (k, v[0], v[1]) for k, v in timings.items())
    gain = ", ".join("%s %.1f" % (k, v) for k, v in sorted(imp.items(), key=lambda kv: -kv[1]))
    text = f"""# Training record of the synthetic lung-CT cascade

Made by

    {cmd}

on a shared 2-core machine (TensorFlow {__import__('tensorflow').__version__}, Keras {__import__('keras').__version__},
XGBoost {__import__('xgboost').__version__}). Data: `tools/cascade/synth.py`, volumes of {synth.SHAPE[0]}x{synth.SHAPE[1]}x{synth.SHAPE[2]}
voxels (z, y, x) at {synth.SPACING} mm, int16 HU. Glue semantics: `docs/CASCADE.md`; reference runner:
`tools/cascade/reference.py`.

| set | seeds | content |
|---|---|---|
| A: networks | 1000.. | {cnt(labA)} |
| B: meta-classifier | 20000.. | {cnt(labB)} |
| C: held out | 30000.. | {cnt(labC)} |

## Metrics on the held-out set C (the full cascade, each stage fed by the previous one)

| stage | metric | value |
|---|---|---|
{t}

A candidate, detection or box counts as a hit on a true nodule when its centre voxel lies in the nodule's mask or
within (diameter / 2 + 2 mm) of its centre; the box IoU compares the predicted box with the nodule mask's bounding
box in the candidate's slice. On the meta-classifier's own training set B the final AUC is {mB['final_auc']:.3f}
(sex {mB['sex_auc']:.3f}, FP {mB['fp_auc']:.3f}, malignancy {mB['malignancy_auc']:.3f}).

XGBoost feature importance (gain): {gain}.

## Models

| file | Keras name | parameters | size |
|---|---|---|---|
{sizes()}

## Time

| step | wall s | CPU s |
|---|---|---|
{tim}

Total: {wall:.0f} s wall, {cpu:.0f} s CPU (process time, all threads). The volumes are cached in `--cache`
(a "data" step of about a second is a cache hit); generating them costs about 0.05 s of CPU per volume,
so about 40 s for the {len(labA) + len(labB) + len(labC)} volumes of a fresh run.
"""
    with open(os.path.join(a.out, "TRAINING.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
