"""Reference for src/train/optimizer.ts, gradients.ts and schedule.ts.

Runs torch.optim.AdamW (decoupled weight decay, biases and norm weights in a no-decay group),
torch.nn.utils.clip_grad_norm_ and transformers' warmup schedules on small tensors with fixed
gradients, and writes every intermediate value to test/fixtures/train/adamw.json.

    python scripts/make_adamw_fixture.py
"""
import json
from pathlib import Path

import torch
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "train" / "adamw.json"


def tolist(t):
    return t.detach().reshape(-1).tolist()


def run_case(name, schedule, lr, weight_decay, max_norm, warmup, total, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    shapes = {
        "layer.weight": (3, 4),
        "layer.bias": (4,),
        "model.norm.weight": (4,),
        "embed.weight": (5, 2),
    }
    params = {n: torch.nn.Parameter(torch.randn(*s, generator=gen)) for n, s in shapes.items()}
    no_decay = {"layer.bias", "model.norm.weight"}
    groups = [
        {"params": [p for n, p in params.items() if n not in no_decay], "weight_decay": weight_decay},
        {"params": [p for n, p in params.items() if n in no_decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    make = {
        "cosine": lambda: get_cosine_schedule_with_warmup(opt, warmup, total),
        "linear": lambda: get_linear_schedule_with_warmup(opt, warmup, total),
        "constant": lambda: get_constant_schedule_with_warmup(opt, warmup),
    }[schedule]
    sched = make()
    initial = {n: tolist(p) for n, p in params.items()}
    records = []
    for step in range(steps):
        # Gradients of varying scale so that clipping is active on some steps and not on others.
        scale = [0.3, 4.0, 0.05, 2.5, 1.0, 8.0, 0.2, 3.0][step % 8]
        grads = {n: torch.randn(*shapes[n], generator=gen) * scale for n in shapes}
        for n, p in params.items():
            p.grad = grads[n].clone()
        step_lr = opt.param_groups[0]["lr"]
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
        opt.step()
        sched.step()
        records.append(
            {
                "grads": {n: tolist(g) for n, g in grads.items()},
                "lr": step_lr,
                "norm": float(norm),
                "params": {n: tolist(p) for n, p in params.items()},
            }
        )
    state = {}
    for n, p in params.items():
        st = opt.state[p]
        state[n] = {"exp_avg": tolist(st["exp_avg"]), "exp_avg_sq": tolist(st["exp_avg_sq"]), "step": float(st["step"])}
    return {
        "name": name,
        "schedule": schedule,
        "lr": lr,
        "weight_decay": weight_decay,
        "max_norm": max_norm,
        "warmup": warmup,
        "total": total,
        "shapes": {n: list(s) for n, s in shapes.items()},
        "no_decay": sorted(no_decay),
        "initial": initial,
        "steps": records,
        "final_state": state,
    }


def schedule_table():
    """Multipliers from transformers for several (warmup, total) pairs, read off LambdaLR."""
    out = []
    for kind, factory in [
        ("cosine", get_cosine_schedule_with_warmup),
        ("linear", get_linear_schedule_with_warmup),
        ("constant", None),
    ]:
        for warmup, total in [(0, 10), (3, 10), (5, 17), (10, 10)]:
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.SGD([p], lr=1.0)
            sched = get_constant_schedule_with_warmup(opt, warmup) if factory is None else factory(opt, warmup, total)
            values = []
            for _ in range(total + 3):
                values.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            out.append({"kind": kind, "warmup": warmup, "total": total, "multipliers": values})
    return out


def main():
    torch.manual_seed(0)
    cases = [
        run_case("cosine-wd", "cosine", 1e-2, 0.1, 1.0, 2, 8, 8, seed=1),
        run_case("linear-wd", "linear", 3e-3, 0.05, 2.0, 1, 6, 6, seed=2),
        run_case("constant-noclip", "constant", 1e-3, 0.0, 1e9, 0, 5, 5, seed=3),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = {"torch": torch.__version__, "cases": cases, "schedules": schedule_table()}
    OUT.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
