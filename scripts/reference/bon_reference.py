#!/usr/bin/env python3
"""Hand-written Best-of-N reference on ../shared/data/gsm8k/example_model_solutions.jsonl.

Each of the 1,319 GSM8K test problems carries 4 real model solutions (6b/175b, finetuning/
verification) with OpenAI's is_correct. Every response gets a seeded random score
u = fmix32(fnv1a32("seed:gsm8k-test-<index>:<response index>")) / 2^32 (the TypeScript test
regenerates the same numbers). Writes test/fixtures/eval/bon_reference.json with pass@N, maj@N,
prm@N and the PRM-weighted vote for N = 1, 2, 4, which test/eval/bon-reference.test.ts compares
with `bonMetrics` / `prmkit eval bon`.

Definitions (PAPER.md §2.2):
  answer   the text of the solution's last "A: ..." line (None without one), normalised: $ and
           thousands commas removed, numbers (and a/b fractions) compared by value
  correct  normalised answer == normalised gold (the ground truth's "A: N"); the script also
           counts where this differs from the dataset's is_correct
  pass@N   any of the first N responses correct
  maj@N    responses grouped by equal normalised answer; the biggest group wins, ties to the
           group seen first; correct if its first member is
  prm@N    the response with the highest score (first on ties); correct if it is
  weighted groups weighted by the sum of their members' scores, ties to the group seen first

Usage: python3 scripts/reference/bon_reference.py [--data FILE] [--seed 3] [--out FILE]
"""
import argparse
import json
import os
import re
from fractions import Fraction

MODELS = ["6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"]


def fnv1a32(text):
    h = 0x811C9DC5
    for ch in text.encode("utf-8"):
        h ^= ch
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def uniform(seed, key, step):
    return fmix32(fnv1a32(f"{seed}:{key}:{step}")) / 4294967296.0


def final_a_line(text):
    found = re.findall(r"(?:^|\n)A:[ \t]*([^\n]*)", text)
    return found[-1].strip() if found else None


def normalise(answer):
    """A canonical form: exact rational value for numbers (incl. a/b), else the cleaned text."""
    if answer is None:
        return None
    t = answer.replace("$", "").replace(",", "").strip().rstrip(".").strip()
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)", t)
    try:
        if m:
            return str(Fraction(m.group(1)) / Fraction(m.group(2)))
        return str(Fraction(t))
    except (ValueError, ZeroDivisionError):
        return t.lower()


def first_argmax(values):
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best]:
            best = i
    return best


def outcome(answers, correct, scores):
    groups = []  # [answer, first index, size, weight]
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if g[0] == a:
                g[2] += 1
                g[3] += scores[i]
                break
        else:
            groups.append([a, i, 1, scores[i]])
    maj = weighted = False
    if groups:
        maj = correct[groups[first_argmax([g[2] for g in groups])][1]]
        weighted = correct[groups[first_argmax([g[3] for g in groups])][1]]
    return {"pass": any(correct), "maj": maj, "prm": correct[first_argmax(scores)], "weighted": weighted}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(repo), "shared", "data", "gsm8k", "example_model_solutions.jsonl"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(repo, "test", "fixtures", "eval", "bon_reference.json"))
    args = ap.parse_args()

    problems = []
    disagreements = []
    with open(args.data, encoding="utf-8") as f:
        for index, line in enumerate(f):
            rec = json.loads(line)
            key = f"gsm8k-test-{index}"
            gold = normalise(final_a_line(rec["ground_truth"]))
            answers, correct, is_correct = [], [], []
            for model in MODELS:
                sol = rec[model]
                a = normalise(final_a_line(sol["solution"]))
                answers.append(a)
                correct.append(a is not None and a == gold)
                is_correct.append(sol["is_correct"])
            for j in range(len(MODELS)):
                if correct[j] != is_correct[j]:
                    disagreements.append({"id": key, "response": j, "ours": correct[j], "is_correct": is_correct[j]})
            scores = [uniform(args.seed, key, j) for j in range(len(MODELS))]
            problems.append({"id": key, "answers": answers, "correct": correct, "scores": scores})

    curve = []
    per_problem = {}
    for n in (1, 2, 4):
        outs = [outcome(p["answers"][:n], p["correct"][:n], p["scores"][:n]) for p in problems]
        total = len(outs)
        point = {"n": n}
        for name in ("pass", "maj", "prm", "weighted"):
            point[name] = 100 * sum(1 for o in outs if o[name]) / total
        curve.append(point)
        # per problem "pass maj prm weighted" as 0/1 digits, for locating any disagreement
        per_problem[str(n)] = ["".join("1" if o[k] else "0" for k in ("pass", "maj", "prm", "weighted")) for o in outs]

    out = {
        "n_problems": len(problems),
        "seed": args.seed,
        "models": MODELS,
        "correct_vs_is_correct_disagreements": disagreements,
        "curve": curve,
        "per_problem": per_problem,
        "graded": [{"answers": p["answers"], "correct": p["correct"]} for p in problems],
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    for p in curve:
        print(f"N={p['n']}: pass {p['pass']:.3f} maj {p['maj']:.3f} prm {p['prm']:.3f} weighted {p['weighted']:.3f}")
    print(f"{len(disagreements)} responses where the normaliser and is_correct differ; wrote {args.out}")


if __name__ == "__main__":
    main()
