#!/usr/bin/env python3
"""Golden fixtures for the prmkit Qwen2 PRM port, computed with PyTorch + transformers.

Default mode writes test/fixtures/model/:
  tokenizer (shared): a tiny byte-level BPE with Qwen's pre-tokenizer and special tokens;
  qwen2-gqa/   GQA (4 heads, 2 kv heads), untied embeddings, f32 single-file weights;
  qwen2-tied/  tied embeddings, 8 heads = 8 kv heads, head_dim 16 != hidden/heads,
               bf16 weights in two shards with model.safetensors.index.json;
each a prmkit checkpoint (config.json, weights, tokenizer.json, tokenizer_config.json) plus
hf_causal_config.json (the same backbone as transformers writes it for Qwen2ForCausalLM) and
reference.json (encoded chat samples, step-token positions, reference logits and step scores,
and right- and left-padded batches of them).

--check DIR --ids FILE loads a checkpoint written by prmkit in PyTorch (Qwen2Model backbone +
Linear -> ReLU -> Linear head, every tensor accounted for), runs the ids in FILE
({"input_ids": [[...]], "attention_mask": [[...]]}) and prints {"logits": ...} as JSON.

Usage: python3 scripts/make_golden_qwen2.py [--out test/fixtures/model]
       python3 scripts/make_golden_qwen2.py --check DIR --ids FILE
"""

import argparse
import json
import math
import os
import sys

import torch
from torch import nn

from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model
from transformers.models.qwen2.modeling_qwen2 import Qwen2PreTrainedModel

STEP_TOKEN = "<extra_0>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", STEP_TOKEN]
SYSTEM_PROMPT = "Reason step by step."

# Qwen2's pre-tokenizer split pattern (digits one by one, letters in runs, etc.).
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# A Qwen-style ChatML template: a default system turn when none is given.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- set rest = messages[1:] %}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- set rest = messages %}"
    "{%- endif %}"
    "{%- for message in rest %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

SAMPLES = [
    {"problem": "What is 2+3?", "steps": ["2+3=5.", "The answer is 5."]},
    {"problem": "Find x if 2x=8.", "steps": ["Divide by 2.", "x=4.", "Check: 2*4=8."]},
    {"problem": "Is 7 prime?", "steps": ["Yes, 7 is prime."]},
]

MODELS = {
    "qwen2-gqa": dict(heads=4, kv_heads=2, head_dim=16, tied=False, dtype="float32", shards=1, seed=1234),
    "qwen2-tied": dict(heads=8, kv_heads=8, head_dim=16, tied=True, dtype="bfloat16", shards=2, seed=5678),
}
VOCAB = 300
HIDDEN = 64
LAYERS = 2
INTERMEDIATE = 128
ROPE_THETA = 10000.0
MAX_POS = 256
RMS_EPS = 1e-6


class PrmForCheck(Qwen2PreTrainedModel):
    """Qwen2.5-Math-PRM's layout: `model` (Qwen2Model) + `score` (Linear, ReLU, Linear)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, config.num_labels))
        self.post_init()

    def forward(self, input_ids, attention_mask):
        # Positions from the mask, as prmkit does: left and right padding give the same result.
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        return self.score(hidden)


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    corpus = []
    for s in SAMPLES:
        corpus += [s["problem"], *s["steps"], SYSTEM_PROMPT, "system", "user", "assistant"]
    corpus += ["The answer is", "step by step", "Divide both sides", "prime number", "Check the result"] * 3
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - len(SPECIAL_TOKENS) - 8,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    # Special tokens after the vocabulary, as in Qwen's tokenizer.
    tok.add_special_tokens(SPECIAL_TOKENS)
    return tok


def tokenizer_config(tok):
    added = {}
    for t in SPECIAL_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True,
        }
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", STEP_TOKEN],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": MAX_POS,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def encode_samples(tok, tok_config):
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    step_id = tok.token_to_id(STEP_TOKEN)
    out = []
    for s in SAMPLES:
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": s["problem"]},
            {"role": "assistant", "content": STEP_TOKEN.join(s["steps"]) + STEP_TOKEN},
        ]
        text = fast.apply_chat_template(messages, chat_template=tok_config["chat_template"], tokenize=False)
        ids = tok.encode(text, add_special_tokens=False).ids
        positions = [i for i, t in enumerate(ids) if t == step_id]
        assert len(positions) == len(s["steps"]), (positions, s)
        out.append({"problem": s["problem"], "steps": s["steps"], "messages": messages, "text": text, "input_ids": ids, "step_positions": positions})
    return out


def make_config(spec, tok):
    cfg = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=spec["heads"],
        num_key_value_heads=spec["kv_heads"],
        head_dim=spec["head_dim"],
        max_position_embeddings=MAX_POS,
        rope_theta=ROPE_THETA,
        rms_norm_eps=RMS_EPS,
        tie_word_embeddings=spec["tied"],
        num_labels=2,
        pad_token_id=tok.token_to_id("<|endoftext|>"),
        eos_token_id=tok.token_to_id("<|im_end|>"),
    )
    cfg._attn_implementation = "eager"
    return cfg


def randomize(model, seed):
    """Weights far from HF's N(0, 0.02) init so logits are O(1) and attention is sharp: a
    1e-4 tolerance then actually tests RoPE, masking, norms and biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith("bias"):
                p.copy_((0.5 if ("q_proj" in name or "k_proj" in name) else 0.1) * r)
            elif "embed_tokens" in name:
                p.copy_(r)
            else:
                fan_in = p.shape[1]
                gain = {"q_proj": 2.0, "k_proj": 2.0, "score.0": 1.5, "score.2": 2.5}
                g_ = next((v for k, v in gain.items() if k in name), 1.0)
                p.copy_(r * g_ / math.sqrt(fan_in))


