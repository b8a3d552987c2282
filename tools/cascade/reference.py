"""Runs the lung-CT cascade described by cascade.json with Keras and XGBoost on one volume: the reference that
the Swift runtime (KedgeCore) must match within 1e-4 on the final probability.

    python3 tools/cascade/reference.py models/cascade/demo_volume.npy --json
    python3 tools/cascade/reference.py vol.npy --out result.json --heatmap heat.npy

The volume is a (z, y, x) .npy of Hounsfield units, int16 or float32, of the shape cascade.json's "input" gives.
Every stage's output is reported: the sex probability, a summary of the ROI heatmap (the whole heatmap with
--heatmap), every candidate with its false-positive logit, every kept nodule with its box and malignancy, the
feature vector and the final probability.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_CONFIG = os.path.join(ROOT, "models", "cascade", "cascade.json")


def load_cascade(config_path=DEFAULT_CONFIG, meta_format="json"):
    """The glue.Cascade for a cascade.json, with its Keras models and XGBoost booster loaded from its folder."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import xgboost as xgb

    with open(config_path) as f:
        cfg = json.load(f)
    base = os.path.dirname(os.path.abspath(config_path))
    nets = {}
    for name, spec in cfg["models"].items():
        if spec["format"] != "keras-h5":
            continue
        m = keras.models.load_model(os.path.join(base, spec["file"]), compile=False)
        nets[name] = (lambda x, m=m: np.asarray(m.predict_on_batch(np.ascontiguousarray(x, np.float32))))
    spec = cfg["models"]["meta"]
    booster = xgb.Booster()
    booster.load_model(os.path.join(base, spec["file"] if meta_format == "json" else spec["ubj"]))

    def meta(v):
        return booster.predict(xgb.DMatrix(np.asarray(v, np.float32), feature_names=cfg["features"]))

    return glue.Cascade(cfg, nets, meta)


def report(res):
    """The JSON-ready per-stage report of one cascade run."""
    return {
        "sex": {"male_prob": res["sex_male_prob"]},
        "roi": {"heatmap_sum": res["heatmap"]["sum"], "heatmap_max": res["heatmap"]["max"],
                "above_threshold": res["heatmap"]["above_threshold"]},
        "candidates": [dict(index=i, **c) for i, c in enumerate(res["candidates"])],
        "nodules": res["nodules"],
        "features": res["features"],
        "feature_vector": res["feature_vector"],
        "probability": res["probability"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("volume", help=".npy (z, y, x) in HU, int16 or float32")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--json", action="store_true", help="print the whole report as JSON (default: a short summary)")
    ap.add_argument("--out", help="write the JSON report to this file")
    ap.add_argument("--heatmap", help="write the ROI heatmap (z, y, x) float32 to this .npy")
    ap.add_argument("--meta-format", choices=["json", "ubj"], default="json", help="which XGBoost file to load")
    a = ap.parse_args()
    vol = np.load(a.volume)
    cascade = load_cascade(a.config, a.meta_format)
    res = cascade.run(vol, keep_heatmap=bool(a.heatmap))
    if a.heatmap:
        np.save(a.heatmap, res["_heat"])
    rep = dict(volume=os.path.basename(a.volume), **report(res))
    text = json.dumps(rep, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    if a.json:
        print(text)
    else:
        print("sex P(male) %.4f, %d candidates, %d nodules, cancer probability %.6f" % (
            res["sex_male_prob"], len(res["candidates"]), len(res["nodules"]), res["probability"]))
        for n in res["nodules"]:
            b = n["box"]
            print("  nodule at z %d y %.1f x %.1f, %.1f mm, FP logit %.3f, malignancy %.4f" % (
                b["z"], b["cy"], b["cx"], b["diameter_mm"], n["fp_logit"], n["malignancy"]))


if __name__ == "__main__":
    main()
