"""PyTorch prototype of the sim PRM: transformers' Qwen2Model plus the Qwen2.5-Math-PRM head
(Linear-ReLU-Linear to 2 classes), cross-entropy on the step tokens, AdamW, warmup + cosine, on
data written by dump-sim-prm-data.ts. It exists to try levers quickly (it runs a 64-wide model
about 2x faster than prmkit here); what worked was then built in prmkit and measured there.

Prints, every --eval_every steps, the test step AUROC (right steps against first wrong steps),
the step-error F1 at the best threshold and the recall per error kind.

  --nospace        drop the space tokens (what tokenizer.spaces: drop does in prmkit)
  --lmaux W        add W x the next-token loss (tied embedding as LM head): train.lm_loss_weight
  --lm_only N      the first N steps train the LM loss only (a base LM), --save/--load a state
  --numemb KIND    initialise digit embeddings with their value (linear) or Fourier features
  --load_hf DIR    start the decoder from a prmkit/HF checkpoint (model.safetensors), e.g. the
                   shipped checkpoints/sim-base-lm, on data dumped with its tokenizer
"""
import json, math, sys, time, random, argparse
import torch, torch.nn as nn, torch.nn.functional as F
from transformers import Qwen2Config, Qwen2Model
ap = argparse.ArgumentParser()
ap.add_argument('--data', default='/tmp/p/data.json')
ap.add_argument('--hidden', type=int, default=64); ap.add_argument('--layers', type=int, default=2)
ap.add_argument('--heads', type=int, default=4); ap.add_argument('--kv', type=int, default=2); ap.add_argument('--inter', type=int, default=128)
ap.add_argument('--lr', type=float, default=2e-3); ap.add_argument('--bs', type=int, default=16); ap.add_argument('--steps', type=int, default=450)
ap.add_argument('--secs', type=float, default=600); ap.add_argument('--init', type=float, default=0.1); ap.add_argument('--wd', type=float, default=0.0)
ap.add_argument('--numemb', default='none'); ap.add_argument('--nospace', action='store_true'); ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--eval_every', type=int, default=200); ap.add_argument('--cut', action='store_true'); ap.add_argument('--lmaux', type=float, default=0); ap.add_argument('--lm_only', type=int, default=0); ap.add_argument('--save', default=''); ap.add_argument('--load', default=''); ap.add_argument('--load_hf', default=''); ap.add_argument('--threads', type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed); random.seed(a.seed)
d = json.load(open(a.data)); vocab = d['vocabList']; inv = {i: w for w, i in vocab.items()}
space = vocab.get(' ')
def prep(x):
    ids, pos = x['ids'], x['pos']
    if a.nospace:
        keep = [i for i, t in enumerate(ids) if t != space]
        remap = {old: new for new, old in enumerate(keep)}
        ids = [ids[i] for i in keep]; pos = [remap[p] for p in pos]
    return dict(ids=ids, pos=pos, labels=x['labels'], fe=x['fe'], kind=x['kind'])
train = [prep(x) for x in d['train']]; test = [prep(x) for x in d['test']]
if a.cut: train = [dict(t, pos=t['pos'][:t['fe']+1], labels=t['labels'][:t['fe']+1]) if t['fe'] >= 0 else t for t in train]
V = d['vocab']
cfg = Qwen2Config(vocab_size=V, hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv, intermediate_size=a.inter, max_position_embeddings=512, initializer_range=a.init, tie_word_embeddings=True, attn_implementation='sdpa')
class PRM(nn.Module):
    def __init__(s):
        super().__init__(); s.m = Qwen2Model(cfg); s.h1 = nn.Linear(a.hidden, a.hidden); s.h2 = nn.Linear(a.hidden, 2)
    def forward(s, ids, mask):
        h = s.m(input_ids=ids, attention_mask=mask).last_hidden_state
        return h, s.h2(F.relu(s.h1(h)))
model = PRM()
for n, p in model.named_parameters():
    if p.dim() == 2: nn.init.normal_(p, 0, a.init)
if a.numemb != 'none':
    with torch.no_grad():
        E = model.m.embed_tokens.weight
        for w, i in vocab.items():
            if w.isdigit() and len(w) == 1:
                v = int(w)
                if a.numemb == 'linear': E[i, :4] = torch.tensor([v / 3.0, 1.0, 0, 0])
                elif a.numemb == 'fourier':
                    feats = []
                    for T in (10, 5, 2.5, 20):
                        feats += [math.cos(2 * math.pi * v / T), math.sin(2 * math.pi * v / T)]
                    E[i, :8] = torch.tensor(feats)
