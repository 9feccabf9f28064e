"""Step scores of a prmkit checkpoint as transformers computes them, for the parity test.

Usage: python3 scripts/reference/hf_prm_scores.py CHECKPOINT_DIR IDS_JSON
IDS_JSON holds a list of token-id rows (prmkit's encoding of each sample). Loads the directory
with AutoModel.from_pretrained(dir, trust_remote_code=True) alone (no prmkit code), scores each
row with the model's step_scores(), once alone and once in a right-padded batch, and prints JSON:
{"class", "missing", "unexpected", "single": [[...]], "batched": [[...]], "tokenizer_ids": [[...]] | null}.
"""

import json
import sys

import torch
from transformers import AutoModel, AutoTokenizer


def main():
    directory, ids_file = sys.argv[1], sys.argv[2]
    with open(ids_file) as f:
        data = json.load(f)
    rows = data["ids"]
    model, info = AutoModel.from_pretrained(directory, trust_remote_code=True, dtype=torch.float32, output_loading_info=True)
    model.eval()
    single = [model.step_scores(torch.tensor([row]))[0] for row in rows]
    pad = model.config.pad_token_id or 0
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    batched = model.step_scores(ids, mask)
    # The tokenizer saved beside the weights gives the same ids for the rendered texts.
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in data.get("texts", [])]
    print(json.dumps({
        "class": type(model).__name__,
        "missing": sorted(info["missing_keys"]),
        "unexpected": sorted(info["unexpected_keys"]),
        "single": single,
        "batched": batched,
        "tokenizer_ids": tokenizer_ids,
    }))


if __name__ == "__main__":
    main()
