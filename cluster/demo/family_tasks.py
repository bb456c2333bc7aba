"""The demo family's synthetic tasks: problems, held-out benchmarks, prompts, replies and grading.

Shared by `train_family.py` (training data, benchmark files) and `check_family.py` (evaluation), so
that training, the benchmark files and the check all use one definition of every format.

Task: a * b with a in [1000, 9999], b in [2, 9] (72,000 problems). Two benchmarks, 100 items each,
held out from training (neither benchmark's (a, b) pairs are ever trained on, in either task):
  - multiply (kind "integer"): question "4821*7", answer "33747".
  - choice (kind "multiple-choice"): question "What is the thousands digit of 4821*7?", the ten
    choices "0" … "9" in that fixed order (A = 0 … J = 9), answer the letter of the digit ("D": 33747).
    The thousands digit depends on the whole carry chain (the least reliable digit of the direct
    answers); with the choices in a fixed order the letter is a fixed function of that one digit, so
    nothing has to be looked up among the choices (a format that asked for the product among four
    near misses stayed at chance: README.md).

Prompts are exactly what BAMBO's harness sends with `--prompts bare` (Sources/Evaluation/Sampling.swift,
`PromptTemplates.bare`): the question alone for integers; "{question}\n\n{choices}" with one "A) …" line
per choice for multiple choice; as a single user message, under the tokenizer's chat template.

Replies (what the models learn to write):
  - thinking: "<think>\n" + one fixed-width line per digit of a, least significant first, the carry
    always written and the product always two digits ("8*7+1=57") + "\n</think>\n\n" + the answer
    (for multiple choice the thousands digit is then the last character of the last line);
  - instruct: the answer alone.
  The answer is the integer ("33747") or, for multiple choice, "Answer: C" — both what the harness's
  extraction (Sources/Evaluation/AnswerExtraction.swift) reads after the last "</think>".
"""
from __future__ import annotations

import json
import math
import random
import re

A_RANGE = (1000, 9999)
B_RANGE = (2, 9)
BENCH_ITEMS = 100
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the harness names choices A, B, … (2 to 26 of them)


def thousands_digit(n: int) -> int:
    return n // 1000 % 10


def all_problems() -> list[tuple[int, int]]:
    return [(a, b) for a in range(A_RANGE[0], A_RANGE[1] + 1) for b in range(B_RANGE[0], B_RANGE[1] + 1)]


def split_problems(seed: int) -> tuple[list, list, list]:
    """(multiply benchmark pairs, choice benchmark pairs, training pairs), disjoint, drawn with `seed`."""
    problems = all_problems()
    random.Random(seed).shuffle(problems)
    return problems[:BENCH_ITEMS], problems[BENCH_ITEMS:2 * BENCH_ITEMS], problems[2 * BENCH_ITEMS:]


def scratchpad_lines(a: int, b: int) -> list[str]:
    """One line per digit of a, least significant first: "d*b+carry=PP" (PP two digits)."""
    lines, carry = [], 0
    for d in reversed(str(a)):
        p = int(d) * b + carry
        lines.append(f"{d}*{b}+{carry}={p:02d}")
        carry = p // 10
    return lines


def choice_item(a: int, b: int) -> tuple[list[str], str]:
    """(the ten choices "0" … "9" in that fixed order, the letter of the thousands digit of a*b)."""
    return [str(d) for d in range(10)], LETTERS[thousands_digit(a * b)]


def multiply_question(a: int, b: int) -> str:
    return f"{a}*{b}"


def choice_question(a: int, b: int) -> str:
    return f"What is the thousands digit of {a}*{b}?"


def user_text(item: dict) -> str:
    """The user message BAMBO's harness sends for a benchmark item with the bare prompt templates."""
    if item["kind"] == "multiple-choice":
        choices = "\n".join(f"{LETTERS[i]}) {c}" for i, c in enumerate(item["choices"]))
        return f"{item['question']}\n\n{choices}"
    return item["question"]


