#!/usr/bin/env python3
"""Trains the demo's tiny Thinking/Instruct family on CPU and writes the held-out benchmarks.

One shared base, then two fine-tunes of it, all transformers' `Qwen3ForCausalLM` in the tiny
configuration of `tiny_qwen3.py` (hidden 64, 6 layers, 4 heads / 2 KV heads, head_dim 32, tied
embeddings, fp32), on the tasks of `family_tasks.py` (4-digit x 1-digit multiplication as an integer
task and as a multiple-choice task):
  - base: `--base-steps` at `--base-lr` on a difficulty-dependent mix of the two reply formats,
    P(thinking | b) = 0.05 + 0.9 sigma(1.5 (b - 5.5)), so that the format is a soft function of the
    weights and interpolations between the fine-tunes move smoothly;
  - thinking = base + `--ft-steps` at `--ft-lr` on thinking replies (scratchpad, then the answer);
  - instruct = base + `--ft-steps` at `--ft-lr` on direct replies.
AdamW (beta 0.9/0.98, weight decay 0.01), linear warm-up then cosine to 10 %, gradient clipping 1.0,
batch 32, loss on the assistant's tokens only (reply + <|im_end|>). Each batch holds one task
(integer or, with probability `--mc-fraction`, multiple choice) so that short prompts are not padded.
Defaults are sized for a shared 2-core machine (README.md: measured time and the resulting curve).

Writes OUT/{base,thinking,instruct}/ (config.json, generation_config.json, model.safetensors,
tokenizer files; `AutoModelForCausalLM` / `AutoTokenizer.from_pretrained(dir)` load them offline) and
BENCH/{multiply,choice}.jsonl (BAMBO's normalized benchmark JSONL, held out from training).

Deterministic: Python's `random.Random(seed)` draws the data, `torch.manual_seed(seed)` the weights,
torch runs with a fixed thread count (`--threads`, 1) and deterministic algorithms. Re-running the
same command with the same torch version reproduces the files byte for byte (checked with sha256sum;
a different torch version, thread count or CPU may change floating-point results).

Usage: python=$(bash cluster/python-env.sh)
       $python cluster/demo/train_family.py            # the committed family (defaults)
"""
from __future__ import annotations

import argparse
import math
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import family_tasks as tasks  # noqa: E402
import tiny_qwen3  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIAL = re.compile(r"(<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|<think>|</think>)")


class CharEncoder:
    """Text to ids exactly as the family's tokenizer encodes it (checked against it in `check_against`)."""

    def __init__(self):
        self.vocab = {t: i for i, t in enumerate(tiny_qwen3.vocabulary())}

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in SPECIAL.split(text):
            if not piece:
                continue
            if piece in self.vocab and SPECIAL.fullmatch(piece):
                ids.append(self.vocab[piece])
            else:
                ids.extend(self.vocab.get(c, self.vocab[tiny_qwen3.UNK_TOKEN]) for c in piece)
        return ids

    def check_against(self, tokenizer_dir: str, samples: list[tuple[str, str]]) -> None:
        """Asserts that the HF tokenizer's chat template and encoding give the same ids as this encoder."""
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        for user, answer in samples:
            rendered = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                               tokenize=False)
            assert rendered == tasks.chat_prompt(user), f"chat template differs: {rendered!r}"
            text = rendered + answer + tiny_qwen3.IM_END
            theirs = tok(text, add_special_tokens=False)["input_ids"]
            assert theirs == self.encode(text), f"encodings differ for {text!r}"


class Sampler:
    """Draws training examples (prompt ids, reply ids) from the training pairs."""

    def __init__(self, pairs, rng: random.Random, encoder: CharEncoder, mode: str, mc_fraction: float):
        self.pairs, self.rng, self.encoder, self.mode, self.mc_fraction = pairs, rng, encoder, mode, mc_fraction
        self.eos = encoder.vocab[tiny_qwen3.IM_END]

    def example(self, choice: bool) -> tuple[list[int], list[int]]:
        a, b = self.pairs[self.rng.randrange(len(self.pairs))]
        if self.mode == "base":
            thinking = self.rng.random() < tasks.think_probability(b)
        else:
            thinking = self.mode == "thinking"
        if choice:
            choices, letter = tasks.choice_item(a, b)
            item = {"kind": "multiple-choice", "question": tasks.choice_question(a, b), "choices": choices}
            reply = tasks.reply(a, b, "multiple-choice", thinking, letter)
        else:
            item = {"kind": "integer", "question": tasks.multiply_question(a, b)}
            reply = tasks.reply(a, b, "integer", thinking)
        prompt = self.encoder.encode(tasks.chat_prompt(tasks.user_text(item)))
        return prompt, self.encoder.encode(reply) + [self.eos]

    def batch(self, size: int, pad_id: int):
        import torch

        # One task per batch: integer prompts are short, so mixing would mostly add padding.
        choice = self.rng.random() < self.mc_fraction
        self.last_was_choice = choice
        examples = [self.example(choice) for _ in range(size)]
        length = max(len(p) + len(r) for p, r in examples)
        ids = torch.full((size, length), pad_id, dtype=torch.long)
        labels = torch.full((size, length), -100, dtype=torch.long)
        mask = torch.zeros((size, length), dtype=torch.long)
        for i, (p, r) in enumerate(examples):
            seq = p + r
            ids[i, :len(seq)] = torch.tensor(seq)
            labels[i, len(p):len(seq)] = torch.tensor(r)
            mask[i, :len(seq)] = 1
        return ids, labels, mask


