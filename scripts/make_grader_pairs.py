#!/usr/bin/env python3
"""Builds (gold, response) grading pairs labelled by the reference grader math-verify 0.9.0.

Gold answers come from ../shared/data/bon-eval/*/test.jsonl (all sets but the multiple-choice
MMLU-STEM). For each sampled gold the script writes equivalent rewrites (fraction <-> decimal,
\\dfrac, units and text, reordered sets, x= prefixes, boxed and "the answer is" wrappers, thousands
separators, radical forms, trailing zeros, expanded/reordered expressions) and near misses (off by
one, sign flips, wrong fractions, swapped tuples, open vs closed intervals, dropped set members).
Every pair is labelled with `verify(parse(gold), parse(response))`; the label, not the intent,
is what the TypeScript grader is compared against (test/math/grader-pairs.test.ts).

Usage: python scripts/make_grader_pairs.py [--data ../shared/data] [--out test/fixtures/math/grader_pairs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from fractions import Fraction
from pathlib import Path

from math_verify import parse, verify

SETS = ["gsm8k", "minerva_math", "gaokao2023en", "olympiadbench", "college_math"]
SEED = 20250107
GOLDS_PER_SET = 30
MAX_PER_KIND = 28
TARGET_PAIRS = 580


def last_boxed(text: str) -> str | None:
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth = 0
    for j in range(i + 6, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 7 : j]
    return None


def strip_dollars(s: str) -> str:
    s = s.strip()
    while len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        s = s[1:-1].strip()
    return s


def gold_of(set_name: str, row: dict) -> str | None:
    if set_name == "gsm8k":
        return row["answer"].split("####")[-1].strip().replace(",", "")
    if set_name == "minerva_math":
        return last_boxed(row["solution"])
    if set_name == "olympiadbench":
        parts = [strip_dollars(p) for p in row["final_answer"]]
        return ", ".join(parts)
    return strip_dollars(str(row["answer"]))


def usable(gold: str) -> bool:
    if not gold or len(gold) > 45 or "\n" in gold or "$" in gold or ":" in gold:
        return False
    if re.search(r"\d[eE][-+]?\d", gold):  # 1.45e-5: sympy reads e as Euler's number
        return False
    if re.search(r"\\text\{[^}]{12,}\}|\\begin|\\angle|\\quad|\\mid|\||\\cdots|\\ldots", gold):
        return False
    words = re.findall(r"[A-Za-z]{4,}", re.sub(r"\\[A-Za-z]+", "", gold))
    return not words


# ---- rewrites -----------------------------------------------------------------------------------

INT = re.compile(r"^-?\d+$")
DEC = re.compile(r"^-?\d+\.\d+$")
FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
ROOT = re.compile(r"^(\d*)\\sqrt\{(\d+)\}$")
TUPLE = re.compile(r"^\((.+)\)$")
INTERVAL = re.compile(r"^([\[(])([^,]+),([^,]+)([\])])$")


def split_top(s: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


SHAPES = {
    "interval": lambda g: bool(INTERVAL.match(g)),
    "tuple_list": lambda g: len(split_top(g)) >= 2 and all(p.startswith("(") for p in split_top(g)),
    "set": lambda g: "\\{" in g,
    "union": lambda g: "\\cup" in g,
    "radical": lambda g: bool(ROOT.match(g)),
    "list": lambda g: len(split_top(g)) >= 2 and not g.startswith(("(", "[")) and not re.match(r"^\d{1,3}(,\d{3})+$", g),
}


def terminating(f: Fraction) -> bool:
    d = f.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def equivalents(gold: str, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, answer text) pairs meant to be equivalent to gold."""
    out: list[tuple[str, str]] = []
    g = gold.strip()
    if INT.match(g):
        n = int(g)
        out.append(("int_trailing_zero", f"{n}.0"))
        if abs(n) >= 1000:
            out.append(("thousands_separator", f"{n:,}"))
        out.append(("unit_text", f"{n}\\text{{ cm}}"))
        out.append(("dollar_sign", f"\\${n}"))
        out.append(("x_prefix", f"x = {n}"))
    if DEC.match(g):
        f = Fraction(g)
        out.append(("decimal_trailing_zero", g + "0"))
        if f.denominator <= 1000:
            out.append(("decimal_to_fraction", f"\\frac{{{f.numerator}}}{{{f.denominator}}}"))
    m = FRAC.match(g)
    if m:
        sign, a, b = m.group(1), int(m.group(2)), int(m.group(3))
        f = Fraction(a, b) * (-1 if sign else 1)
        out.append(("dfrac", f"{sign}\\dfrac{{{a}}}{{{b}}}"))
        out.append(("slash_fraction", f"{sign}{a}/{b}"))
        if b != 0 and terminating(f):
            out.append(("fraction_to_decimal", format(float(f), ".10g")))
        out.append(("scaled_fraction", f"{sign}\\frac{{{2 * a}}}{{{2 * b}}}"))
    m = ROOT.match(g)
    if m:
        k = int(m.group(1) or "1")
        r = int(m.group(2))
        out.append(("sqrt_merge", f"\\sqrt{{{k * k * r}}}"))
        out.append(("sqrt_power", f"{k} \\cdot {r}^{{1/2}}" if k != 1 else f"{r}^{{1/2}}"))
    if "\\frac" in g and not FRAC.match(g):
        out.append(("dfrac", g.replace("\\frac", "\\dfrac")))
    if "\\pi" in g and "\\frac{\\pi}" in g:
        out.append(("pi_over", g.replace("\\frac{\\pi}{", "\\pi/{").replace("}{", "}/{")))
    parts = split_top(g)
    if len(parts) >= 2 and not g.startswith(("(", "[")):
        shuffled = parts[:]
        while shuffled == parts:
            rng.shuffle(shuffled)
        out.append(("reordered_list", ", ".join(shuffled)))
    if g.startswith("\\{") and g.endswith("\\}"):
        inner = split_top(g[2:-2])
        if len(inner) >= 2:
            out.append(("reordered_set", "\\{" + ", ".join(reversed(inner)) + "\\}"))
    if TUPLE.match(g) and len(split_top(g[1:-1])) >= 2 and "(" not in g[1:-1]:
        out.append(("left_right", "\\left(" + g[1:-1] + "\\right)"))
    if re.search(r"[a-z]", re.sub(r"\\[A-Za-z]+", "", g)) and "=" not in g and "," not in g:
        out.append(("symbolic_rewrite", sympy_rewrite(g)))
        out.append(("y_prefix", f"y = {g}"))
    if "+\\infty" in g:
        out.append(("infinity_sign", g.replace("+\\infty", "\\infty")))
    elif "\\infty" in g and "-\\infty" not in g:
        out.append(("infinity_sign", g.replace("\\infty", "+\\infty")))
    union = [p.strip() for p in g.split("\\cup")]
    if len(union) >= 2:
        out.append(("reordered_union", " \\cup ".join(reversed(union))))
    if len(parts) >= 2 and all(p.startswith("(") and p.endswith(")") for p in parts):
        out.append(("reordered_tuples", ", ".join(reversed(parts))))
    out.append(("answer_is_phrase", g))
    out.append(("spacing", g.replace("+", " + ").replace(",", ",\\, ") if ("+" in g or "," in g) else f" {g} "))
    return [(k, a) for k, a in out if a and a != "SKIP"]


