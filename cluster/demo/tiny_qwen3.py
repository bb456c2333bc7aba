#!/usr/bin/env python3
"""Tiny Qwen3-architecture models built locally (no download), for the CPU demo and the tests.

Reusable pieces (a later step trains the demo family on them):
  - `build_tokenizer_files(out_dir)`: a character-level tokenizer. A BPE `tokenizer.json` whose merge
    list is empty is exactly character level. Vocabulary: `<|endoftext|>` (pad), `<|im_start|>`,
    `<|im_end|>` (eos), `<unk>`, `<think>`, `</think>` (added, non-special, as in Qwen3), newline and
    printable ASCII; a Qwen-style chat template in `tokenizer_config.json`, so
    `AutoTokenizer.from_pretrained(out_dir)` loads offline.
  - `tiny_qwen3_config(...)`: `Qwen3Config` with hidden 64, 6 layers, 4 heads / 2 KV heads,
    head_dim 32 (vLLM's CPU attention rejects 16), intermediate 192, tied embeddings, fp32.
  - `random_model(seed)`: that model with seeded random weights.
  - `save_model_dir(model, out_dir)`: safetensors weights, config, generation config and tokenizer.

CLI: python cluster/demo/tiny_qwen3.py random --out DIR --seed S
"""
from __future__ import annotations

import argparse
import json
import os
import string
import sys

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
UNK_TOKEN = "<unk>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# (content, special): Qwen3 marks the chat markers special and the thinking markers non-special, so
# `<think>` survives `skip_special_tokens=True` decoding and servers can split reasoning on it.
ADDED_TOKENS = [
    (PAD_TOKEN, True),
    (IM_START, True),
    (IM_END, True),
    (UNK_TOKEN, True),
    (THINK_OPEN, False),
    (THINK_CLOSE, False),
]

# Qwen-style ChatML template; `enable_thinking=False` pre-fills an empty thinking block as Qwen3 does,
# and earlier assistant turns keep only what follows their last `</think>`.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- set content = message['content'] if message['content'] is string else '' %}"
    "{%- if message['role'] == 'assistant' and '</think>' in content %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def vocabulary() -> list[str]:
    """Token strings in id order: the added tokens, newline, then printable ASCII (space to tilde)."""
    printable = [chr(c) for c in range(32, 127)]
    return [t for t, _ in ADDED_TOKENS] + ["\n"] + printable


def build_tokenizer_json() -> dict:
    vocab = {token: i for i, token in enumerate(vocabulary())}
    added = [
        {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": special}
        for t, special in ADDED_TOKENS
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        # Without a decoder, tokens would be joined with spaces; Fuse concatenates them.
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": UNK_TOKEN, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": False, "vocab": vocab, "merges": [],
        },
    }


def build_tokenizer_files(out_dir: str) -> None:
    """Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        json.dump(build_tokenizer_json(), f, ensure_ascii=False, indent=1)
    vocab = vocabulary()
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": {
            str(vocab.index(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                  "single_word": False, "special": special}
            for t, special in ADDED_TOKENS
        },
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": PAD_TOKEN,
        "unk_token": UNK_TOKEN,
        "additional_special_tokens": [IM_START, IM_END],
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({"eos_token": IM_END, "pad_token": PAD_TOKEN, "unk_token": UNK_TOKEN,
                   "additional_special_tokens": [IM_START, IM_END]}, f, indent=1)


def tiny_qwen3_config(**overrides):
    """The tiny Qwen3 configuration (about 376k parameters in fp32); keyword arguments override fields."""
    from transformers import Qwen3Config

    vocab = vocabulary()
    fields = dict(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        intermediate_size=192,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=vocab.index(IM_END),
        pad_token_id=vocab.index(PAD_TOKEN),
        torch_dtype="float32",
    )
    fields.update(overrides)
    return Qwen3Config(**fields)


def random_model(seed: int, **config_overrides):
    """`Qwen3ForCausalLM` with the tiny configuration and weights drawn from a seeded generator."""
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(tiny_qwen3_config(**config_overrides)).to(torch.float32)
    model.eval()
    return model


def save_model_dir(model, out_dir: str) -> None:
    """Saves weights (safetensors), config, generation config and the tokenizer into `out_dir`."""
    from transformers import GenerationConfig

    os.makedirs(out_dir, exist_ok=True)
    vocab = vocabulary()
    model.generation_config = GenerationConfig(
        eos_token_id=vocab.index(IM_END), pad_token_id=vocab.index(PAD_TOKEN), do_sample=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    build_tokenizer_files(out_dir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rnd = sub.add_parser("random", help="save a tiny Qwen3 model with seeded random weights")
    rnd.add_argument("--out", required=True, help="output directory (created)")
    rnd.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "random":
        save_model_dir(random_model(args.seed), args.out)
        print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