def train(model, sampler: Sampler, steps: int, lr: float, batch: int, warmup: int, label: str, log_every: int = 100):
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pad = model.config.pad_token_id
    model.train()
    start, running = time.time(), {False: [0.0, 0], True: [0.0, 0]}
    for step in range(steps):
        ids, labels, mask = sampler.batch(batch, pad)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running[sampler.last_was_choice][0] += loss.item()
        running[sampler.last_was_choice][1] += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            losses = " ".join(f"{name} {total / count:.4f}" for name, (total, count) in
                              (("multiply", running[False]), ("choice", running[True])) if count)
            print(f"[{label}] step {step + 1}/{steps} loss {losses} "
                  f"lr {scheduler.get_last_lr()[0]:.2e} {time.time() - start:.0f}s", flush=True)
            running = {False: [0.0, 0], True: [0.0, 0]}
    model.eval()
    return model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "family"), help="model directories go here")
    parser.add_argument("--bench", default=os.path.join(HERE, "bench"), help="benchmark JSONL files go here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-steps", type=int, default=1000)
    parser.add_argument("--base-lr", type=float, default=3e-3)
    parser.add_argument("--ft-steps", type=int, default=120)
    parser.add_argument("--ft-lr", type=float, default=5e-4)
    parser.add_argument("--batch", type=int, default=32, help="base batch size")
    parser.add_argument("--ft-batch", type=int, default=32, help="fine-tuning batch size")
    parser.add_argument("--mc-fraction", type=float, default=0.4, help="share of multiple-choice batches")
    parser.add_argument("--init", help="start the base from this model directory (continued training) "
                                       "instead of seeded random weights")
    parser.add_argument("--log-every", type=int, default=100, help="base steps between loss lines")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (fixed for reproducibility; 1 is fastest on a shared 2-core machine)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    started = time.time()

    os.makedirs(args.bench, exist_ok=True)
    multiply_items, choice_items = tasks.benchmark_items(args.seed)
    tasks.write_jsonl(os.path.join(args.bench, "multiply.jsonl"), multiply_items)
    tasks.write_jsonl(os.path.join(args.bench, "choice.jsonl"), choice_items)
    _, _, train_pairs = tasks.split_problems(args.seed)
    held_out = {(int(i["question"].split("*")[0]), int(i["question"].split("*")[1])) for i in multiply_items}
    assert not held_out & set(train_pairs), "a benchmark problem leaked into training"
    print(f"benchmarks: {len(multiply_items)} + {len(choice_items)} items in {args.bench}; "
          f"{len(train_pairs)} training problems", flush=True)

    encoder = CharEncoder()
    tokenizer_dir = os.path.join(args.out, "base")
    tiny_qwen3.build_tokenizer_files(tokenizer_dir)
    samples = [(tasks.user_text(i), tasks.reply(4821, 7, i["kind"], True, "B")) for i in
               (multiply_items[0], choice_items[0])]
    encoder.check_against(tokenizer_dir, samples)

    base = tiny_qwen3.random_model(args.seed)
    if args.init:
        from safetensors.torch import load_file

        missing, unexpected = base.load_state_dict(load_file(os.path.join(args.init, "model.safetensors")), strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        base.tie_weights()
        print(f"base starts from {args.init}", flush=True)
    print(f"parameters: {sum(p.numel() for p in base.parameters())}", flush=True)
    train(base, Sampler(train_pairs, random.Random(args.seed + 10), encoder, "base", args.mc_fraction),
          args.base_steps, args.base_lr, args.batch, warmup=min(50, max(1, args.base_steps // 10)), label="base",
          log_every=args.log_every)
    tiny_qwen3.save_model_dir(base, os.path.join(args.out, "base"))
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    for offset, mode in ((20, "thinking"), (30, "instruct")):
        torch.manual_seed(args.seed + offset)
        model = tiny_qwen3.random_model(args.seed)
        model.load_state_dict(base_state)
        train(model, Sampler(train_pairs, random.Random(args.seed + offset), encoder, mode, args.mc_fraction),
              args.ft_steps, args.ft_lr, args.ft_batch, warmup=min(10, max(1, args.ft_steps // 10)), label=mode,
              log_every=50)
        tiny_qwen3.save_model_dir(model, os.path.join(args.out, mode))
    print(f"done in {time.time() - started:.0f}s: {args.out}/{{base,thinking,instruct}}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
