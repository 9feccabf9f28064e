"""Reference next-token loss and gradients for prmkit's causal-LM pretraining (model.pretrain_lm).

Loads the decoder of test/fixtures/model/qwen2-gqa into transformers' Qwen2ForCausalLM with the
LM head tied to the input embedding (as src/train/lm-pretrain.ts ties it), takes the
right-padded batch of reference.json with labels = input ids (-100 on padding), and lets
transformers compute its causal-LM loss (shift by one, mean over the counted positions) and
autograd the gradients. Writes lm-loss.json beside the checkpoint: the loss, the number of
counted positions, and per decoder parameter the gradient's sum, L2 norm and sampled entries.

    python3 scripts/make_lm_loss_fixture.py
"""
import json
import os

import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

SAMPLE_ENTRIES = 16


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ckpt = os.path.join(here, "..", "test", "fixtures", "model", "qwen2-gqa")
    with open(os.path.join(ckpt, "reference.json")) as f:
        ref = json.load(f)
    cfg = Qwen2Config.from_pretrained(ckpt)
    cfg.tie_word_embeddings = True
    cfg._attn_implementation = "eager"
    model = Qwen2ForCausalLM(cfg)
    weights = {k: v for k, v in load_file(os.path.join(ckpt, "model.safetensors")).items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= {"lm_head.weight"}, missing
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.train()

    batch = next(b for b in ref["batches"] if b["padding"] == "right")
    ids = torch.tensor(batch["input_ids"])
    mask = torch.tensor(batch["attention_mask"])
    labels = ids.masked_fill(mask == 0, -100)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, labels=labels)
    out.loss.backward()
    counted = int((labels[:, 1:] != -100).sum())

    grads = {}
    gen = torch.Generator().manual_seed(0)
    for name, p in sorted(model.named_parameters()):
        if name == "lm_head.weight":
            continue  # the same tensor as model.embed_tokens.weight
        g = p.grad.detach().reshape(-1).double()
        idx = torch.randperm(g.numel(), generator=gen)[:SAMPLE_ENTRIES]
        grads[name] = {"shape": list(p.shape), "sum": g.sum().item(), "l2": g.norm().item(), "index": idx.tolist(), "values": g[idx].tolist()}
    result = {
        "torch": torch.__version__,
        "loss": "transformers Qwen2ForCausalLM causal-LM loss, tied embedding, right-padded batch",
        "padding": "right",
        "mean_loss": out.loss.item(),
        "counted_positions": counted,
        "grads": grads,
    }
    path = os.path.join(ckpt, "lm-loss.json")
    with open(path, "w") as f:
        json.dump(result, f)
        f.write("\n")
    print(f"wrote {path}: loss {out.loss.item():.6f} over {counted} positions, {len(grads)} parameters")


if __name__ == "__main__":
    main()
