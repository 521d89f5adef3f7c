"""Write the integer-kernel (QOperator) int8 forms of an fp32 ONNX model, for timing only.

Usage: quant-candidates.py MODEL.onnx OUTDIR   (python with onnx + onnxruntime: ~/.cache/fovea/venv-onnx)

`host quantize` writes the two forms fovea ships (`--mode weights`, `--mode compute` = QDQ);
this script writes the QLinearConv forms that tract runs with its integer kernels, to show why
they are not shipped (scripts/bench-edge.sh times all of them):
  qop.onnx          onnxruntime static QOperator: QLinearConv everywhere (depthwise included)
  qop-dwfloat.onnx  QOperator with depthwise convolutions (group > 1) left in float
Calibration here is 8 pseudo-random N(0,1) inputs: these files are for SPEED only.
"""
import os
import sys

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


class Reader(CalibrationDataReader):
    def __init__(self, name, shape):
        rng = np.random.default_rng(0)
        self.data = iter([{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(8)])

    def get_next(self):
        return next(self.data, None)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    model = onnx.load(src)
    pre = os.path.join(out, "pre.onnx")
    quant_pre_process(src, pre, skip_symbolic_shape=True)
    inp = model.graph.input[0]
    dims = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    depthwise = [n.name for n in model.graph.node if n.op_type == "Conv"
                 and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    for name, fmt, exclude in [("qop", QuantFormat.QOperator, []),
                               ("qop-dwfloat", QuantFormat.QOperator, depthwise)]:
        quantize_static(pre, os.path.join(out, name + ".onnx"), Reader(inp.name, dims),
                        quant_format=fmt, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                        # tract has no com.microsoft QLinearAdd/QLinearSigmoid/QGemm: integer convs only
                        op_types_to_quantize=["Conv", "MatMul"])
        # quant_pre_process leaves value_info with a symbolic batch that tract cannot unify with 1
        q = onnx.load(os.path.join(out, name + ".onnx"))
        del q.graph.value_info[:]
        onnx.save(q, os.path.join(out, name + ".onnx"))
    os.remove(pre)
    for f in sorted(os.listdir(out)):
        print(f"{f}: {os.path.getsize(os.path.join(out, f))} bytes")


if __name__ == "__main__":
    main()
