#!/usr/bin/env python3
"""Reference PRMBench metrics, written from the official evaluation in plain Python.

Official code: ssmisya/PRMBench (commit a1ae4ea), mr_eval/tasks/prmtest_classified/task.py
(load_data_function, evaluate_function, eval_on_hallucination_step) and the paper's table
script mr_visualize/eval_res_view/draw_figure/draw_radar.ipynb (get_prmscore_from_current_res_dict).
This script re-implements those semantics independently of prmkit's TypeScript:

  loader   every *.jsonl of the folder; item id f"{classification}_{idx}" (first line wins), and
           for each "redundency" line, once per idx, an item f"correct_{idx}" made of the ORIGINAL
           question and process with no error step (classification "correct")
  labels   step i is valid when score > threshold (the PRM wrappers' validity_threshold, 0.5)
  counts   per item over its steps (error_steps are 1-based): error step judged invalid -> TN,
           error step judged valid -> FP, other step judged valid -> TP, else FN
  totals   summed over every item except the "correct" ones; per class over the class
  F1       precision = TP/(TP+FP), recall = TP/(TP+FN), f1 = 2PR/(P+R); negative precision =
           TN/(TN+FN), negative recall = TN/(TN+FP), negative f1 likewise; an empty denominator
           gives the official sentinel -1, kept here as is
  PRMScore overall 0.5 f1 + 0.5 negative f1 from the totals; per class the same, except
           multi_solutions: its f1 alone

For every item it builds step scores regenerated deterministically from a seed (no score file
needs committing) and writes the figures to test/fixtures/eval/prmbench_reference.json;
test/eval/prmbench-reference.test.ts regenerates the same scores in TypeScript, runs
`prmkit eval prmbench --scores` and compares every figure to 1e-9.

Score generators (u = uniform in [0,1) from a hash of "seed:id:step", as in
processbench_reference.py):
  random    : u
  noisy     : error steps 0.65u, other steps 0.35 + 0.65u
  all-valid : 1.0 (a constant: the degenerate negative counts)
  none-valid: 0.0

Usage: python3 scripts/reference/prmbench_reference.py [--data DIR] [--out FILE] [--write-scores DIR]
"""
import argparse
import json
import os

CASES = [  # (name, generator, seed, threshold)
    ("random/0.5", "random", 1, 0.5),
    ("random/0.3", "random", 1, 0.3),
    ("noisy/0.5", "noisy", 2, 0.5),
    ("all-valid/0.5", "all-valid", 0, 0.5),
    ("none-valid/0.5", "none-valid", 0, 0.5),
]
CORRECT_SOURCE = "redundency"
F1_ONLY = "multi_solutions"


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


def uniform(seed, item_id, step):
    return fmix32(fnv1a32(f"{seed}:{item_id}:{step}")) / 4294967296.0


def make_scores(kind, seed, item):
    errors = {e - 1 for e in item["error_steps"]}
    out = []
    for j in range(len(item["steps"])):
        u = uniform(seed, item["idx"], j)
        if kind == "random":
            out.append(u)
        elif kind == "noisy":
            out.append(0.65 * u if j in errors else 0.35 + 0.65 * u)
        elif kind == "all-valid":
            out.append(1.0)
        elif kind == "none-valid":
            out.append(0.0)
        else:
            raise ValueError(kind)
    return out


def load(data_dir):
    """The official loader's items (order: os.listdir, which no metric depends on)."""
    raw = []
    for name in os.listdir(data_dir):
        if name.endswith(".jsonl"):
            with open(os.path.join(data_dir, name), encoding="utf-8") as f:
                raw.extend(json.loads(line) for line in f if line.strip())
    items, seen = [], set()
    for rec in raw:
        cls = rec["classification"]
        if cls == CORRECT_SOURCE:
            cid = f"correct_{rec['idx']}"
            if cid not in seen:
                seen.add(cid)
                items.append({"idx": cid, "steps": rec["original_process"], "error_steps": [], "classification": "correct"})
        iid = f"{cls}_{rec['idx']}"
        if iid not in seen:
            seen.add(iid)
            items.append({"idx": iid, "steps": rec["modified_process"], "error_steps": rec["error_steps"], "classification": cls})
    return items


def item_counts(error_steps, labels):
    errors = [e - 1 for e in error_steps]
    c = {"TP": 0, "FP": 0, "TN": 0, "FN": 0}
    for i, valid in enumerate(labels):
        if i in errors:
            c["FP" if valid else "TN"] += 1
        else:
            c["TP" if valid else "FN"] += 1
    return c


def f1_block(c):
    tp, fp, tn, fn = c["TP"], c["FP"], c["TN"], c["FN"]
    p = tp / (tp + fp) if tp + fp != 0 else -1
    r = tp / (tp + fn) if tp + fn != 0 else -1
    f1 = 2 * p * r / (p + r) if p + r != 0 else -1
    np_ = tn / (tn + fn) if tn + fn != 0 else -1
    nr = tn / (tn + fp) if tn + fp != 0 else -1
    nf1 = 2 * np_ * nr / (np_ + nr) if np_ + nr != 0 else -1
    return {"precision": p, "recall": r, "f1": f1, "negative_precision": np_, "negative_recall": nr, "negative_f1": nf1}


def evaluate(items, scores, threshold):
    total = {"TP": 0, "FP": 0, "TN": 0, "FN": 0}
    per_class, n_class = {}, {}
    for it in items:
        labels = [s > threshold for s in scores[it["idx"]]]
        c = item_counts(it["error_steps"], labels)
        cls = it["classification"]
        acc = per_class.setdefault(cls, {"TP": 0, "FP": 0, "TN": 0, "FN": 0})
        n_class[cls] = n_class.get(cls, 0) + 1
        for k in c:
            acc[k] += c[k]
            if cls != "correct":
                total[k] += c[k]
    overall = f1_block(total)
    overall["counts"] = total
    overall["prmscore"] = 0.5 * overall["f1"] + 0.5 * overall["negative_f1"]
    classes = {}
    for cls, c in per_class.items():
        b = f1_block(c)
        b["counts"] = c
        b["n"] = n_class[cls]
        if cls != "correct":
            b["prmscore"] = b["f1"] if cls == F1_ONLY else 0.5 * b["f1"] + 0.5 * b["negative_f1"]
        classes[cls] = b
    return {"n": len(items), "overall": overall, "classes": classes}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(repo), "shared", "data", "prmbench"))
    ap.add_argument("--out", default=os.path.join(repo, "test", "fixtures", "eval", "prmbench_reference.json"))
    ap.add_argument("--write-scores", metavar="DIR", help="also write <generator>.jsonl score files here")
    args = ap.parse_args()

    items = load(args.data)
    cases = {}
    for name, kind, seed, threshold in CASES:
        scores = {it["idx"]: make_scores(kind, seed, it) for it in items}
        if args.write_scores:
            os.makedirs(args.write_scores, exist_ok=True)
            with open(os.path.join(args.write_scores, f"{kind}.jsonl"), "w", encoding="utf-8") as f:
                for it in items:
                    f.write(json.dumps({"id": it["idx"], "step_scores": scores[it["idx"]]}) + "\n")
        res = evaluate(items, scores, threshold)
        res.update({"generator": kind, "seed": seed, "threshold": threshold})
        cases[name] = res
        print(f"{name}: PRMScore {100 * res['overall']['prmscore']:.4f}")

    out = {"n_items": len(items), "cases": cases}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
