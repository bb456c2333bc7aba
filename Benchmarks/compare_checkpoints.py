"""Max abs difference between the tensors of two Hugging Face model directories.

Usage: python compare_checkpoints.py DIR_A DIR_B
Prints one JSON object: tensors compared, max |a - b|, elements that differ, total elements, and
the largest difference in units of the bf16 spacing at that value (ulps), when the tensors are bf16.
Tensors present in only one directory are listed (mergekit omits a tied lm_head, for instance).
"""
import json
import os
import sys

import torch
from safetensors import safe_open


def tensors(directory):
    index = os.path.join(directory, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for name in files:
        with safe_open(os.path.join(directory, name), framework="pt") as f:
            for key in f.keys():
                out[key] = f.get_tensor(key)
    return out


def main():
    a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
    common = sorted(set(a) & set(b))
    max_abs, differing, total, max_ulps = 0.0, 0, 0, 0.0
    for key in common:
        x, y = a[key].float(), b[key].float()
        if x.shape != y.shape:
            raise SystemExit(f"{key}: shape {tuple(x.shape)} vs {tuple(y.shape)}")
        d = (x - y).abs()
        max_abs = max(max_abs, d.max().item())
        differing += int((d > 0).sum().item())
        total += d.numel()
        if a[key].dtype == torch.bfloat16:
            # spacing of bf16 at |x|: 2^(floor(log2|x|) - 7)
            m = torch.maximum(x.abs(), y.abs())
            spacing = torch.exp2(torch.floor(torch.log2(m.clamp_min(2.0 ** -126))) - 7)
            max_ulps = max(max_ulps, (d / spacing)[m >= 2.0 ** -20].max().item() if (m >= 2.0 ** -20).any() else 0.0)
    print(json.dumps({
        "tensors": len(common), "only_in_first": sorted(set(a) - set(b)), "only_in_second": sorted(set(b) - set(a)),
        "max_abs_diff": max_abs, "elements_differing": differing, "elements": total, "max_bf16_ulps": max_ulps,
    }))


if __name__ == "__main__":
    main()