def sympy_rewrite(g: str) -> str:
    """An expanded or reordered form of a symbolic gold, produced by sympy (math-verify's backend)."""
    try:
        import sympy

        parsed = parse(f"${g}$")
        expr = parsed[0] if parsed else None
        if expr is None or not isinstance(expr, sympy.Basic):
            return "SKIP"
        # Only when the parse kept every variable of the gold, spelled the same (math-verify may
        # drop a trailing letter as a unit, or lower-case a constant).
        letters = set(re.findall(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", g)))
        if letters != {str(v) for v in expr.free_symbols}:
            return "SKIP"
        for candidate in (sympy.expand(expr), sympy.factor(expr), sympy.simplify(expr)):
            text = sympy.latex(candidate)
            if text.replace(" ", "") != g.replace(" ", ""):
                return text
    except Exception:  # noqa: BLE001 - a gold sympy cannot handle just gets no rewrite
        return "SKIP"
    return "SKIP"


def near_misses(gold: str, rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    g = gold.strip()
    if INT.match(g):
        n = int(g)
        out.append(("off_by_one", str(n + rng.choice([-1, 1]))))
        if n != 0:
            out.append(("sign_flip", str(-n)))
        out.append(("digit_swap", str(n * 10)))
        if n != 0:
            out.append(("percent_of_gold", f"{n / 100:g}"))
    if DEC.match(g):
        f = float(g)
        out.append(("decimal_perturbed", f"{f * 1.01:.4g}" if f != 0 else "0.01"))
        out.append(("sign_flip", g[1:] if g.startswith("-") else "-" + g))
    m = FRAC.match(g)
    if m:
        sign, a, b = m.group(1), int(m.group(2)), int(m.group(3))
        out.append(("wrong_fraction", f"{sign}\\frac{{{a + 1}}}{{{b}}}"))
        if a != b:
            out.append(("inverted_fraction", f"{sign}\\frac{{{b}}}{{{a}}}"))
        out.append(("sign_flip", f"{'' if sign else '-'}\\frac{{{a}}}{{{b}}}"))
    m = ROOT.match(g)
    if m:
        k = int(m.group(1) or "1")
        r = int(m.group(2))
        out.append(("wrong_radical", f"{k if k != 1 else ''}\\sqrt{{{r + 1}}}"))
    m = INTERVAL.match(g)
    if m and "\\infty" not in (m.group(1) + m.group(4)):
        lo, a, b, hi = m.groups()
        flipped_lo = "(" if lo == "[" else "["
        out.append(("interval_bracket", f"{flipped_lo}{a},{b}{hi}"))
    if TUPLE.match(g):
        items = split_top(g[1:-1])
        if len(items) == 2 and items[0] != items[1]:
            out.append(("swapped_tuple", f"({items[1]},{items[0]})"))
    parts = split_top(g)
    if len(parts) >= 2 and not g.startswith(("(", "[")):
        out.append(("dropped_member", ", ".join(parts[:-1])))
    if len(parts) >= 2 and all(p.startswith("(") and p.endswith(")") for p in parts):
        inner = split_top(parts[0][1:-1])
        if len(inner) >= 2 and inner[0] != inner[1]:
            swapped = "(" + ", ".join([inner[1], inner[0], *inner[2:]]) + ")"
            out.append(("swapped_in_tuple", ", ".join([swapped, *parts[1:]])))
    if g.startswith("\\{") and g.endswith("\\}"):
        inner = split_top(g[2:-2])
        if len(inner) >= 2:
            out.append(("dropped_member", "\\{" + ", ".join(inner[:-1]) + "\\}"))
    if "\\cup" in g and "[" in g:
        out.append(("interval_bracket", g.replace("[", "(", 1)))
    if re.search(r"[a-z]", re.sub(r"\\[A-Za-z]+", "", g)):
        if "+" in g:
            out.append(("plus_to_minus", g.replace("+", "-", 1)))
        digit = re.search(r"(?<![\^_{])\b([2-9])\b", g)
        if digit:
            d = int(digit.group(1))
            out.append(("coefficient_changed", g[: digit.start()] + str(d + 1) + g[digit.end() :]))
    if "\\sqrt" in g and not ROOT.match(g):
        out.append(("radical_changed", re.sub(r"\\sqrt\{(\d+)\}", lambda mm: f"\\sqrt{{{int(mm.group(1)) + 1}}}", g, count=1)))
    if "\\pi" in g:
        out.append(("pi_dropped", g.replace("\\pi", "", 1) or "1"))
    return [(k, a) for k, a in out if a and a.replace(" ", "") != g.replace(" ", "")]


def response_for(kind: str, answer: str, rng: random.Random) -> str:
    """Dresses an answer as the tail of a model response (boxed by default)."""
    if kind == "answer_is_phrase":
        return f"Putting it together, the final answer is ${answer}$."
    if kind == "fbox":
        return f"Therefore $\\fbox{{{answer}}}$"
    if kind in ("unit_text", "dollar_sign", "thousands_separator") and rng.random() < 0.5:
        return f"So the answer is ${answer}$."
    return f"Therefore, the answer is $\\boxed{{{answer}}}$."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(here.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(here / "test" / "fixtures" / "math" / "grader_pairs.jsonl"))
    args = ap.parse_args()
    rng = random.Random(SEED)

    candidates: list[dict] = []
    for set_name in SETS:
        rows = [json.loads(line) for line in open(Path(args.data) / "bon-eval" / set_name / "test.jsonl", encoding="utf8")]
        golds = []
        for row in rows:
            gold = gold_of(set_name, row)
            if gold and usable(gold) and gold not in golds:
                golds.append(gold)
        # Prefer variety: half plain numbers at most.
        numeric = [g for g in golds if re.match(r"^-?[\d.]+$", g)]
        structured = [g for g in golds if g not in numeric and re.search(r"[(\[,]|\\\{|\\sqrt|\\pi|\\frac", g)]
        other = [g for g in golds if g not in numeric and g not in structured]
        for group in (numeric, structured, other):
            rng.shuffle(group)
        picked = structured[:10] + other[:8] + numeric[: GOLDS_PER_SET // 2]
        # Shapes that are rare per set (intervals, tuples, sets, unions, radicals, lists) are
        # drawn from this set's share of a pooled quota so every shape gets a few golds.
        for bucket in SHAPES.values():
            members = [g for g in golds if bucket(g) and g not in picked]
            rng.shuffle(members)
            picked += members[:3]
        for gold in picked:
            for intent, rewrites in (("equivalent", equivalents(gold, rng)), ("near_miss", near_misses(gold, rng))):
                for kind, answer in rewrites:
                    candidates.append({"source": set_name, "gold": gold, "kind": kind, "intent": intent, "answer": answer})

    # Cap each kind so no single rewrite dominates, then sample to the target size.
    rng.shuffle(candidates)
    per_kind: dict[str, int] = {}
    chosen = []
    for c in candidates:
        if per_kind.get(c["kind"], 0) >= MAX_PER_KIND:
            continue
        per_kind[c["kind"]] = per_kind.get(c["kind"], 0) + 1
        chosen.append(c)
    chosen = chosen[:TARGET_PAIRS]
    chosen.sort(key=lambda c: (c["source"], c["gold"], c["intent"], c["kind"]))

    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    labelled = 0
    with open(out_path, "w", encoding="utf8") as f:
        for i, c in enumerate(chosen):
            response = response_for(c["kind"], c["answer"], rng)
            gold_parsed = parse(f"${c['gold']}$")
            pred_parsed = parse(response)
            label = bool(verify(gold_parsed, pred_parsed))
            labelled += label
            record = {
                "id": i,
                "source": c["source"],
                "kind": c["kind"],
                "intent": c["intent"],
                "gold": c["gold"],
                "response": response,
                "reference": label,
                "reference_gold_parsed": str(gold_parsed[0]) if gold_parsed else None,
                "reference_response_parsed": str(pred_parsed[0]) if pred_parsed else None,
            }
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(chosen)} pairs ({labelled} labelled equivalent by math-verify) to {out_path}")
    print("kinds:", json.dumps(dict(sorted(per_kind.items()))))


if __name__ == "__main__":
    main()
