"""Training throughput of PyTorch CPU on prmkit's bench config (see scripts/bench/bench.ts).

The same architecture as prmkit's PRM: transformers' Qwen2Model plus the Qwen2.5-Math-PRM head
(Linear(h,h) -> ReLU -> Linear(h,2)), cross-entropy at the step-token positions, global-norm
clipping and AdamW, fp32, random token data; torch.set_num_threads(threads).

    python3 scripts/bench/bench_torch.py --threads 2 --warmup 2 --steps 5 [--vocab 4096 ...]

Prints one JSON object on stdout.
"""
import argparse
import json
import resource
import time

import torch
from transformers import Qwen2Config, Qwen2Model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps-per-seq", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = Qwen2Config(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        intermediate_size=args.intermediate,
        max_position_embeddings=max(512, args.seq),
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    model = Qwen2Model(cfg)
    head = torch.nn.Sequential(torch.nn.Linear(args.hidden, args.hidden), torch.nn.ReLU(), torch.nn.Linear(args.hidden, 2))
    named = list(model.named_parameters()) + [("score." + n, p) for n, p in head.named_parameters()]
    params = [p for _, p in named]
    # As prmkit's AdamW: no decay on biases and norm weights. torch's default implementation
    # (foreach) is used, as a user would get it.
    decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
    no_decay = [p for n, p in named if n.endswith("bias") or "norm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr
    )
    model.train()
    head.train()

    gen = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen)
    mask = torch.ones(args.batch, args.seq, dtype=torch.long)
    stride = args.seq // args.steps_per_seq
    positions = torch.arange(stride - 1, args.seq, stride)[: args.steps_per_seq]
    flat = (torch.arange(args.batch)[:, None] * args.seq + positions[None, :]).reshape(-1)
    labels = torch.randint(0, 2, (flat.numel(),), generator=gen)

    def step() -> float:
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        rows = hidden.reshape(-1, args.hidden)[flat]
        loss = torch.nn.functional.cross_entropy(head(rows), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    cpu0 = time.process_time()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    total = sum(times)
    tokens = args.batch * args.seq * args.steps
    print(json.dumps({
        "backend": "torch-cpu",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "ms_per_step": 1000 * total / args.steps,
        "step_ms": [round(1000 * t, 1) for t in times],
        "train_tokens_per_s": tokens / total,
        "cpu_utilisation": cpu / total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
