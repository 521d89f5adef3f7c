"""Write the int8 candidate forms of an fp32 ONNX model, for timing with tract and onnxruntime.

Usage: quant-candidates.py MODEL.onnx OUTDIR   (python with onnx + onnxruntime: ~/.cache/fovea/venv-onnx)

Forms written (all per-channel int8 weights, symmetric):
  weights.onnx      int8 Conv/Gemm initializers + DequantizeLinear(axis 0); activations stay fp32
  qop.onnx          onnxruntime static QOperator: QLinearConv everywhere (depthwise included)
  qop-dwfloat.onnx  QOperator with depthwise convolutions (group > 1) left in float
  qdq.onnx          onnxruntime static QDQ (QuantizeLinear/DequantizeLinear around every Conv)
Calibration here is 8 pseudo-random N(0,1) inputs: these files are for SPEED only; the accuracy
of a form is measured by `host quantize` on a run's validation split, not here.
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


def weights_only(model):
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes = []
    for node in g.node:
        if node.op_type in ("Conv", "Gemm") and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            axis = 0
            red = tuple(range(1, w.ndim))
            if node.op_type == "Gemm":
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                axis = 0 if trans_b else 1
                red = (1 - axis,)
            scale = np.abs(w).max(axis=red) / 127.0
            scale[scale == 0] = 1.0
            shape = [1] * w.ndim
            shape[axis] = -1
            q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
            name = node.input[1]
            g.initializer.remove(inits[name])
            g.initializer.extend([
                numpy_helper.from_array(q, name + "_q"),
                numpy_helper.from_array(scale.astype(np.float32), name + "_scale"),
                numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "_zp"),
            ])
            new_nodes.append(helper.make_node(
                "DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name],
                axis=axis, name=name + "_dq"))
        new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    return model


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
    onnx.save(weights_only(onnx.load(src)), os.path.join(out, "weights.onnx"))
    pre = os.path.join(out, "pre.onnx")
    quant_pre_process(src, pre, skip_symbolic_shape=True)
    inp = model.graph.input[0]
    dims = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    depthwise = [n.name for n in model.graph.node if n.op_type == "Conv"
                 and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    for name, fmt, exclude in [("qop", QuantFormat.QOperator, []),
                               ("qop-dwfloat", QuantFormat.QOperator, depthwise),
                               ("qdq", QuantFormat.QDQ, [])]:
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
