"""Reference gradients of the PRM training loss for the golden GQA checkpoint.

Loads test/fixtures/model/qwen2-gqa in PyTorch (transformers Qwen2Model + the PRM head, as
make_golden_qwen2.py builds it), takes the left- and right-padded batches of its reference.json,
puts deterministic hard labels on the step positions, and computes the mean 2-class
cross-entropy over the step positions only, then backpropagates. Writes gradients.json beside the
checkpoint: per parameter (HF names and layouts) the gradient's sum, L2 norm and a fixed sample of
entries, so prmkit's backward pass through the whole model is checked against torch autograd.

    python3 scripts/make_grad_fixture.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden_qwen2 import PrmForCheck  # noqa: E402
from transformers import Qwen2Config  # noqa: E402

SAMPLE_ENTRIES = 16


def labels_for(batch):
    # Step j of row b is "wrong" when (b + j) % 3 == 2: both classes present, fixed across runs.
    return [[0 if (b + j) % 3 == 2 else 1 for j in range(len(pos))] for b, pos in enumerate(batch["step_positions"])]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ckpt = os.path.join(here, "..", "test", "fixtures", "model", "qwen2-gqa")
    with open(os.path.join(ckpt, "reference.json")) as f:
        ref = json.load(f)
    cfg = Qwen2Config.from_pretrained(ckpt)
    cfg._attn_implementation = "eager"
    model = PrmForCheck.from_pretrained(ckpt, config=cfg, dtype=torch.float32)
    model.train()
    out = {"torch": torch.__version__, "loss": "mean 2-class cross-entropy over step positions", "batches": []}
    for batch in ref["batches"]:
        model.zero_grad()
        ids = torch.tensor(batch["input_ids"])
        mask = torch.tensor(batch["attention_mask"])
        labels = labels_for(batch)
        logits = model(ids, mask)
        rows = torch.stack([logits[b, p] for b, pos in enumerate(batch["step_positions"]) for p in pos])
        target = torch.tensor([y for row in labels for y in row])
        loss = torch.nn.functional.cross_entropy(rows, target)
        loss.backward()
        grads = {}
        gen = torch.Generator().manual_seed(0)
        for name, p in sorted(model.named_parameters()):
            g = p.grad.detach().reshape(-1).double()
            idx = torch.randperm(g.numel(), generator=gen)[:SAMPLE_ENTRIES]
            grads[name] = {
                "shape": list(p.shape),
                "sum": g.sum().item(),
                "l2": g.norm().item(),
                "index": idx.tolist(),
                "values": g[idx].tolist(),
            }
        out["batches"].append({"padding": batch["padding"], "labels": labels, "loss": loss.item(), "grads": grads})
    with open(os.path.join(ckpt, "gradients.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"wrote {os.path.join(ckpt, 'gradients.json')}: {len(out['batches'])} batches, "
          f"{len(out['batches'][0]['grads'])} parameters")


if __name__ == "__main__":
    main()
