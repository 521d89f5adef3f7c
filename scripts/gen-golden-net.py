#!/usr/bin/env python3
"""Regenerate host/tests/golden/net/: reference outputs of timm's EfficientNet layers.

The burn network in host/src/model/net/ is checked against timm 1.0.31 / torch 2.15 (CPU):
each case builds the timm module, fills every parameter and BatchNorm buffer with the
deterministic pattern below (which the Rust test side recomputes, so no weights are stored),
runs a fixed input and writes the expected output.

Pattern, for the p-th tensor of `state_dict()` (num_batches_tracked skipped), with s in
[-1, 1) a 32-bit integer hash of (p, i) over its flat index i in PyTorch layout (`hash_unit`,
exact integer arithmetic, so Rust reproduces it bit for bit; float64, then rounded to float32):

    conv / linear weight   s · sqrt(6 / fan_in)         fan_in = numel / shape[0] (He uniform)
    conv / linear bias     0.1 · s
    BN weight (gamma)      1 + 0.2 · s
    BN bias (beta)         0.1 · s
    BN running_mean        0.1 · s
    BN running_var         0.5 + 0.25 · (s + 1)    (in [0.5, 1): keeps B0 input-dependent)

Inputs: x[i] = sin(0.11·i) + 0.5·cos(0.023·i) over the flat NCHW index, rounded to float32.

The references are computed in float64 (from those float32 weights and inputs): on the whole
Lite0, torch's own float32 forward is 4e-4 away from it, so a float32 reference would measure
torch's rounding as much as ours.

Run: /work/.venv-timm/bin/python scripts/gen-golden-net.py
"""
import json
import math
from functools import partial
from pathlib import Path

import timm
import torch
from timm.layers import create_conv2d
from timm.models._efficientnet_blocks import InvertedResidual, SqueezeExcite

OUT = Path(__file__).resolve().parent.parent / "host" / "tests" / "golden" / "net"


def hash_unit(numel, p):
    """Uniform values in [-1, 1): a 32-bit integer mix of (p, i), i = 0..numel."""
    m = 0xFFFFFFFF
    x = (torch.arange(numel, dtype=torch.int64) * 2654435761 + p * 40503 + 12345) & m
    for _ in range(2):
        x = x ^ (x >> 16)
        x = (x * 0x045D9F3B) & m
    x = x ^ (x >> 16)
    return x.to(torch.float64) / 2.0**31 - 1.0


def fill(module):
    """Fill `module`'s state in state_dict order with the documented pattern; return the
    shapes filled, in order."""
    kinds = {}
    for name, sub in module.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(sub, torch.nn.BatchNorm2d):
            for k in ("weight", "bias", "running_mean", "running_var"):
                kinds[prefix + k] = "bn_" + k
        elif isinstance(sub, (torch.nn.Conv2d, torch.nn.Linear)):
            kinds[prefix + "weight"] = "weight"
            if sub.bias is not None:
                kinds[prefix + "bias"] = "bias"
    state = module.state_dict()
    p = 0
    shapes = []
    with torch.no_grad():
        for name, t in state.items():
            if name.endswith("num_batches_tracked"):
                continue
            s = hash_unit(t.numel(), p)
            kind = kinds[name]
            if kind == "weight":
                v = s * math.sqrt(6.0 / (t.numel() / t.shape[0]))
            elif kind in ("bias", "bn_bias", "bn_running_mean"):
                v = 0.1 * s
            elif kind == "bn_weight":
                v = 1.0 + 0.2 * s
            elif kind == "bn_running_var":
                v = 0.5 + 0.25 * (s + 1.0)
            else:
                raise ValueError(name)
            t.copy_(v.to(torch.float32).reshape(t.shape))
            shapes.append(list(t.shape))
            p += 1
    return shapes


def make_input(shape):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    x = torch.sin(0.11 * i) + 0.5 * torch.cos(0.023 * i)
    return x.to(torch.float32).reshape(shape)


def tensor_json(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.flatten().tolist()]}


def write(case, meta, **tensors):
    d = OUT / case
    d.mkdir(parents=True, exist_ok=True)
    (d / "case.json").write_text(json.dumps(meta) + "\n")
    for name, t in tensors.items():
        (d / f"{name}.json").write_text(json.dumps(tensor_json(t)) + "\n")
    print(case, len(meta["shapes"]), "tensors", {k: list(v.shape) for k, v in tensors.items()})


def bn(**kw):
    return partial(torch.nn.BatchNorm2d, eps=1e-3, momentum=0.01, **kw)


def stem_same():
    # TF "SAME" stem: 3×3 stride 2 on an odd size (17) and an even size (16): pad 1/1 and 0/1.
    conv = create_conv2d(3, 8, 3, stride=2, padding="same", bias=False)
    shapes = fill(conv)
    conv.double()
    x = make_input([2, 3, 17, 16]).double()
    y = conv(x)
    write("stem_same", {"input": [2, 3, 17, 16], "shapes": shapes}, expected=y)


def ir_k5_s2_se():
    # One B-family block: ir k5 s2 e6, 24 → 40, SE 6 channels (a quarter of the input), SiLU.
    block = InvertedResidual(
        24, 40, dw_kernel_size=5, stride=2, pad_type="same", exp_ratio=6.0,
        act_layer=torch.nn.SiLU, norm_layer=bn(),
        se_layer=partial(SqueezeExcite, rd_channels=6, act_layer=torch.nn.SiLU))
    shapes = fill(block)
    block.double().eval()
    x = make_input([2, 24, 15, 16]).double()
    y = block(x)
    write("ir_k5_s2_se", {"input": [2, 24, 15, 16], "shapes": shapes}, expected=y)


def lite0_64():
    # Whole Lite0, 5 classes, 64×64, batch 2: eval (running stats) and train (batch stats,
    # no dropout or drop path), with the stem BN's running mean after the train step.
    m = timm.create_model("tf_efficientnet_lite0", num_classes=5, drop_rate=0.0,
                          drop_path_rate=0.0)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = 0.01
    shapes = fill(m)
    m.double()
    x = make_input([2, 3, 64, 64]).double()
    m.eval()
    with torch.no_grad():
        features = m.forward_features(x)
        logits = m(x)
    m.train()
    with torch.no_grad():
        train_logits = m(x)
    write("lite0_64", {"input": [2, 3, 64, 64], "shapes": shapes},
          features=features, logits=logits, train_logits=train_logits,
          stem_running_mean=m.bn1.running_mean, stem_running_var=m.bn1.running_var)


def b0_64():
    # Whole B0 (SE, SiLU), 3 classes, 64×64, batch 2, eval.
    m = timm.create_model("tf_efficientnet_b0", num_classes=3, drop_rate=0.0,
                          drop_path_rate=0.0)
    shapes = fill(m)
    m.double().eval()
    x = make_input([2, 3, 64, 64]).double()
    with torch.no_grad():
        logits = m(x)
    write("b0_64", {"input": [2, 3, 64, 64], "shapes": shapes}, logits=logits)


if __name__ == "__main__":
    print("timm", timm.__version__, "torch", torch.__version__)
    torch.manual_seed(0)
    stem_same()
    ir_k5_s2_se()
    lite0_64()
    b0_64()
