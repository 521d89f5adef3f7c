"""Checks fovea ONNX exports with the reference tools (called by scripts/check-onnx.sh).

For each MODEL.onnx REF_DIR pair: onnx.checker.check_model(full_check=True) (which also runs
ONNX shape inference), the graph contract (input "input" [N, 3, S, S], output "logits"; opset
13; metadata keys), then onnxruntime on REF_DIR/reference.json's inputs, whose logits must
match the host (burn) model's within TOL. Exit status 1 on any failure.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-4
KEYS = {"variant", "head", "task", "class_names", "preprocess", "preprocess_sha256", "fovea_version"}


def check(model_path, ref_dir):
    m = onnx.load(model_path)
    onnx.checker.check_model(m, full_check=True)
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [13], m.opset_import
    meta = {p.key: p.value for p in m.metadata_props}
    assert KEYS <= meta.keys(), f"metadata keys {sorted(meta)}"
    (inp,) = m.graph.input
    assert inp.name == "input", inp.name
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]][0] == 3, dims
    assert m.graph.output[0].name == "logits"

    with open(f"{ref_dir}/reference.json") as f:
        ref = json.load(f)
    x = np.asarray(ref["input"], dtype=np.float32).reshape(ref["input_shape"])
    want = np.asarray(ref["logits"], dtype=np.float32).reshape(ref["logits_shape"])
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x})[0]
    diff = float(np.abs(got - want).max())
    ok = got.shape == want.shape and diff <= TOL
    print(
        f"{model_path}: checker ok, {meta['variant']} {meta['head']} head, "
        f"{x.shape[0]} images, max |onnxruntime - host| = {diff:.3e} "
        f"(max |logit| {float(np.abs(want).max()):.3g}) -> {'ok' if ok else 'FAIL'}"
    )
    return ok


def main(args):
    if len(args) % 2:
        sys.exit("usage: check_onnx.py MODEL.onnx REF_DIR [MODEL.onnx REF_DIR ...]")
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    results = [check(args[i], args[i + 1]) for i in range(0, len(args), 2)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
