"""Peer-tool ONNX exports for fovea's structural weight import (host/src/model/import/).

Keras: keras.applications.EfficientNetB0 (weights=None: no download), 5 classes, no softmax,
every BatchNorm given random statistics and every bias random values (so a fold that drops or
misplaces one shows), exported by tf2onnx at opset 13. Written to OUT_DIR:

  keras-b0.onnx        the export
  keras-b0.input.f32   little-endian float32 [2, 3, 224, 224]: what reaches the stem inside
                       the Keras graph (x / 255; weights=None leaves the Normalization layer
                       at mean 0, variance 1), channels first, the layout fovea's network takes
  keras-b0.json        {"input_shape", "logits": onnxruntime on the export for the raw x,
                        "keras_logits": Keras itself, "keras_vs_ort": their max |difference|}

timm (with --timm, in a venv holding torch and timm): efficientnet_b0 (symmetric padding) and
tf_efficientnet_b0 (TF "SAME" padding computed from the input shape at run time), 5 classes,
random BatchNorm statistics, exported by torch.onnx.export (TorchScript exporter, opset 13);
the tf_ one is then saved by onnxruntime at ORT_ENABLE_BASIC, which folds the padding
arithmetic to constants (what the import's error message tells a user to do):

  timm-b0.onnx, timm-tf-b0.onnx      the exports
  timm-*.input.f32, timm-*.json      the input x [2, 3, 224, 224] (timm's graph starts at the
                                     stem) and onnxruntime's logits, as for Keras

Usage: python make_peer_onnx.py OUT_DIR
       python make_peer_onnx.py --timm OUT_DIR
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402


def randomize(model, rng):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mu, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, g.shape).astype("f4"),
                rng.normal(0.0, 0.1, b.shape).astype("f4"),
                rng.normal(0.0, 0.1, mu.shape).astype("f4"),
                rng.uniform(0.5, 1.5, var.shape).astype("f4"),
            ])
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            w, b = layer.get_weights()
            layer.set_weights([w, rng.normal(0.0, 0.1, b.shape).astype("f4")])


def write_case(out_dir, stem, x_nchw, logits, extra):
    np.ascontiguousarray(x_nchw, "<f4").tofile(os.path.join(out_dir, f"{stem}.input.f32"))
    with open(os.path.join(out_dir, f"{stem}.json"), "w") as f:
        json.dump({"input_shape": list(x_nchw.shape), "logits": logits.tolist(), **extra}, f,
                  indent=1)


def timm_exports(out_dir):
    import timm
    import torch

    os.makedirs(out_dir, exist_ok=True)
    for name, stem in [("efficientnet_b0", "timm-b0"), ("tf_efficientnet_b0", "timm-tf-b0")]:
        model = timm.create_model(name, pretrained=False, num_classes=5).eval()
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.normal_(0.0, 0.1, generator=g)
                    m.running_mean.normal_(0.0, 0.1, generator=g)
                    m.running_var.uniform_(0.5, 1.5, generator=g)
            x = torch.rand(2, 3, 224, 224, generator=g)
            torch_logits = model(x).numpy()
        path = os.path.join(out_dir, f"{stem}.onnx")
        raw = path + ".raw"
        torch.onnx.export(model, x, raw, opset_version=13, dynamo=False,
                          input_names=["input"])
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = path
        ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])
        os.remove(raw)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        logits = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        diff = float(np.abs(torch_logits - logits).max())
        scale = float(np.abs(logits).max())
        if not diff <= 1e-3 * max(scale, 1.0):
            sys.exit(f"{name}: export disagrees with timm: max |diff| {diff} of {scale}")
        write_case(out_dir, stem, x.numpy(), logits, {
            "timm_vs_ort": diff,
            "versions": {"torch": torch.__version__, "timm": timm.__version__,
                         "onnxruntime": ort.__version__},
        })
        print(f"peer-onnx: {stem}.onnx, logits up to {scale:.3g}, timm vs onnxruntime {diff:.2e}")


def main(out_dir):
    import keras
    import tensorflow as tf
    import tf2onnx

    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = keras.applications.EfficientNetB0(
        weights=None, classes=5, classifier_activation=None, input_shape=(224, 224, 3)
    )
    randomize(model, rng)
    path = os.path.join(out_dir, "keras-b0.onnx")
    spec = (tf.TensorSpec((None, 224, 224, 3), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=path)

    x = rng.uniform(0.0, 255.0, (2, 224, 224, 3)).astype("f4")
    keras_logits = np.asarray(model(x, training=False))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    diff = float(np.abs(keras_logits - logits).max())
    scale = float(np.abs(logits).max())
    if not diff <= 1e-3 * max(scale, 1.0):
        sys.exit(f"tf2onnx export disagrees with Keras: max |diff| {diff} of {scale}")

    stem_input = (x / np.float32(255.0)).transpose(0, 3, 1, 2)
    write_case(out_dir, "keras-b0", stem_input, logits, {
        "keras_logits": keras_logits.tolist(),
        "keras_vs_ort": diff,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "tf2onnx": tf2onnx.__version__, "onnxruntime": ort.__version__},
    })
    print(f"peer-onnx: keras-b0.onnx, logits up to {scale:.3g}, Keras vs onnxruntime {diff:.2e}")


if __name__ == "__main__":
    if sys.argv[1] == "--timm":
        timm_exports(sys.argv[2])
    else:
        main(sys.argv[1])
