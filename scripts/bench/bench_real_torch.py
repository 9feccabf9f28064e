"""Real-size training throughput and peak RSS of PyTorch CPU: the peer of scripts/bench/bench-real-train.ts.

Loads the Qwen2.5-0.5B-shaped PRM made by scripts/bench/make_real_prm.py from its bf16 shards into
transformers' Qwen2Model + the PRM head in fp32 (built on the meta device, so no random copy is
made first), then trains it on random tokens with cross-entropy at the step tokens, global-norm
clipping and AdamW (no decay on biases and norms), as prmkit does. --checkpointing turns on
transformers' gradient checkpointing (the peer of prmkit's train.recompute). --lora R wraps the
backbone in PEFT's LoRA (rank R, alpha 2R, dropout 0.05, every projection) and trains the adapter
and the head only (the peer of prmkit's model.lora).

    python3 scripts/bench/bench_real_torch.py --model DIR --batch 2 --seq 512 [--steps 3] [--warmup 1]
        [--threads 2] [--checkpointing] [--lora R]

Prints one JSON object on stdout.
"""
import argparse
import json
import os
import resource
import time

import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2Model
from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps-per-seq", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--lora", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.model, "config.json")) as f:
        raw = json.load(f)
    cfg = Qwen2Config(**{k: v for k, v in raw.items() if k not in ("architectures", "torch_dtype")})
    cfg._attn_implementation = "sdpa"
    t0 = time.perf_counter()
    with torch.device("meta"):
        model = Qwen2Model(cfg)
        head = torch.nn.Sequential(torch.nn.Linear(cfg.hidden_size, cfg.hidden_size), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden_size, 2))
    with open(os.path.join(args.model, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    body, top = {}, {}
    for shard in shards:
        for name, t in load_file(os.path.join(args.model, shard)).items():
            t = t.to(torch.float32)
            if name.startswith("model."):
                body[name[len("model."):]] = t
            elif name.startswith("score."):
                top[name[len("score."):]] = t
    model.load_state_dict(body, strict=True, assign=True)
    head.load_state_dict(top, strict=True, assign=True)
    del body, top
    # Buffers made on the meta device hold no values: the rotary embedding is built again on the CPU.
    model.rotary_emb = Qwen2RotaryEmbedding(config=cfg)
    load_s = time.perf_counter() - t0
    rss_after_load = rss_mb()
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if args.lora:
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        model = get_peft_model(model, LoraConfig(r=args.lora, lora_alpha=2 * args.lora, lora_dropout=0.05, target_modules=targets))
    model.train()
    head.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad] + [("score." + n, p) for n, p in head.named_parameters()]
    params = [p for _, p in named]
    decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
    no_decay = [p for n, p in named if n.endswith("bias") or "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)

    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), generator=gen)
    mask = torch.ones(args.batch, args.seq, dtype=torch.long)
    stride = args.seq // args.steps_per_seq
    positions = torch.arange(stride - 1, args.seq, stride)[: args.steps_per_seq]
    flat = (torch.arange(args.batch)[:, None] * args.seq + positions[None, :]).reshape(-1)
    labels = torch.randint(0, 2, (flat.numel(),), generator=gen)

    def step() -> float:
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        rows = hidden.reshape(-1, cfg.hidden_size)[flat]
        loss = torch.nn.functional.cross_entropy(head(rows), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    step_s, rss = [], []
    for _ in range(args.warmup + args.steps):
        t = time.perf_counter()
        step()
        step_s.append(time.perf_counter() - t)
        rss.append(round(rss_mb()))
    timed = step_s[args.warmup:]
    per_step = sum(timed) / len(timed)
    print(json.dumps({
        "backend": "torch-cpu",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": [args.batch, args.seq],
        "checkpointing": args.checkpointing,
        "lora": args.lora or None,
        "parameters": sum(p.numel() for p in params),
        "load_s": load_s,
        "rss_after_load_mb": round(rss_after_load),
        "step_s": [round(s, 2) for s in step_s],
        "s_per_step": per_step,
        "train_tokens_per_s": args.batch * args.seq / per_step,
        "peak_rss_mb": round(peak_rss_mb()),
        "rss_per_step_mb": rss,
    }))


if __name__ == "__main__":
    main()