def prmkit_config(cfg, tok):
    """The config.json prmkit writes (mirrors toHfConfig in src/model/config.ts)."""
    return {
        "architectures": ["Qwen2ForProcessRewardModel"],
        "model_type": "qwen2",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_position_embeddings,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": ROPE_THETA,
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
        "rope_scaling": None,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "use_sliding_window": False,
        "sliding_window": None,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": False,
        "num_labels": 2,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1},
        "torch_dtype": "float32",
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "step_token": STEP_TOKEN,
        "step_token_id": tok.token_to_id(STEP_TOKEN),
    }


def save_weights(model, out_dir, dtype, shards):
    from safetensors.torch import save_file

    state = {k: v.detach().to(getattr(torch, dtype)).contiguous() for k, v in model.state_dict().items()}
    names = list(state.keys())
    if shards == 1:
        save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return
    per = math.ceil(len(names) / shards)
    weight_map = {}
    total = 0
    for i in range(shards):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in names[i * per:(i + 1) * per]}
        save_file(part, os.path.join(out_dir, fname), metadata={"format": "pt"})
        for k, v in part.items():
            weight_map[k] = fname
            total += v.numel() * v.element_size()
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def padded_batch(seqs, pad_id, side):
    width = max(len(s) for s in seqs)
    ids, mask, offsets = [], [], []
    for s in seqs:
        pad = width - len(s)
        if side == "right":
            ids.append(s + [pad_id] * pad)
            mask.append([1] * len(s) + [0] * pad)
            offsets.append(0)
        else:
            ids.append([pad_id] * pad + s)
            mask.append([0] * pad + [1] * len(s))
            offsets.append(pad)
    return ids, mask, offsets


def step_scores(logits, positions):
    probs = torch.softmax(logits, dim=-1)
    return [probs[p, 1].item() for p in positions]