if a.load: model.load_state_dict(torch.load(a.load))
if a.load_hf:
    from safetensors.torch import load_file
    hf = load_file(f'{a.load_hf}/model.safetensors')
    missing, unexpected = model.m.load_state_dict({k[len('model.'):]: v for k, v in hf.items() if k.startswith('model.')}, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
print('params', sum(p.numel() for p in model.parameters()), 'avg len', sum(len(t['ids']) for t in train) / len(train), flush=True)
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
def batch(xs):
    L = max(len(x['ids']) for x in xs); ids = torch.zeros(len(xs), L, dtype=torch.long); mask = torch.zeros(len(xs), L, dtype=torch.long)
    rows, labs = [], []
    for b, x in enumerate(xs):
        ids[b, :len(x['ids'])] = torch.tensor(x['ids']); mask[b, :len(x['ids'])] = 1
        for p, l in zip(x['pos'], x['labels']): rows.append(b * L + p); labs.append(l)
    return ids, mask, torch.tensor(rows), torch.tensor(labs)
def auroc(pos, neg):
    allv = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg]); r = 0; rank = 0; n1 = len(pos); i = 0
    ranks_sum = 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]: j += 1
        avg = (i + j + 1) / 2
        ranks_sum += avg * sum(1 for k in range(i, j) if allv[k][1] == 1); i = j
    return (ranks_sum - n1 * (n1 + 1) / 2) / (n1 * len(neg)) * 100
def evaluate():
    model.eval(); scores = []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            xs = test[i:i + 64]; ids, mask, rows, _ = batch(xs)
            _, lg = model(ids, mask); p = F.softmax(lg.reshape(-1, 2)[rows], -1)[:, 1].tolist(); k = 0
            for x in xs: scores.append(p[k:k + len(x['pos'])]); k += len(x['pos'])
    model.train()
    right, wrong = [], []
    for x, s in zip(test, scores):
        for j, v in enumerate(s):
            if x['fe'] < 0 or j < x['fe']: right.append(v)
            elif j == x['fe']: wrong.append(v)
    au = auroc(wrong, right)  # wrong should score lower -> compute auroc of right > wrong
    au = 100 - au
    best = (0, 0)
    for thr in sorted(set(round(v, 3) for v in right + wrong))[::max(1, len(right + wrong) // 400)]:
        ok_e = ok_c = ne = nc = 0
        for x, s in zip(test, scores):
            pred = next((j for j, v in enumerate(s) if v < thr), -1)
            if x['fe'] >= 0: ne += 1; ok_e += pred == x['fe']
            else: nc += 1; ok_c += pred == -1
        acc_e, acc_c = ok_e / ne, ok_c / nc; f1 = 0 if acc_e + acc_c == 0 else 2 * acc_e * acc_c / (acc_e + acc_c) * 100
        if f1 > best[0]: best = (f1, thr)
    kinds = {}
    for x, s in zip(test, scores):
        if x['fe'] >= 0:
            pred = next((j for j, v in enumerate(s) if v < best[1]), -1); k = kinds.setdefault(x['kind'], [0, 0]); k[0] += pred == x['fe']; k[1] += 1
    return au, best, {k: round(100 * v[0] / v[1]) for k, v in kinds.items()}
t0 = time.time(); order = []; step = 0; warm = max(1, int(0.1 * a.steps))
while step < a.steps and time.time() - t0 < a.secs:
    if not order: order = list(range(len(train))); random.shuffle(order)
    xs = [train[order.pop()] for _ in range(min(a.bs, len(order)))]
    ids, mask, rows, labs = batch(xs)
    lr = a.lr * min(1, (step + 1) / warm) * (0.5 * (1 + math.cos(math.pi * min(1, step / a.steps))) if step >= warm else 1)
    for g in opt.param_groups: g['lr'] = lr
    h, lg = model(ids, mask); loss = F.cross_entropy(lg.reshape(-1, 2)[rows], labs) * (0 if step < a.lm_only else 1)
    if a.lmaux:
        logits = h @ model.m.embed_tokens.weight.T
        lml = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction='none'); m = mask[:, 1:].reshape(-1).float()
        loss = loss + a.lmaux * (lml * m).sum() / m.sum()
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); step += 1
    if step % a.eval_every == 0 or step == a.steps:
        au, (f1, thr), kinds = evaluate()
        print(f'step {step} t {time.time()-t0:.0f}s loss {loss.item():.3f} testAUROC {au:.1f} F1 {f1:.1f} thr {thr} kinds {kinds}', flush=True)

if a.save: torch.save(model.state_dict(), a.save)
