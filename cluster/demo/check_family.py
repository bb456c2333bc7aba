#!/usr/bin/env python3
"""Checks the demo family's accuracy/length trade-off offline, with transformers' greedy `generate`.

Evaluates, on both held-out benchmarks (bench/multiply.jsonl, bench/choice.jsonl), the instruct and
thinking models, uniform linear interpolations (1 - w) * instruct + w * thinking for w = 0.1 … 0.9,
and a few block-wise points (a weight per layer group: embedding, the 6 layers, final norm). Prompts
are the harness's bare prompts under the chat template (family_tasks.py); replies are graded by a port
of the harness's answer extraction. Prints accuracy and mean output tokens (end-of-sequence included,
as servers report `usage.completion_tokens`) per benchmark.

Items are batched by prompt length, so no padding is needed and each reply is what a server answering
that prompt alone would generate.

Usage: $python cluster/demo/check_family.py [--family cluster/demo/family] [--bench cluster/demo/bench]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import family_tasks as tasks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = 6


def group_of(name: str) -> int:
    """0 = embedding, 1…6 = layers 0…5, 7 = final norm / head."""
    if name.startswith("model.embed_tokens."):
        return 0
    if name.startswith("model.layers."):
        return 1 + int(name.split(".")[2])
    if name.startswith(("model.norm.", "lm_head.")):
        return LAYERS + 1
    raise ValueError(f"tensor {name} is not Qwen3-named (model.embed_tokens / model.layers.N / model.norm)")


def points() -> list[tuple[str, list[float]]]:
    """(label, weight of thinking per group [embedding, layers 0…5, head])."""
    result = [("instruct", [0.0] * 8)]
    result += [(f"uniform w={w / 10:.1f}", [w / 10] * 8) for w in range(1, 10)]
    result += [("thinking", [1.0] * 8)]
    half = LAYERS // 2
    result += [
        ("block: last half 0.7", [0.0] + [0.0] * half + [0.7] * half + [0.0]),
        ("block: last half 1.0", [0.0] + [0.0] * half + [1.0] * half + [0.0]),
        ("block: first half 0.7", [0.0] + [0.7] * half + [0.0] * half + [0.0]),
        ("block: 0.3 then 0.8", [0.3] + [0.3] * half + [0.8] * half + [0.8]),
    ]
    return result


def merged_state(instruct: dict, thinking: dict, weights: list[float]) -> dict:
    return {k: (1 - weights[group_of(k)]) * instruct[k] + weights[group_of(k)] * thinking[k] for k in instruct}


def evaluate(model, tokenizer, items: list[dict], max_new_tokens: int) -> tuple[float, float, list[str]]:
    """(accuracy, mean output tokens incl. EOS, replies) with greedy decoding, batched by prompt length."""
    import torch

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": tasks.user_text(i)}],
                                             add_generation_prompt=True, tokenize=False) for i in items]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    replies, counts = [None] * len(items), [0] * len(items)
    by_length: dict[int, list[int]] = {}
    for index, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(index)
    for indices in by_length.values():
        batch = torch.tensor([encoded[i] for i in indices])
        with torch.no_grad():
            out = model.generate(batch, attention_mask=torch.ones_like(batch), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)
        for row, index in zip(out[:, batch.shape[1]:].tolist(), indices):
            n = row.index(eos) + 1 if eos in row else len(row)
            counts[index] = n
            replies[index] = tokenizer.decode(row[:n], skip_special_tokens=True)
    correct = sum(tasks.grade(r, item) for r, item in zip(replies, items))
    return correct / len(items), sum(counts) / len(items), replies


def evaluate_served(server: str, model_dir: str, items: list[dict], max_tokens: int) -> tuple[float, float, list[str]]:
    """(accuracy, mean `usage.completion_tokens`, full replies) from an OpenAI-compatible server
    (e.g. `transformers serve`), greedy, one request per item, 32 in flight. The full reply rejoins the
    server's `reasoning_content` and `content` as the harness does (Grader.fullReply)."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    def ask(item):
        body = {"model": model_dir, "messages": [{"role": "user", "content": tasks.user_text(item)}],
                "max_tokens": max_tokens, "temperature": 0, "stream": False}
        request = urllib.request.Request(server.rstrip("/") + "/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            reply = json.loads(response.read())
        message = reply["choices"][0]["message"]
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        full = f"<think>\n{reasoning}\n</think>\n\n{content}" if reasoning and content else (content or reasoning)
        return full, reply["usage"]["completion_tokens"]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(ask, items))
    replies = [r for r, _ in answers]
    correct = sum(tasks.grade(r, item) for r, item in zip(replies, items))
    return correct / len(items), sum(t for _, t in answers) / len(items), replies


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default=os.path.join(HERE, "family"))
    parser.add_argument("--bench", default=os.path.join(HERE, "bench"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="only instruct, uniform w=0.5 and thinking")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--show", type=int, default=0, help="print this many replies per point and benchmark")
    parser.add_argument("--server", help="instead: evaluate instruct and thinking through this OpenAI-compatible server "
                                         "(e.g. http://127.0.0.1:8000), sending model directory paths as `model`")
    args = parser.parse_args(argv)

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(args.family, "instruct"))
    model = AutoModelForCausalLM.from_pretrained(os.path.join(args.family, "instruct"), dtype=torch.float32)
    model.eval()
    instruct = load_file(os.path.join(args.family, "instruct", "model.safetensors"))
    thinking = load_file(os.path.join(args.family, "thinking", "model.safetensors"))
    benchmarks = {name: tasks.read_jsonl(os.path.join(args.bench, f"{name}.jsonl")) for name in ("multiply", "choice")}

    if args.server:
        for name in ("instruct", "thinking"):
            path = os.path.abspath(os.path.join(args.family, name))
            for bench, items in benchmarks.items():
                accuracy, tokens, replies = evaluate_served(args.server, path, items, args.max_new_tokens)
                print(f"served {name:9s} {bench:9s} accuracy {accuracy:.2f} tokens {tokens:.1f}; first reply {replies[0]!r}",
                      flush=True)
        return 0

    results = []
    print(f"{'point':24s} {'multiply acc':>12s} {'tokens':>7s} {'choice acc':>11s} {'tokens':>7s}", flush=True)
    started = time.time()
    for label, weights in points():
        if args.quick and label not in ("instruct", "uniform w=0.5", "thinking"):
            continue
        missing, unexpected = model.load_state_dict(merged_state(instruct, thinking, weights), strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        model.tie_weights()
        row = {"point": label, "weights": weights}
        for name, items in benchmarks.items():
            accuracy, tokens, replies = evaluate(model, tokenizer, items, args.max_new_tokens)
            row[name] = {"accuracy": accuracy, "tokens": tokens}
            for reply in replies[:args.show]:
                print(f"    {name}: {reply!r}")
        results.append(row)
        print(f"{label:24s} {row['multiply']['accuracy']:12.2f} {row['multiply']['tokens']:7.1f} "
              f"{row['choice']['accuracy']:11.2f} {row['choice']['tokens']:7.1f}", flush=True)
    print(f"({time.time() - started:.0f}s; greedy, max {args.max_new_tokens} new tokens, "
          f"{len(benchmarks['multiply'])} + {len(benchmarks['choice'])} items)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
