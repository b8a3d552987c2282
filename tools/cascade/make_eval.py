"""Writes the held-out evaluation fixtures of the lung-CT cascade and the demo volume:

- Tests/Fixtures/cascade/vol_XX.npy: N synthetic volumes (int16 HU), half with cancer, seeds 50000 + i, never
  seen in training (train.py uses 1000.., 20000.., 30000..);
- Tests/Fixtures/cascade/reference.json: per volume its labels, every stage's reference output (tools/cascade/
  reference.py) and the final probability; plus the ROC AUC over the set;
- models/cascade/demo_volume.npy (+ training/demo_volume.json): one volume for the web page, with a malignant and a benign
  nodule that the cascade finds.

    TF_ENABLE_ONEDNN_OPTS=0 python3 tools/cascade/make_eval.py
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
import synth  # noqa: E402
from train import auc  # noqa: E402

ROOT = reference.ROOT


def note_in_training_md(a, out, entries):
    """Adds (or replaces) the fixture section of TRAINING.md next to cascade.json."""
    path = os.path.join(os.path.dirname(os.path.abspath(a.config)), "TRAINING.md")
    if not os.path.exists(path):
        return
    text = open(path).read()
    head = "## Held-out fixtures (Tests/Fixtures/cascade)"
    text = text.split(head)[0].rstrip() + "\n\n"
    size = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    pc = out["perturbation_check"]
    text += head + "\n\n" + (
        "`%s` wrote %d more held-out volumes (seeds 50000..%d, half with cancer; %.1f MB with reference.json) and "
        "their reference outputs. Final ROC AUC over them: **%.3f**. With every network output multiplied by "
        "1 + U(-1e-6, 1e-6), as a second runtime's rounding would, the final probability moved by at most %.1e "
        "(%d volumes beyond 1e-4).\n" % (out["made_by"], len(entries), 50000 + len(entries) - 1, size / 1e6,
                                         out["auc"], pc["max_abs_delta"], pc["volumes_over_tolerance"]))
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=reference.DEFAULT_CONFIG)
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "cascade"))
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--demo", default=os.path.join(ROOT, "models", "cascade", "demo_volume.npy"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cascade = reference.load_cascade(a.config)
    cascade_ubj = reference.load_cascade(a.config, "ubj")
    # the same cascade with every network output perturbed by ~1e-6 (relative), as a second runtime's float
    # differences would: shows how far the glue's discrete steps amplify them
    noise_rng = np.random.default_rng(0)

    def perturbed(f):
        def g(x):
            y = np.asarray(f(x), np.float32)
            return (y * (1.0 + noise_rng.uniform(-1e-6, 1e-6, y.shape))).astype(np.float32)
        return g

    import glue
    cascade_noisy = glue.Cascade(cascade.cfg, {k: perturbed(f) for k, f in cascade.nets.items()}, cascade.meta)
    deltas = []
    rel_config = os.path.relpath(os.path.abspath(a.config), ROOT)
    entries, ys, ps = [], [], []
    for i in range(a.count):
        seed = 50000 + i
        vol, label, _ = synth.generate(seed, force_cancer=(i % 2 == 0))
        name = "vol_%02d.npy" % i
        np.save(os.path.join(a.out, name), vol)
        res = cascade.run(vol)
        p_ubj = cascade_ubj.run(vol)["probability"]
        assert abs(p_ubj - res["probability"]) < 1e-6, "meta.json and meta.ubj disagree"
        deltas.append(abs(cascade_noisy.run(vol)["probability"] - res["probability"]))
        rep = reference.report(res)
        entries.append({"file": name, "seed": seed, "label": label, "result": rep})
        ys.append(label["cancer"])
        ps.append(res["probability"])
        print("%s sex %s cancer %d nodules %d -> candidates %d, kept %d, p %.5f" % (
            name, label["sex"], label["cancer"], len(label["nodules"]), len(rep["candidates"]), len(rep["nodules"]),
            res["probability"]), flush=True)
    out = {
        "description": "Held-out synthetic volumes of the lung-CT cascade with the outputs of tools/cascade/"
                       "reference.py (Keras + XGBoost); the Swift cascade must match 'probability' within tolerance.",
        "cascade": rel_config,
        "made_by": "TF_ENABLE_ONEDNN_OPTS=0 python3 tools/cascade/make_eval.py",
        "tolerance": 1e-4,
        "shape": list(synth.SHAPE),
        "spacing_mm": list(synth.SPACING),
        "dtype": "int16 HU",
        "auc": auc(ys, ps),
        "perturbation_check": {
            "what": "max |probability change| when every network output is multiplied by 1 + U(-1e-6, 1e-6)",
            "max_abs_delta": max(deltas),
            "volumes_over_tolerance": int(sum(d > 1e-4 for d in deltas)),
        },
        "volumes": entries,
    }
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("AUC over %d volumes: %.4f; perturbation check: max delta %.2e" % (len(ys), out["auc"], max(deltas)))
    note_in_training_md(a, out, entries)

    # demo: a volume with a malignant and a benign nodule that the cascade both finds
    for seed in range(70000, 70400):
        vol, label, extras = synth.generate(seed, force_cancer=True)
        nods = label["nodules"]
        if len(nods) < 2 or all(n["malignant"] for n in nods):
            continue
        res = cascade.run(vol)
        hits = set()
        for n in res["nodules"]:
            k = int(extras["nodule_map"][tuple(n["center"])])
            if k > 0:
                hits.add(k - 1)
        if len(hits) == len(nods) and res["probability"] > 0.6 and len(res["nodules"]) == len(nods):
            np.save(a.demo, vol)
            label_path = os.path.join(os.path.dirname(a.demo), "training", os.path.basename(a.demo)[:-4] + ".json")
            os.makedirs(os.path.dirname(label_path), exist_ok=True)
            with open(label_path, "w") as f:
                json.dump({"seed": seed, "label": label, "result": reference.report(res)}, f, indent=1)
                f.write("\n")
            print("demo volume: seed %d, %d nodules, p %.4f -> %s" % (seed, len(nods), res["probability"], a.demo))
            break
    else:
        print("no demo volume found")


if __name__ == "__main__":
    main()