def generate(out_root):
    os.makedirs(out_root, exist_ok=True)
    tok = build_tokenizer()
    tok_config = tokenizer_config(tok)
    samples = encode_samples(tok, tok_config)
    pad_id = tok.token_to_id("<|endoftext|>")
    for name, spec in MODELS.items():
        out_dir = os.path.join(out_root, name)
        os.makedirs(out_dir, exist_ok=True)
        for f in os.listdir(out_dir):
            os.remove(os.path.join(out_dir, f))
        cfg = make_config(spec, tok)
        torch.manual_seed(spec["seed"])
        model = PrmForCheck(cfg)
        randomize(model, spec["seed"])
        # The checkpoint stores the weights in spec["dtype"]; the reference uses exactly the
        # stored values (rounded to bf16 and back for the bf16 model).
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(getattr(torch, spec["dtype"])).to(torch.float32))
        model.eval()
        save_weights(model, out_dir, spec["dtype"], spec["shards"])
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(prmkit_config(cfg, tok), f, indent=2)
        tok.save(os.path.join(out_dir, "tokenizer.json"))
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
            json.dump(tok_config, f, indent=2)
        causal = Qwen2Config(**{k: v for k, v in cfg.to_dict().items() if k not in ("architectures", "id2label", "label2id")})
        causal.architectures = ["Qwen2ForCausalLM"]
        with open(os.path.join(out_dir, "hf_causal_config.json"), "w") as f:
            f.write(causal.to_json_string())

        seq_refs = []
        with torch.no_grad():
            for s in samples:
                ids = torch.tensor([s["input_ids"]])
                logits = model(ids, torch.ones_like(ids))[0]
                # A float64 run bounds the f32 reference's own rounding error.
                seq_refs.append({
                    "input_ids": s["input_ids"],
                    "step_positions": s["step_positions"],
                    "logits": logits.tolist(),
                    "step_scores": step_scores(logits, s["step_positions"]),
                })
            batches = []
            for side in ("right", "left"):
                ids, mask, offsets = padded_batch([s["input_ids"] for s in samples], pad_id, side)
                logits = model(torch.tensor(ids), torch.tensor(mask))
                for b, s in enumerate(samples):
                    got = logits[b, offsets[b]:offsets[b] + len(s["input_ids"])]
                    diff = (got - torch.tensor(seq_refs[b]["logits"])).abs().max().item()
                    assert diff < 1e-4, f"{name}: {side}-padded row {b} differs from unpadded by {diff}"
                batches.append({
                    "padding": side,
                    "input_ids": ids,
                    "attention_mask": mask,
                    "step_positions": [[p + offsets[b] for p in s["step_positions"]] for b, s in enumerate(samples)],
                    "offsets": offsets,
                })
            model64 = PrmForCheck(cfg).double()
            model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
            model64.eval()
            f32_vs_f64 = 0.0
            for ref in seq_refs:
                ids = torch.tensor([ref["input_ids"]])
                l64 = model64(ids, torch.ones_like(ids))[0]
                f32_vs_f64 = max(f32_vs_f64, (l64 - torch.tensor(ref["logits"], dtype=torch.float64)).abs().max().item())
        all_logits = torch.cat([torch.tensor(r["logits"]) for r in seq_refs])
        reference = {
            "generator": "scripts/make_golden_qwen2.py",
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            "model": name,
            "step_token": STEP_TOKEN,
            "step_token_id": tok.token_to_id(STEP_TOKEN),
            "pad_token_id": pad_id,
            "weights_dtype": spec["dtype"],
            "f32_reference_vs_f64": f32_vs_f64,
            "logits_std": all_logits.std().item(),
            "samples": [
                {**{k: s[k] for k in ("problem", "steps", "messages", "text")}, **ref} for s, ref in zip(samples, seq_refs)
            ],
            "batches": batches,
        }
        with open(os.path.join(out_dir, "reference.json"), "w") as f:
            json.dump(reference, f)
        print(f"{name}: {sum(p.numel() for p in model.parameters())} params, logits std {reference['logits_std']:.3f}, "
              f"f32 vs f64 {f32_vs_f64:.2e}, sequence lengths {[len(s['input_ids']) for s in samples]}", file=sys.stderr)


def check(ckpt_dir, ids_file):
    with open(ids_file) as f:
        inputs = json.load(f)
    cfg = Qwen2Config.from_pretrained(ckpt_dir)
    cfg._attn_implementation = "eager"
    model, info = PrmForCheck.from_pretrained(ckpt_dir, config=cfg, output_loading_info=True, dtype=torch.float32)
    model.eval()
    problems = {k: sorted(v) for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs.get("attention_mask") or [[1] * len(r) for r in inputs["input_ids"]])
    with torch.no_grad():
        logits = model(ids, mask)
    json.dump({
        "logits": logits.tolist(),
        "loading_problems": problems,
        "config": {
            "vocab_size": cfg.vocab_size,
            "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": cfg.head_dim,
            "tie_word_embeddings": cfg.tie_word_embeddings,
            "num_labels": cfg.num_labels,
            "step_token_id": getattr(cfg, "step_token_id", None),
        },
    }, sys.stdout)
    print()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "..", "test", "fixtures", "model"))
    ap.add_argument("--check", metavar="DIR", help="load a prmkit checkpoint in PyTorch and print logits")
    ap.add_argument("--ids", metavar="FILE", help='JSON {"input_ids": [[...]], "attention_mask": [[...]]} for --check')
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        if not args.ids:
            ap.error("--check needs --ids FILE")
        check(args.check, args.ids)
    else:
        generate(args.out)


if __name__ == "__main__":
    main()
