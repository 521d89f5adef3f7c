#!/usr/bin/env python3
"""Regenerate host/tests/golden/weights/: one tiny state dict saved three ways, and what it holds.

  legacy.pth        torch.save(..., _use_new_zipfile_serialization=False)  (the EfficientNet-Lite format)
  zip.pth           torch.save(...)                                        (PyTorch >= 1.6 default)
  tiny.safetensors  safetensors.torch.save_file(...)                       (contiguous copies)
  expected.json     name -> {dtype, shape, values (row-major, as f32)}

The dict covers what the reader must get right: f32/f16/bf16/f64/int64 storages, two tensors
sharing one storage at different offsets, a transposed (non-contiguous) view, and names that
sort differently by text and by number (blocks.2 / blocks.10).

Needs torch and safetensors (any versions that still write the legacy format):
  python3 -m venv /work/.venv-torch && /work/.venv-torch/bin/pip install torch safetensors
  /work/.venv-torch/bin/python scripts/gen-golden-weights.py
"""
import json
import os
from collections import OrderedDict

import torch
from safetensors.torch import save_file

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host", "tests", "golden", "weights")
os.makedirs(out, exist_ok=True)

torch.manual_seed(0)
base = torch.arange(10, dtype=torch.float32)
sd = OrderedDict()
sd["conv.weight"] = torch.arange(8, dtype=torch.float32).reshape(2, 1, 2, 2) / 4 - 1
sd["bn.running_var"] = torch.randn(3)
sd["bn.num_batches_tracked"] = torch.tensor(7)
sd["half"] = torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16)
sd["bf16"] = torch.tensor([1.5, -3.0, 0.1], dtype=torch.bfloat16)
sd["f64"] = torch.tensor([0.1, 2.5], dtype=torch.float64)
sd["base"] = base
sd["view"] = base[2:6]  # same storage as "base", storage offset 2
sd["transposed"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # strides (1, 3)
sd["blocks.10.w"] = torch.full((1,), 10.0)
sd["blocks.2.w"] = torch.full((1,), 2.0)

torch.save(sd, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
torch.save(sd, os.path.join(out, "zip.pth"))
save_file({k: v.contiguous().clone() for k, v in sd.items()}, os.path.join(out, "tiny.safetensors"))

expected = {
    k: {
        "dtype": str(v.dtype).removeprefix("torch."),
        "shape": list(v.shape),
        "values": [float(x) for x in v.float().flatten()],
    }
    for k, v in sd.items()
}
with open(os.path.join(out, "expected.json"), "w") as f:
    # One tensor a line, so a regenerated file diffs readably.
    f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in expected.items()) + "\n}\n")
print(f"wrote {len(sd)} tensors to {os.path.relpath(out)}")
