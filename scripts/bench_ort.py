"""onnxruntime side of scripts/bench-edge.sh: one JSON line like `edge bench` prints.

Usage: bench_ort.py MODEL.onnx THREADS RUNS   (fresh process per call, so peak RSS is this model's)
Same fixed input as edge/src/cmd/bench.rs, batch 1, sequential execution, all graph optimizations.
"""
import json
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    path, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    inp = sess.get_inputs()[0]
    side = [d if isinstance(d, int) else 224 for d in inp.shape][2]
    c, y, x = np.meshgrid(np.arange(3), np.arange(side), np.arange(side), indexing="ij")
    img = (((c * 7919 + y * 131 + x * 17) % 255).astype(np.float32) / 127.5 - 1.0)[None]
    for _ in range(3):
        out = sess.run(None, {inp.name: img})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = sess.run(None, {inp.name: img})
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(json.dumps({
        "model": path, "runtime": "onnxruntime " + ort.__version__, "threads": threads,
        "outputs": int(out[0].size), "runs": runs, "median_ms": times[len(times) // 2],
        "min_ms": times[0], "load_ms": load_ms,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
