"""onnxruntime's time for one 1×1 conv alone, beside `edge/examples/pointwise_layers.rs` (fovea's
and tract's): a one-node ONNX model (Conv with bias, batch 1, random weights), CPU provider, one
thread, every graph optimization on.

    ~/.cache/fovea/venv-onnx/bin/python scripts/ort_pointwise.py C_IN C_OUT SIDE [RUNS] [FLUSH]

Prints the minimum and median µs over RUNS (default 60) session runs, each timed with
`perf_counter` (Python's call overhead included). FLUSH (bytes, default 0) is written before
each run, as `pointwise_layers`' `FLUSH=BYTES`, so that the weights come from beyond the core's
caches. Needs onnxruntime and onnx (scripts/check-onnx.sh installs them in that venv).
"""
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def main():
    ci, co, side = (int(a) for a in sys.argv[1:4])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    flush = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    rng = np.random.default_rng(0)
    w = rng.standard_normal((co, ci, 1, 1)).astype(np.float32) * 0.05
    b = rng.standard_normal(co).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"])],
        "pointwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ci, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, co, side, side])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    x = rng.standard_normal((1, ci, side, side)).astype(np.float32)
    junk = np.ones(flush // 4, np.float32)
    times = []
    for _ in range(runs):
        if flush:
            junk += 1.0
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    print(
        f"onnxruntime {ci} → {co} on {side}×{side}, flush {flush} B: "
        f"min {times[0]:.0f} µs, median {times[len(times) // 2]:.0f}"
    )


if __name__ == "__main__":
    main()
