#!/usr/bin/env python3
"""Reference ProcessBench metrics, written from the benchmark's definition in plain Python.

For every sample of ../shared/data/processbench (all 3,400) it builds step-score files that are
regenerated deterministically from a seed (no score file needs committing), then computes the
metrics for threshold 0.5 and for the `auto` threshold, and writes them to
test/fixtures/eval/processbench_reference.json. test/eval/processbench-reference.test.ts
regenerates the same score files in TypeScript, runs `prmkit eval processbench --scores` and
compares every figure to 1e-9.

Definitions (ProcessBench, arXiv 2412.06559; PAPER.md):
  prediction  = index of the first step with score < threshold, else -1
  acc_error   = 100 * mean(prediction == label) over samples with label != -1
  acc_correct = 100 * mean(prediction == -1)    over samples with label == -1
  f1          = 2 * acc_error * acc_correct / (acc_error + acc_correct)   (0 if both are 0)
  avg_f1      = unweighted mean of the subset F1s
  extracted   = 100 * mean(prediction == label) over label != -1 and final_answer_correct
  auto        = the threshold with the best gsm8k F1 among: the smallest distinct gsm8k score,
                and the midpoint of every pair of consecutive distinct gsm8k scores; on equal
                F1 the smallest threshold. Searched here by brute force (every candidate,
                every sample), independently of the interval counting used in TypeScript.

Score generators (u = uniform in [0,1) from a hash of "seed:id:step"):
  random : u
  noisy  : steps before the first error 0.35 + 0.65u, the first wrong step 0.65u, later steps u,
           all steps of a correct solution 0.35 + 0.65u
  oracle : 1.0 before the first error, 0.0 from it on; 1.0 everywhere for correct solutions

Usage: python3 scripts/reference/processbench_reference.py [--data DIR] [--out FILE] [--write-scores DIR]
"""
import argparse
import json
import os

SUBSETS = ["gsm8k", "math", "olympiadbench", "omnimath"]
GENERATORS = {"random": 1, "noisy": 2, "oracle": 0}  # name -> seed
CONFUSION_MAX = 10


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


def uniform(seed, sample_id, step):
    return fmix32(fnv1a32(f"{seed}:{sample_id}:{step}")) / 4294967296.0


def make_scores(kind, seed, sample):
    label = sample["label"]
    n = len(sample["steps"])
    scores = []
    for j in range(n):
        u = uniform(seed, sample["id"], j)
        if kind == "random":
            s = u
        elif kind == "noisy":
            if label == -1 or j < label:
                s = 0.35 + 0.65 * u
            elif j == label:
                s = 0.65 * u
            else:
                s = u
        elif kind == "oracle":
            s = 1.0 if (label == -1 or j < label) else 0.0
        else:
            raise ValueError(kind)
        scores.append(s)
    return scores


def predict(scores, threshold):
    for j, s in enumerate(scores):
        if s < threshold:
            return j
    return -1


def subset_metrics(rows):
    err = [r for r in rows if r["label"] != -1]
    cor = [r for r in rows if r["label"] == -1]
    acc_error = 100 * sum(1 for r in err if r["predicted"] == r["label"]) / len(err) if err else None
    acc_correct = 100 * sum(1 for r in cor if r["predicted"] == -1) / len(cor) if cor else None
    if acc_error is None or acc_correct is None:
        f1 = None
    elif acc_error + acc_correct == 0:
        f1 = 0.0
    else:
        f1 = 2 * acc_error * acc_correct / (acc_error + acc_correct)
    return {"n": len(rows), "n_error": len(err), "n_correct": len(cor),
            "acc_error": acc_error, "acc_correct": acc_correct, "f1": f1}


def bucket(pos):
    return 0 if pos < 0 else min(pos, CONFUSION_MAX) + 1


def metrics(samples, scores, threshold):
    rows = []
    for s in samples:
        rows.append({"subset": s["subset"], "label": s["label"], "predicted": predict(scores[s["id"]], threshold),
                     "fac": s["final_answer_correct"]})
    subsets = {}
    for name in SUBSETS:
        subsets[name] = subset_metrics([r for r in rows if r["subset"] == name])
    f1s = [m["f1"] for m in subsets.values() if m["f1"] is not None]
    extracted = [r for r in rows if r["label"] != -1 and r["fac"]]
    extracted_accuracy = 100 * sum(1 for r in extracted if r["predicted"] == r["label"]) / len(extracted)
    confusion = [[0] * (CONFUSION_MAX + 2) for _ in range(CONFUSION_MAX + 2)]
    for r in rows:
        confusion[bucket(r["label"])][bucket(r["predicted"])] += 1
    return {
        "subsets": subsets,
        "avg_f1": sum(f1s) / len(f1s),
        "extracted_accuracy": extracted_accuracy,
        "n_extracted": len(extracted),
        "confusion": confusion,
    }


def auto_threshold(samples, scores, subset="gsm8k"):
    chosen = [s for s in samples if s["subset"] == subset]
    values = sorted({v for s in chosen for v in scores[s["id"]]})
    candidates = [values[0]] + [(values[i] + values[i + 1]) / 2 for i in range(len(values) - 1)]
    best_t, best_f1 = None, None
    for t in candidates:
        rows = [{"label": s["label"], "predicted": predict(scores[s["id"]], t)} for s in chosen]
        f1 = subset_metrics(rows)["f1"]
        if best_f1 is None or f1 > best_f1:  # strict: ties keep the smaller threshold
            best_t, best_f1 = t, f1
    return best_t, best_f1


def load(data_dir):
    samples = []
    for name in SUBSETS:
        with open(os.path.join(data_dir, f"{name}.json"), encoding="utf-8") as f:
            for rec in json.load(f):
                rec["subset"] = name
                samples.append(rec)
    return samples


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(repo), "shared", "data", "processbench"))
    ap.add_argument("--out", default=os.path.join(repo, "test", "fixtures", "eval", "processbench_reference.json"))
    ap.add_argument("--write-scores", metavar="DIR", help="also write <generator>.jsonl score files here")
    args = ap.parse_args()

    samples = load(args.data)
    cases = {}
    for kind, seed in GENERATORS.items():
        scores = {s["id"]: make_scores(kind, seed, s) for s in samples}
        if args.write_scores:
            os.makedirs(args.write_scores, exist_ok=True)
            with open(os.path.join(args.write_scores, f"{kind}.jsonl"), "w", encoding="utf-8") as f:
                for s in samples:
                    f.write(json.dumps({"id": s["id"], "step_scores": scores[s["id"]]}) + "\n")
        fixed = metrics(samples, scores, 0.5)
        fixed["threshold"] = 0.5
        cases[f"{kind}/0.5"] = fixed
        t, f1 = auto_threshold(samples, scores)
        auto = metrics(samples, scores, t)
        auto["threshold"] = t
        auto["threshold_subset_f1"] = f1
        cases[f"{kind}/auto"] = auto
        print(f"{kind}: avg_f1 {fixed['avg_f1']:.4f} at 0.5, {auto['avg_f1']:.4f} at auto {t!r}")

    out = {
        "n_samples": len(samples),
        "generators": {k: {"seed": v} for k, v in GENERATORS.items()},
        "confusion_max_position": CONFUSION_MAX,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
