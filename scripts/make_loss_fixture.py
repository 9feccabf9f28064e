"""Reference for src/train/loss.ts: loss values and gradients w.r.t. the logits, by torch autograd.

Each case uses random logits [B, T, 2], step positions per row and labels (hard 0/1 or soft);
the loss is the one documented in loss.ts. For hard labels with ce the script also checks that
it equals torch's F.cross_entropy(weight=...), and for unweighted soft ce F.cross_entropy with
probability targets, so the definition is anchored to torch's own losses.

    python scripts/make_loss_fixture.py
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "train" / "loss.json"


def prm_loss(logits, positions, labels, kind, w):
    rows, cols, targets = [], [], []
    for b, (pos, lab) in enumerate(zip(positions, labels)):
        for j, p in enumerate(lab):
            rows.append(b)
            cols.append(pos[j])
            targets.append(p)
    sel = logits[torch.tensor(rows), torch.tensor(cols)]  # [N, 2]
    p = torch.tensor(targets, dtype=torch.float64)
    logp = F.log_softmax(sel, dim=-1)
    omega = w[0] * (1 - p) + w[1] * p
    if kind == "ce":
        per = -(w[0] * (1 - p) * logp[:, 0] + w[1] * p * logp[:, 1])
        total = per.sum()
    elif kind == "bce":
        q = logp[:, 1].exp()
        total = (F.binary_cross_entropy(q, p, reduction="none") * omega).sum()
    elif kind == "mse":
        q = logp[:, 1].exp()
        total = (omega * (q - p) ** 2).sum()
    loss = total / omega.sum()
    return loss, sel, p


def main():
    gen = torch.Generator().manual_seed(0)
    B, T = 3, 7
    positions = [[1, 3, 6], [0, 2, 4, 5], [6]]
    hard = [[1, 1, 0], [1, 0], [0]]  # row 1: only the first two steps supervised
    soft = [[0.875, 0.5, 0.0], [1.0, 0.25, 0.125, 0.0], [0.625]]
    cases = []
    for label_name, labels in [("hard", hard), ("soft", soft)]:
        for kind in ["ce", "bce", "mse"]:
            for w in [(1.0, 1.0), (2.5, 0.5)]:
                logits = (torch.randn(B, T, 2, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
                loss, sel, p = prm_loss(logits, positions, labels, kind, w)
                loss.backward()
                if kind == "ce" and label_name == "hard":
                    ref = F.cross_entropy(sel, p.long(), weight=torch.tensor(w, dtype=torch.float64))
                    assert torch.allclose(ref, loss), (ref, loss)
                if kind == "ce" and label_name == "soft" and w == (1.0, 1.0):
                    ref = F.cross_entropy(sel, torch.stack([1 - p, p], dim=1))
                    assert torch.allclose(ref, loss), (ref, loss)
                cases.append(
                    {
                        "name": f"{label_name}-{kind}-w{w[0]}_{w[1]}",
                        "kind": kind,
                        "class_weights": list(w),
                        "labels": labels,
                        "positions": positions,
                        "shape": [B, T, 2],
                        "logits": logits.detach().reshape(-1).tolist(),
                        "loss": loss.item(),
                        "grad": logits.grad.reshape(-1).tolist(),
                    }
                )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