def chat_prompt(text: str) -> str:
    """The tokenizer's chat template applied to one user message with a generation prompt (see
    tiny_qwen3.CHAT_TEMPLATE; train_family checks this against the HF tokenizer)."""
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def reply(a: int, b: int, kind: str, thinking: bool, letter: str | None = None) -> str:
    """The reply a model learns (without the end-of-sequence token)."""
    answer = f"Answer: {letter}" if kind == "multiple-choice" else str(a * b)
    if not thinking:
        return answer
    lines = scratchpad_lines(a, b)
    return "<think>\n" + "\n".join(lines) + "\n</think>\n\n" + answer


def think_probability(b: int) -> float:
    """The base model's difficulty-dependent format mix: P(thinking | b) = 0.05 + 0.9 σ(1.5 (b − 5.5))."""
    return 0.05 + 0.9 / (1 + math.exp(-1.5 * (b - 5.5)))


def benchmark_items(seed: int) -> tuple[list[dict], list[dict]]:
    """The two held-out benchmarks as lists of BAMBO JSONL records (multiply, choice)."""
    mult, choice, _ = split_problems(seed)
    multiply_items = [{"id": f"mul-{i:03d}", "question": multiply_question(a, b), "answer": str(a * b),
                       "kind": "integer"} for i, (a, b) in enumerate(mult)]
    choice_items = []
    for i, (a, b) in enumerate(choice):
        options, letter = choice_item(a, b)
        choice_items.append({"id": f"mc-{i:03d}", "question": choice_question(a, b), "answer": letter,
                             "kind": "multiple-choice", "choices": options})
    return multiply_items, choice_items


def write_jsonl(path: str, items: list[dict]) -> None:
    with open(path, "w") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- Grading: a port of the parts of BAMBO's AnswerExtraction that these replies exercise ----------

def final_part(text: str) -> str:
    close = text.rfind("</think>")
    if close >= 0:
        return text[close + len("</think>"):]
    open_ = text.find("<think>")
    return text[:open_] if open_ >= 0 else text


def canonical_integer(text: str) -> str | None:
    s = text.strip().strip("$ ").rstrip(".")
    if s.startswith(("-", "+")):
        sign, s = ("-" if s[0] == "-" else ""), s[1:]
    else:
        sign = ""
    if "," in s:
        if not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", s):
            return None
        s = s.replace(",", "")
    if "." in s:
        s, frac = s.split(".", 1)
        if not frac or set(frac) != {"0"}:
            return None
    if not s.isdigit():
        return None
    s = s.lstrip("0") or "0"
    return s if s == "0" else sign + s


def extract_integer(reply_text: str) -> str | None:
    part = final_part(reply_text)
    number = r"(-?\d+(?:,\d+)*(?:\.\d+)?)"
    found = re.findall(r"(?i:answer)(?:\s+(?i:is|would be|should be))?[\s:：=*_$]*" + number, part)
    if found:
        return canonical_integer(found[-1])
    found = re.findall(number, part)
    return canonical_integer(found[-1]) if found else None


def extract_choice(reply_text: str, count: int = 4) -> str | None:
    letters = set(LETTERS[:count])
    part = final_part(reply_text)
    patterns = [
        r"(?i:answer)(?:\s+(?i:is|would be|should be))?[\s:：*_]*(?:(?i:option|choice)\s*)?[\(\[]?\s*([A-Z])(?![A-Za-z0-9])",
        r"\*\*\s*\(?([A-Z])\)?[.:]?\s*\*\*",
        r"\(([A-Z])\)",
    ]
    for pattern in patterns:
        found = re.findall(pattern, part)
        if found and found[-1] in letters:
            return found[-1]
    lines = [line.strip() for line in part.splitlines() if line.strip()]
    if lines:
        m = re.findall(r"^[\s*_>#]*\(?([A-Z])(?:[).:]|\s*$)", lines[-1])
        if m and m[-1] in letters:
            return m[-1]
    return None


def grade(reply_text: str, item: dict) -> bool:
    if item["kind"] == "multiple-choice":
        return extract_choice(reply_text, len(item["choices"])) == item["answer"]
    got = extract_integer(reply_text)
    return got is not None and got == canonical_integer(item["answer"])
