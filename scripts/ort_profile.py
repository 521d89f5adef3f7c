"""onnxruntime's own per-node times for one ONNX model, beside `edge/examples/node_profile.rs`
(tract with fovea's ops) on the same file: batch 1, 224 px, a constant input, CPU provider.

    ~/.cache/fovea/venv-onnx/bin/python scripts/ort_profile.py MODEL.onnx [THREADS] [TOP] [RUNS]

Prints the sum of the per-node medians (runs after the first 3) by operator, then the TOP
(default 30) slowest nodes with their medians in µs. onnxruntime names a node after the ONNX
node it came from (`blocks.1.depthwise.conv_nchwc`: its NCHWc form), so the rows line up with
node_profile's. Needs onnxruntime (scripts/check-onnx.sh installs it in that venv).
"""
import collections
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort


def main():
    path = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    with tempfile.TemporaryDirectory() as profile_dir:  # the JSON trace, gone after reading
        so.profile_file_prefix = os.path.join(profile_dir, "ort")
        session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        x = np.full((1, 3, 224, 224), 0.25, np.float32)
        for _ in range(runs + 3):
            session.run(None, {inp.name: x})
        with open(session.end_profiling()) as f:
            events = json.load(f)
    per_node = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["name"][: -len("_kernel_time")], e["args"]["op_name"])].append(e["dur"])
    by_op = collections.defaultdict(float)
    nodes = []
    for (name, op), durs in per_node.items():
        durs = sorted(durs[3:])  # the first runs warm caches and the arena
        median = durs[len(durs) // 2]
        by_op[op] += median
        nodes.append((median, name, op))
    print(f"{path}: {threads} thread(s), sum of node medians {sum(by_op.values()) / 1e3:.2f} ms\n")
    print("| operator | ms |\n|---|---|")
    for op, us in sorted(by_op.items(), key=lambda t: -t[1]):
        print(f"| {op} | {us / 1e3:.3f} |")
    print("\nslowest nodes:")
    for median, name, op in sorted(nodes, reverse=True)[:top]:
        print(f"{median:10.1f} µs  {name} ({op})")


if __name__ == "__main__":
    main()
