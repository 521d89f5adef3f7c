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

Usage: python make_peer_onnx.py OUT_DIR
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import tf2onnx  # noqa: E402


def randomize(model, rng):
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


def main(out_dir):
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

    stem_input = np.ascontiguousarray((x / np.float32(255.0)).transpose(0, 3, 1, 2), "<f4")
    stem_input.tofile(os.path.join(out_dir, "keras-b0.input.f32"))
    with open(os.path.join(out_dir, "keras-b0.json"), "w") as f:
        json.dump({
            "input_shape": list(stem_input.shape),
            "logits": logits.tolist(),
            "keras_logits": keras_logits.tolist(),
            "keras_vs_ort": diff,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "tf2onnx": tf2onnx.__version__, "onnxruntime": ort.__version__},
        }, f, indent=1)
    print(f"peer-onnx: keras-b0.onnx, logits up to {scale:.3g}, Keras vs onnxruntime {diff:.2e}")


if __name__ == "__main__":
    main(sys.argv[1])
