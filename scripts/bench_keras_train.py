#!/usr/bin/env python3
"""Keras side of scripts/bench-train-vs-keras.sh: time training steps of Keras EfficientNetB0.

Mirrors `host bench train`: random inputs, 5 classes, sparse categorical cross-entropy, AdamW,
one untimed warm-up step, then N timed steps; reports the median step time. Weights are random
(weights=None), so nothing is downloaded. Prints one JSON object with the same keys as
`host bench train --json`, plus `model` and `tensorflow`.

Modes:
  full   : EfficientNetB0(include_top=True, weights=None, classes=5), every layer trainable.
  frozen : EfficientNetB0(include_top=False, weights=None, pooling="avg") with trainable=False
           (stem, MBConv blocks and the 1x1 head conv frozen) + a new Dense(5) head — the closest
           Keras peer of fovea's `--variant lite0 --freeze-backbone` (Keras has no EfficientNet-Lite).
"""
import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402


def build(mode: str, img: int, classes: int) -> keras.Model:
    shape = (img, img, 3)
    if mode == "full":
        return keras.applications.EfficientNetB0(
            include_top=True, weights=None, input_shape=shape, classes=classes,
            classifier_activation=None,
        )
    backbone = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=shape, pooling="avg"
    )
    backbone.trainable = False
    inputs = keras.Input(shape=shape)
    # training=False keeps the frozen BatchNorm layers in inference mode, as in Keras's
    # transfer-learning guide.
    features = backbone(inputs, training=False)
    features = keras.layers.Dropout(0.2)(features)
    outputs = keras.layers.Dense(classes)(features)
    return keras.Model(inputs, outputs)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["full", "frozen"], required=True)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()

    keras.utils.set_random_seed(0)
    model = build(a.mode, a.img_size, a.classes)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch_size, a.img_size, a.img_size, 3), dtype=np.float32)
    y = (np.arange(a.batch_size) % a.classes).astype(np.int64)
    x, y = tf.constant(x), tf.constant(y)

    times = []
    for step in range(a.steps + 1):  # step 0: warm-up (graph tracing), untimed
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        float(np.asarray(loss).ravel()[0])  # make sure the step finished
        if step > 0:
            times.append(time.perf_counter() - start)

    # Same pick as `host bench train`: sorted[len // 2] (the median for odd step counts).
    median = sorted(times)[len(times) // 2]
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    report = {
        "model": "keras.applications.EfficientNetB0"
        + (" (full training)" if a.mode == "full" else
           " (include_top=False, trainable=False backbone + Dense head)"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "img_size": a.img_size,
        "batch_size": a.batch_size,
        "freeze_backbone": a.mode == "frozen",
        "steps": a.steps,
        "trainable_params": trainable,
        "median_step_s": median,
        "images_per_second": a.batch_size / median,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        # Keras 3's default jit_compile="auto" resolves to XLA on the TensorFlow backend.
        "jit_compile": bool(getattr(model, "jit_compile", False)),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
