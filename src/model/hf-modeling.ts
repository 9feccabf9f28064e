/**
 * What a prmkit checkpoint carries so that transformers loads it as a PRM:
 * `AutoModel.from_pretrained(dir, trust_remote_code=True)` reads config.json's `auto_map`, imports
 * the modeling file below from the directory, and builds Qwen2ForProcessRewardModel with the
 * weights under the names prmkit writes (model.* for the Qwen2 backbone, score.0/score.2 for the
 * head: Qwen2.5-Math-PRM's layout, which vLLM's Qwen2ForProcessRewardModel also reads).
 */

export const HF_MODELING_FILE = 'modeling_prmkit_prm.py';

/** config.json's `auto_map`: the config stays transformers' own Qwen2Config (model_type qwen2). */
export const HF_AUTO_MAP = { AutoModel: 'modeling_prmkit_prm.Qwen2ForProcessRewardModel' } as const;

/** The modeling file, written into every saved PRM (prmkit's own code; needs torch and transformers >= 4.45). */
export const HF_MODELING_SOURCE = `"""A process reward model saved by prmkit, for transformers (trust_remote_code=True).

A Qwen2 decoder (transformers' Qwen2Model) and a two-layer head applied to every position:
score.0 Linear(hidden, hidden) -> ReLU -> score.2 Linear(hidden, num_labels).
The score of a step is softmax(logits)[1] at the step token that closes it
(config.step_token / config.step_token_id), the encoding prmkit trains and scores with:
the chat template with the problem as the user message and the assistant message
"step 1<step token>step 2<step token>...".

    from transformers import AutoModel, AutoTokenizer
    model = AutoModel.from_pretrained(dir, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(dir)
    scores = model.step_scores(input_ids, attention_mask)   # one list per row
"""

import torch
from torch import nn
from transformers.modeling_outputs import TokenClassifierOutput
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        hidden = config.hidden_size
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, config.num_labels))
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, **kwargs):
        """Logits of every position: [batch, length, num_labels]."""
        hidden = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
        ).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))

    @torch.no_grad()
    def step_scores(self, input_ids, attention_mask=None):
        """Per row, the probability that each step is correct, read at its step token."""
        step_token_id = getattr(self.config, "step_token_id", None)
        if step_token_id is None:
            raise ValueError("config.json has no step_token_id")
        probs = self.forward(input_ids=input_ids, attention_mask=attention_mask).logits.float().softmax(dim=-1)[..., 1]
        at_steps = input_ids == step_token_id
        if attention_mask is not None:
            at_steps = at_steps & attention_mask.bool()
        return [probs[row][at_steps[row]].tolist() for row in range(input_ids.shape[0])]
`;
