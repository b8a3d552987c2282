#!/usr/bin/env python3
"""Replays a WebGPU trace recorded in Chromium (web/gpu/trace.js, tools/bench/gpu_trace.mjs) with the `wgpu` package
(wgpu-native over Vulkan/Metal/D3D12), to time the executor's WGSL, dispatched exactly as the browser dispatches it,
on a machine with a real GPU and no browser.

    python3 tools/bench/gpu_replay.py TRACE_DIR/NAME [--runs 50] [--warmup 5]

NAME.json + NAME.bin come from gpu_trace.mjs. Ops before the first 'predict' phase (device, weights upload,
pipelines) run once; the 'predict' phase (input upload, command encoding, submit) is run warm-up + runs times,
each ended by reading the output back, and timed wall-clock. The output of the first replayed predict is compared
with the output Chromium computed (NAME.out.bin), so a faithful replay is checked, not assumed.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import wgpu

BUFFER_TYPES = {
    "uniform": wgpu.BufferBindingType.uniform,
    "storage": wgpu.BufferBindingType.storage,
    "read-only-storage": wgpu.BufferBindingType.read_only_storage,
}


class Replay:
    def __init__(self, trace, blob, limits):
        self.blob = blob
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        self.adapter_info = adapter.info
        wanted = {}
        for k, v in limits.items():
            key = "".join("-" + c.lower() if c.isupper() else c for c in k)
            if key in adapter.limits:
                wanted[key] = min(v, adapter.limits[key])  # the trace asked for the recording adapter's limits
        self.device = adapter.request_device_sync(required_limits=wanted)
        self.objects = {}
        self.sizes = {}
        self.encoder = None
        self.pass_ = None
        self.pending = []
        self.last_copy_src = None

    def data(self, ref):
        return self.blob[ref["at"]: ref["at"] + ref["length"]]

    def run(self, op):
        d, o, k = self.device, self.objects, op["op"]
        if k == "buffer":
            o[op["id"]] = d.create_buffer(size=op["size"], usage=op["usage"], mapped_at_creation=op["mapped"])
            self.sizes[op["id"]] = op["size"]
            if op["mapped"]:
                o[op["id"]].unmap()  # the bytes come as the 'write' ops recorded at unmap
        elif k == "write":
            d.queue.write_buffer(o[op["buffer"]], op["offset"], self.data(op["data"]))
        elif k == "shader":
            o[op["id"]] = d.create_shader_module(code=op["code"])
        elif k == "bindGroupLayout":
            o[op["id"]] = d.create_bind_group_layout(entries=[
                {"binding": e["binding"], "visibility": wgpu.ShaderStage.COMPUTE,
                 "buffer": {"type": BUFFER_TYPES[e["type"]]}} for e in op["entries"]])
        elif k == "explicitPipelineLayout":
            o[op["id"]] = d.create_pipeline_layout(bind_group_layouts=[o[g] for g in op["groups"]])
        elif k == "pipeline":
            compute = {"module": o[op["module"]], "entry_point": op["entryPoint"] or "main"}
            if op.get("constants"):
                compute["constants"] = op["constants"]
            layout = wgpu.AutoLayoutMode.auto if op["layout"] == "auto" else o[op["layout"]]
            o[op["id"]] = d.create_compute_pipeline(layout=layout, compute=compute)
        elif k == "pipelineLayout":
            o[op["id"]] = o[op["pipeline"]].get_bind_group_layout(op["group"])
        elif k == "bindGroup":
            entries = []
            for e in op["entries"]:
                size = e["size"] if e["size"] is not None else self.sizes[e["buffer"]] - e["offset"]
                entries.append({"binding": e["binding"],
                                "resource": {"buffer": o[e["buffer"]], "offset": e["offset"], "size": size}})
            o[op["id"]] = d.create_bind_group(layout=o[op["layout"]], entries=entries)
        elif k == "beginPass":
            if self.encoder is None:
                self.encoder = d.create_command_encoder()
            self.pass_ = self.encoder.begin_compute_pass()
        elif k == "setPipeline":
            self.pass_.set_pipeline(o[op["pipeline"]])
        elif k == "setBindGroup":
            self.pass_.set_bind_group(op["index"], o[op["group"]])
        elif k == "dispatch":
            self.pass_.dispatch_workgroups(op["x"], op["y"], op["z"])
        elif k == "endPass":
            self.pass_.end()
            self.pass_ = None
        elif k == "copy":
            if self.encoder is None:
                self.encoder = d.create_command_encoder()
            self.encoder.copy_buffer_to_buffer(o[op["src"]], op["srcOffset"], o[op["dst"]], op["dstOffset"], op["size"])
            self.last_copy_src = (op["src"], op["srcOffset"], op["size"])
        elif k == "clear":
            if self.encoder is None:
                self.encoder = d.create_command_encoder()
            size = op["size"] if op["size"] is not None else self.sizes[op["buffer"]] - op["offset"]
            self.encoder.clear_buffer(o[op["buffer"]], op["offset"], size)
        elif k == "finish":
            o[op["id"]] = self.encoder.finish()
            self.encoder = None
        elif k == "submit":
            d.queue.submit([o[b] for b in op["buffers"]])
        elif k in ("device", "phase"):
            pass
        else:
            raise SystemExit(f"gpu_replay: unknown trace op {k!r}")

    def sync(self):
        # Reading a buffer back waits for all work submitted before it (queue order).
        if not hasattr(self, "fence"):
            self.fence = self.device.create_buffer(size=4, usage=wgpu.BufferUsage.COPY_SRC)
        self.device.queue.read_buffer(self.fence)

    def read_output(self):
        src, offset, size = self.last_copy_src
        return np.frombuffer(self.device.queue.read_buffer(self.objects[src], offset, size), dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    trace = json.load(open(args.trace + ".json"))
    blob = open(args.trace + ".bin", "rb").read()
    ops = trace["ops"]
    limits = next((op["limits"] for op in ops if op["op"] == "device"), {})
    starts = [i for i, op in enumerate(ops) if op["op"] == "phase" and op["name"] == "predict"]
    if not starts:
        raise SystemExit("gpu_replay: the trace has no 'predict' phase")
    start = starts[-1]
    end = next((i for i in range(start + 1, len(ops)) if ops[i]["op"] == "phase"), len(ops))
    r = Replay(trace, blob, limits)
    t0 = time.perf_counter()
    for op in ops[:start]:
        if op["op"] != "phase":
            r.run(op)
    r.sync()
    setup_ms = (time.perf_counter() - t0) * 1e3
    predict = ops[start + 1:end]
    dispatches = sum(1 for op in predict if op["op"] == "dispatch")
    times = []
    first = None
    for i in range(args.warmup + args.runs):
        t = time.perf_counter()
        for op in predict:
            r.run(op)
        out = r.read_output()
        if i >= args.warmup:
            times.append((time.perf_counter() - t) * 1e3)
        if first is None:
            first = out.copy()
    result = {
        "trace": args.trace, "adapter": r.adapter_info.get("device"), "backend": r.adapter_info.get("backend_type"),
        "dispatches": dispatches, "setup_ms": round(setup_ms, 2),
        "median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3), "runs": args.runs,
    }
    try:
        flops = float(open(args.trace + ".flops").read())
        result["gflops"] = round(flops / (result["median_ms"] * 1e6), 1)
    except FileNotFoundError:
        pass
    try:
        want = np.frombuffer(open(args.trace + ".out.bin", "rb").read(), dtype=np.float32)
        if want.size == first.size:
            result["max_abs_vs_chromium"] = float(np.max(np.abs(want - first))) if want.size else 0.0
        else:
            result["max_abs_vs_chromium"] = f"size {first.size} vs {want.size}"
    except FileNotFoundError:
        pass
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
