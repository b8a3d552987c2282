"""Bundle size and largest output change of float16 / uint8 bundles against float32, on the benchmark models.

    python3 tools/bench/compare_tf.py          # first: writes bench-models/<name>.h5 and <name>.input.npy
    python3 tools/bench/quantization.py [--kedge .build/release/kedge] [--out bench-models]

Prints a Markdown table for BENCHMARKS.md. The reference is Kedge's own float32 bundle, whose parity with Keras
is tested separately, so the column is the change that quantization alone makes.
"""
import argparse
import json
import os
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = ["conv2d_net", "conv3d_net", "res3d", "resnet18", "mobilenetv2"]


def bundle_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kedge", default=os.path.join(ROOT, ".build", "release", "kedge"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-models"))
    a = ap.parse_args()
    print("| model | float32 bundle | float16 bundle | uint8 bundle | max abs change float16 | max abs change uint8 | output range |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in MODELS:
        h5 = os.path.join(a.out, f"{name}.h5")
        x = os.path.join(a.out, f"{name}.input.npy")
        res = {}
        for q in ["float32", "float16", "uint8"]:
            d = os.path.join(a.out, f"{name}.{q}.bundle")
            subprocess.run([a.kedge, "convert", h5, "-o", d, "--quantize", q], check=True, capture_output=True)
            meta = json.load(open(os.path.join(d, "model_metadata.json")))
            inp, out = meta["inputs"][0]["name"], meta["outputs"][0]["name"]
            p = os.path.join(a.out, f"{name}.{q}.pred")
            subprocess.run([a.kedge, "predict", d, "--input", f"{inp}={x}", "--output-dir", p], check=True,
                           capture_output=True)
            res[q] = (bundle_size(d), np.load(os.path.join(p, out + ".npy")))
        ref = res["float32"][1]
        d16 = float(np.max(np.abs(res["float16"][1] - ref)))
        d8 = float(np.max(np.abs(res["uint8"][1] - ref)))
        mb = lambda b: f"{b / 1e6:.2f} MB"
        print(f"| {name} | {mb(res['float32'][0])} | {mb(res['float16'][0])} | {mb(res['uint8'][0])} | "
              f"{d16:.1e} | {d8:.1e} | [{ref.min():.3g}, {ref.max():.3g}] |")


if __name__ == "__main__":
    main()
