"""Kedge native vs TensorFlow CPU (one thread, tf.function) on the shared benchmark models, same machine, same run.

    python3 tools/bench/compare_tf.py [--models conv2d_net,res3d,...] [--runs 20] [--warmup 3] [--out bench-models]

Builds the models with ../shared/bench/models.py (exactly those architectures and seeds), times TF, converts each .h5
with `kedge convert`, times `kedge bench` (release build) on the same input, checks the outputs agree, and prints a
Markdown table for BENCHMARKS.md. Needs tensorflow-cpu; run `swift build -c release --product kedge` first.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_BENCH = os.path.join(os.path.dirname(ROOT), "shared", "bench")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="conv2d_net,conv3d_net,res3d,resnet18,mobilenetv2")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-models"))
    ap.add_argument("--kedge", default=os.path.join(ROOT, ".build", "release", "kedge"))
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    sys.path.insert(0, SHARED_BENCH)
    import keras
    import models as bench

    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = bench.MODELS[name]()
        bench.randomize_batchnorm(model, np.random.default_rng(0))
        h5 = os.path.join(args.out, f"{name}.h5")
        model.save(h5)
        shape = (1,) + tuple(model.inputs[0].shape[1:])
        x = np.random.default_rng(1).uniform(-1, 1, shape).astype("float32")
        xin = os.path.join(args.out, f"{name}.input.npy")
        np.save(xin, x)

        fn = tf.function(lambda t: model(t, training=False))
        xt = tf.constant(x)
        for _ in range(args.warmup):
            ref = fn(xt).numpy()
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            ref = fn(xt).numpy()
            times.append((time.perf_counter() - t0) * 1e3)
        tf_med, tf_min = statistics.median(times), min(times)

        bundle = os.path.join(args.out, f"{name}.bundle")
        subprocess.run([args.kedge, "convert", h5, "-o", bundle], check=True, capture_output=True)
        input_name = model.inputs[0].name if hasattr(model.inputs[0], "name") else model.input_names[0]
        meta = json.load(open(os.path.join(bundle, "model_metadata.json")))
        input_name = meta["inputs"][0]["name"]
        out = subprocess.run(
            [args.kedge, "bench", bundle, "--runs", str(args.runs), "--warmup", str(args.warmup),
             "--input", f"{input_name}={xin}"], check=True, capture_output=True, text=True).stdout
        # "...: median X ms, min Y ms over ..."
        k_med = float(out.split("median ")[1].split(" ms")[0])
        k_min = float(out.split("min ")[1].split(" ms")[0])

        pred_dir = os.path.join(args.out, f"{name}.pred")
        subprocess.run([args.kedge, "predict", bundle, "--input", f"{input_name}={xin}", "--output-dir", pred_dir],
                       check=True, capture_output=True)
        got = np.load(os.path.join(pred_dir, meta["outputs"][0]["name"] + ".npy"))
        err = float(np.max(np.abs(got - ref)))
        rows.append((name, tf_med, tf_min, k_med, k_min, k_med / tf_med, err))
        print(f"{name}: tf {tf_med:.2f} ms, kedge {k_med:.2f} ms, ratio {k_med / tf_med:.2f}, max |diff| {err:.1e}",
              file=sys.stderr)

    print("| model | TF 1 thread median (min) ms | Kedge native median (min) ms | Kedge / TF | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} ({r[2]:.2f}) | {r[3]:.2f} ({r[4]:.2f}) | {r[5]:.2f} | {r[6]:.1e} |")


if __name__ == "__main__":
    main()
