#!/usr/bin/env python3
"""Writes the safetensors fixtures used by SafeTensorsTests, with the Python `safetensors` library.

Run from this directory (see README.md for the exact versions):
    /tmp/stvenv/bin/python make_fixtures.py

Outputs
  dtypes.safetensors      one tensor per dtype (float types hold tricky values), with __metadata__
  sharded/                a two-shard checkpoint with model.safetensors.index.json and config.json
  single/                 the same tensors as one model.safetensors (+ config.json)
  expected.json           what the Swift tests check, computed here by torch:
      per tensor: dtype, shape, raw bytes (hex), and for float tensors the float32 value of every
      element as its bit pattern (torch's own widening), plus the float32 source values and the
      16-bit patterns torch produced when rounding them (round to nearest even).
"""
import json
import os
import shutil

import numpy as np
import safetensors
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def f32(bits):
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


# float32 values chosen to exercise rounding to bf16 (8 significant bits) and f16 (11 bits).
TRICKY = [
    0.0, -0.0, 1.0, -1.0, 0.5, 3.140625,
    1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8),          # bf16 ties (to even: down, up)
    1 + 2**-8 + 2**-20,                               # just above a bf16 tie
    1 + 2**-11, 1 + 3 * 2**-11,                       # f16 ties
    2**-14, 2**-15, 2**-20, 2**-24, 2**-25, 1.5 * 2**-25, 3 * 2**-25, 2**-26,  # f16 subnormals, ties
    2**-126, 2**-130, 2**-133 * 3,                    # float32 / bf16 subnormals
    65504.0, 65519.0, 65520.0, 1e5, -1e5,             # f16 max, round-down, overflow
    float(f32(0x7F7FFFFF)), float(f32(0x7F7F8000)), float(f32(0x7F7F7FFF)),  # bf16 overflow and tie
    float("inf"), float("-inf"), float("nan"),
]


def float_tensor(seed, n):
    rng = np.random.default_rng(seed)
    values = np.array(TRICKY, dtype=np.float32)
    rest = rng.standard_normal(n - len(values)).astype(np.float32) * np.float32(0.02)
    return torch.from_numpy(np.concatenate([values, rest]))


def describe(t, source=None):
    t = t.contiguous()
    flat = t.reshape(-1)
    entry = {
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "bytes": flat.view(torch.uint8).numpy().tobytes().hex() if t.numel() else "",
    }
    if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        entry["f32bits"] = [int(b) for b in flat.to(torch.float32).view(torch.int32).numpy().astype(np.uint32)]
    if source is not None:
        entry["source_f32bits"] = [int(b) for b in source.reshape(-1).view(torch.int32).numpy().astype(np.uint32)]
        if t.dtype in (torch.float16, torch.bfloat16):
            entry["rounded_bits"] = [int(b) for b in flat.view(torch.int16).numpy().astype(np.uint16)]
    return entry


def main():
    torch.manual_seed(0)
    expected = {"versions": {"safetensors": safetensors.__version__, "torch": torch.__version__, "numpy": np.__version__}}

    # --- one tensor per dtype ---
    src = float_tensor(1, 48).reshape(6, 8)
    tensors = {
        "f32": src.clone(),
        "bf16": src.to(torch.bfloat16),
        "f16": src.to(torch.float16),
        "f64": torch.from_numpy(np.linspace(-2.5, 2.5, 10)).reshape(2, 5),
        "i64": torch.tensor([-(2**62), -1, 0, 1, 2**62], dtype=torch.int64),
        "i32": torch.tensor([[-(2**31), 7], [2**31 - 1, 0]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, 3], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 5], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17, 42], dtype=torch.uint8),
        "u16": torch.tensor([0, 65535, 1234], dtype=torch.uint16),
        "u32": torch.tensor([0, 2**32 - 1], dtype=torch.uint32),
        "u64": torch.tensor([0, 2**63 - 1], dtype=torch.uint64),
        "bool": torch.tensor([True, False, True], dtype=torch.bool),
        "f8_e4m3": torch.tensor([0.5, -1.75, 448.0], dtype=torch.float32).to(torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([0.5, -1.75, 57344.0], dtype=torch.float32).to(torch.float8_e5m2),
        "f8_e4m3fnuz": torch.tensor([0.5, -1.75, 240.0], dtype=torch.float32).to(torch.float8_e4m3fnuz),
        "f8_e5m2fnuz": torch.tensor([0.5, -1.75, 57344.0], dtype=torch.float32).to(torch.float8_e5m2fnuz),
        "c64": torch.tensor([1 + 2j, -0.5 - 0.25j], dtype=torch.complex64),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    metadata = {"format": "pt", "note": "BAMBO fixture", "unicode": "λ=1 ✓"}
    save_file(tensors, os.path.join(HERE, "dtypes.safetensors"), metadata=metadata)
    expected["dtypes.safetensors"] = {
        "metadata": metadata,
        "tensors": {name: describe(t, src if name in ("f32", "bf16", "f16") else None) for name, t in tensors.items()},
    }

    # --- a small Llama/Qwen-named model, sharded and single-file ---
    g = torch.Generator().manual_seed(7)
    model = {
        "model.embed_tokens.weight": (torch.randn(16, 8, generator=g) * 0.02).to(torch.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": (torch.randn(8, 8, generator=g) * 0.02).to(torch.bfloat16),
        "model.layers.0.input_layernorm.weight": torch.ones(8, dtype=torch.float32) + torch.randn(8, generator=g) * 0.01,
        "model.layers.1.self_attn.q_proj.weight": (torch.randn(8, 8, generator=g) * 0.02).to(torch.float16),
        "model.layers.1.input_layernorm.weight": torch.ones(8, dtype=torch.float32),
        "model.norm.weight": torch.ones(8, dtype=torch.float32) * 1.5,
        "lm_head.weight": (torch.randn(16, 8, generator=g) * 0.02).to(torch.bfloat16),
    }
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 2, "hidden_size": 8, "vocab_size": 16}
    shard_of = {name: (1 if name.startswith("model.layers.1") or name in ("model.norm.weight", "lm_head.weight") else 0) for name in model}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for directory in ("sharded", "single"):
        path = os.path.join(HERE, directory)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
    for i, shard_name in enumerate(names):
        save_file({n: t for n, t in model.items() if shard_of[n] == i}, os.path.join(HERE, "sharded", shard_name), metadata={"format": "pt"})
    index = {
        "metadata": {"total_size": sum(t.numel() * t.element_size() for t in model.values())},
        "weight_map": {n: names[shard_of[n]] for n in sorted(model)},
    }
    with open(os.path.join(HERE, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
    save_file(model, os.path.join(HERE, "single", "model.safetensors"), metadata={"format": "pt"})
    expected["model"] = {
        "config": config,
        "shards": {n: names[shard_of[n]] for n in model},
        "tensors": {name: describe(t) for name, t in model.items()},
    }

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
