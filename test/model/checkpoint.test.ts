import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm, savePrmCheckpoint } from '../../src/model/checkpoint.js';
import { parseHfConfig } from '../../src/model/config.js';
import { initPrm, type PrmModel } from '../../src/model/prm.js';
import { prmFromTensors } from '../../src/model/build.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../src/model/safetensors.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/model/${name}`, import.meta.url));
const GQA = fixture('qwen2-gqa');
const TIED = fixture('qwen2-tied');

function variableData(model: PrmModel): Map<string, Float32Array> {
  return new Map([...model.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
}

function expectSameTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...b.keys()]).to.deep.equal([...a.keys()]);
  for (const [name, data] of a) expect(Buffer.from(b.get(name)!.buffer).equals(Buffer.from(data.buffer)), name).to.equal(true);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function pythonWithTorch(): boolean {
  const r = spawnSync('python3', ['-c', 'import torch, transformers, safetensors'], { stdio: 'ignore' });
  return r.status === 0;
}

describe('model checkpoints', function () {
  let dir: string;
  before(async () => {
    await selectBackend('cpu', { log: () => {} });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'prmkit-ckpt-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const [label, src] of [['f32 single file', GQA], ['bf16 sharded', TIED]] as const) {
    it(`load -> save -> load gives identical tensors (${label})`, async () => {
      const first = await loadPrm(src);
      const out = join(dir, 'ckpt');
      await savePrmCheckpoint(first.model, out, first.files);
      expect(readdirSync(out).sort()).to.deep.equal(['config.json', 'model.safetensors', 'modeling_prmkit_prm.py', 'tokenizer.json', 'tokenizer_config.json']);
      expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).to.equal(first.files.tokenizerJson);
      const second = await loadPrm(out);
      expect(second.model.config).to.deep.equal(first.model.config);
      expectSameTensors(variableData(first.model), variableData(second.model));
      // On disk the weights are in HF layout and equal the source checkpoint's (bf16 -> f32 is exact).
      const source = await readSafetensors(existsSync(join(src, 'model.safetensors')) ? join(src, 'model.safetensors') : join(src, 'model.safetensors.index.json'));
      const saved = await readSafetensors(join(out, 'model.safetensors'));
      for (const [name, t] of source) {
        expect(saved.get(name)!.shape, name).to.deep.equal(t.shape);
        expect(Buffer.from(saved.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).to.equal(true);
      }
      first.model.dispose();
      second.model.dispose();
    });
  }

  it('saves atomically: replaces an existing checkpoint, writes extra files, leaves no temp dirs', async () => {
    const { model, files } = await loadPrm(GQA);
    const out = join(dir, 'ckpt');
    mkdirSync(out);
    writeFileSync(join(out, 'stale.txt'), 'old');
    await savePrmCheckpoint(model, out, { ...files, extraFiles: { 'trainer_state.json': '{"step":3}', 'optim/state.bin': Buffer.from([1, 2, 3]) } });
    expect(readdirSync(out).sort()).to.deep.equal(['config.json', 'model.safetensors', 'modeling_prmkit_prm.py', 'optim', 'tokenizer.json', 'tokenizer_config.json', 'trainer_state.json']);
    expect([...readFileSync(join(out, 'optim/state.bin'))]).to.deep.equal([1, 2, 3]);
    expect(readdirSync(dir)).to.deep.equal(['ckpt']);

    const err = await rejection(savePrmCheckpoint(model, out, { extraFiles: { '../escape.txt': 'x' } }));
    expect(err.message).to.match(/must be a relative path inside the checkpoint/);
    expect(readdirSync(dir)).to.deep.equal(['ckpt']);
    expect(existsSync(join(out, 'trainer_state.json'))).to.equal(true);
    model.dispose();
  });

  it('writes a config.json that parses back with the step token and PRM architecture', async () => {
    const { model } = await loadPrm(GQA);
    await savePrmCheckpoint(model, join(dir, 'c'), {});
    const raw = JSON.parse(readFileSync(join(dir, 'c', 'config.json'), 'utf8'));
    expect(raw).to.include({ model_type: 'qwen2', num_labels: 2, torch_dtype: 'float32', step_token: '<extra_0>' });
    expect(raw.architectures).to.deep.equal(['Qwen2ForProcessRewardModel']);
    expect(parseHfConfig(raw, 'c')).to.deep.equal(model.config);
    model.dispose();
  });

  it('loads back in PyTorch (scripts/fixtures/make_golden_qwen2.py --check) with the same logits', async function () {
    if (!pythonWithTorch()) {
      console.warn('    skipped: python3 with torch, transformers and safetensors is not available');
      this.skip();
    }
    this.timeout(180_000);
    for (const src of [GQA, TIED]) {
      const { model, files } = await loadPrm(src);
      const out = join(dir, 'py');
      await savePrmCheckpoint(model, out, files);
      const batch = JSON.parse(readFileSync(join(src, 'reference.json'), 'utf8')).batches[1];
      const idsFile = join(dir, 'ids.json');
      writeFileSync(idsFile, JSON.stringify({ input_ids: batch.input_ids, attention_mask: batch.attention_mask }));
      const r = spawnSync('python3', ['scripts/fixtures/make_golden_qwen2.py', '--check', out, '--ids', idsFile], { cwd: repoRoot, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(result.loading_problems).to.deep.equal({});
      expect(result.config).to.include({ num_labels: 2, vocab_size: model.config.vocabSize, num_key_value_heads: model.config.numKeyValueHeads });
      const ids = tf.tensor2d(batch.input_ids, undefined, 'int32') as tf.Tensor2D;
      const mask = tf.tensor2d(batch.attention_mask, undefined, 'int32') as tf.Tensor2D;
      const ours = model.logits(ids, mask).arraySync();
      tf.dispose([ids, mask]);
      batch.attention_mask.forEach((row: number[], b: number) =>
        row.forEach((m, t) => {
          if (!m) return;
          for (let k = 0; k < 2; k++) expect(Math.abs(ours[b][t][k] - result.logits[b][t][k])).to.be.below(1e-4);
        }),
      );
      model.dispose();
      rmSync(out, { recursive: true });
    }
  });

  describe('initialising from a causal LM', () => {
    /** A Qwen2ForCausalLM directory made from a fixture's backbone: HF config, no head, lm_head unless tied. */
    async function causalDir(src: string, tied: boolean, opts: { drop?: string; bare?: boolean } = {}): Promise<Map<string, HostTensor>> {
      const prm = await readSafetensors(existsSync(join(src, 'model.safetensors')) ? join(src, 'model.safetensors') : join(src, 'model.safetensors.index.json'));
      const tensors = new Map<string, HostTensor>();
      for (const [name, t] of prm) {
        if (name.startsWith('score.') || name === opts.drop) continue;
        tensors.set(opts.bare ? name.replace(/^model\./, '') : name, t);
      }
      if (!tied) {
        const embed = prm.get('model.embed_tokens.weight')!;
        tensors.set('lm_head.weight', { shape: embed.shape, data: embed.data.map((x) => -x) });
      }
      const causal = join(dir, 'causal');
      mkdirSync(causal, { recursive: true });
      writeFileSync(join(causal, 'config.json'), readFileSync(join(src, 'hf_causal_config.json')));
      await writeSafetensors(join(causal, 'model.safetensors'), tensors);
      return prm;
    }

    it('keeps the backbone, ignores lm_head and initialises a new head deterministically', async () => {
      const prm = await causalDir(GQA, false);
      const a = await loadPrm(join(dir, 'causal'), { seed: 7 });
      expect(a.model.loadInfo).to.deep.equal({ newHead: true, ignoredTensors: ['lm_head.weight'] });
      expect(a.model.config.architecture).to.equal('Qwen2ForCausalLM');
      const aData = variableData(a.model);
      const fromPrm = prmFromTensors(a.model.config, prm);
      const prmData = variableData(fromPrm);
      for (const [name, data] of aData) {
        if (name.startsWith('score.')) continue;
        expect(Buffer.from(data.buffer).equals(Buffer.from(prmData.get(name)!.buffer)), name).to.equal(true);
      }
      const w0 = aData.get('score.0.weight')!;
      const std = Math.sqrt(w0.reduce((s, x) => s + x * x, 0) / w0.length);
      expect(std).to.be.within(0.017, 0.023);
      expect(aData.get('score.2.bias')!.every((x) => x === 0)).to.equal(true);
      const again = await loadPrm(join(dir, 'causal'), { seed: 7 });
      expectSameTensors(aData, variableData(again.model));
      const other = await loadPrm(join(dir, 'causal'), { seed: 8 });
      expect(Buffer.from(variableData(other.model).get('score.0.weight')!.buffer).equals(Buffer.from(w0.buffer))).to.equal(false);
      const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32') as tf.Tensor2D;
      const scores = tf.tidy(() => a.model.stepScores(ids, tf.onesLike(ids), [[1, 3]]));
      expect(scores[0].every((x) => x > 0 && x < 1)).to.equal(true);
      for (const m of [a.model, again.model, other.model, fromPrm]) m.dispose();
      ids.dispose();
    });

    it('works for a tied-embedding causal LM and for bare Qwen2Model tensor names', async () => {
      await causalDir(TIED, true, { bare: true });
      const { model } = await loadPrm(join(dir, 'causal'));
      expect(model.loadInfo).to.deep.equal({ newHead: true, ignoredTensors: [] });
      expect(model.config.tieWordEmbeddings).to.equal(true);
      model.dispose();
    });

    it('names a missing backbone tensor', async () => {
      await causalDir(GQA, false, { drop: 'model.layers.1.mlp.up_proj.weight' });
      const err = await rejection(loadPrm(join(dir, 'causal')));
      expect(err.message).to.match(/causal\/model\.safetensors: missing tensor "model\.layers\.1\.mlp\.up_proj\.weight"/);
    });
  });

  it('rejects a PRM checkpoint without its head and tensors whose shape disagrees with config.json', async () => {
    const tensors = await readSafetensors(join(GQA, 'model.safetensors'));
    const config = parseHfConfig(JSON.parse(readFileSync(join(GQA, 'config.json'), 'utf8')), 'config.json');
    const noHead = new Map([...tensors].filter(([n]) => !n.startsWith('score.')));
    expect(() => prmFromTensors(config, noHead)).to.throw(/missing tensor "score\.0\.weight" \(config says Qwen2ForProcessRewardModel/);
    const partial = new Map([...tensors].filter(([n]) => n !== 'score.2.bias'));
    expect(() => prmFromTensors(config, partial)).to.throw(/missing tensor "score\.2\.bias" \(the PRM head is incomplete\)/);
    const wrong = new Map(tensors);
    wrong.set('model.layers.0.self_attn.k_proj.weight', { shape: [64, 64], data: new Float32Array(64 * 64) });
    const before = tf.memory().numTensors;
    expect(() => prmFromTensors(config, wrong)).to.throw(/tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[64,64\], but config\.json implies \[32,64\]/);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('reports a directory without safetensors weights', async () => {
    writeFileSync(join(dir, 'config.json'), readFileSync(join(GQA, 'config.json')));
    writeFileSync(join(dir, 'pytorch_model.bin'), 'x');
    expect((await rejection(loadPrm(dir))).message).to.match(/no model\.safetensors .*only safetensors weights are supported/);
    rmSync(join(dir, 'config.json'));
    expect((await rejection(loadPrm(dir))).message).to.match(/config\.json: cannot read/);
  });

  describe('PrmModel', () => {
    it('initPrm is deterministic: N(0, 0.02) matrices, unit norms, zero biases', () => {
      const config = parseHfConfig(JSON.parse(readFileSync(join(GQA, 'config.json'), 'utf8')), 'config.json');
      const a = initPrm(config, 1);
      const b = initPrm(config, 1);
      const c = initPrm(config, 2);
      const da = variableData(a);
      expectSameTensors(da, variableData(b));
      expect(Buffer.from(variableData(c).get('model.embed_tokens.weight')!.buffer).equals(Buffer.from(da.get('model.embed_tokens.weight')!.buffer))).to.equal(false);
      expect(da.get('model.norm.weight')!.every((x) => x === 1)).to.equal(true);
      expect(da.get('model.layers.0.self_attn.q_proj.bias')!.every((x) => x === 0)).to.equal(true);
      const q = da.get('model.layers.1.self_attn.q_proj.weight')!;
      expect(Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length)).to.be.within(0.018, 0.022);
      expect(a.numParameters()).to.equal(97794);
      for (const m of [a, b, c]) m.dispose();
    });

    it('selects trainable variables for freezing options', async () => {
      const { model } = await loadPrm(GQA);
      const names = (vars: tf.Variable[]) => vars.map((v) => [...model.variables].find(([, x]) => x === v)![0]);
      expect(model.trainableVariables()).to.have.length(model.variables.size);
      expect(names(model.trainableVariables({ headOnly: true }))).to.deep.equal(['score.0.weight', 'score.0.bias', 'score.2.weight', 'score.2.bias']);
      const last = names(model.trainableVariables({ trainLastLayers: 1 }));
      expect(last.filter((n) => n.startsWith('model.layers.1.'))).to.have.length(12);
      expect(last.some((n) => n.startsWith('model.layers.0.') || n.startsWith('model.embed'))).to.equal(false);
      expect(last).to.include('model.norm.weight');
      expect(() => model.trainableVariables({ trainLastLayers: 3 })).to.throw(/trainLastLayers must be an integer in \[0, 2\]/);
      model.dispose();
    });

    it('resizes the token embedding without changing scores of existing tokens', async () => {
      const { model } = await loadPrm(GQA);
      const ids = tf.tensor2d([[5, 9, 200, 17, 3]], undefined, 'int32') as tf.Tensor2D;
      const mask = tf.onesLike(ids);
      const before = model.stepScores(ids, mask, [[2, 4]]);
      const oldEmbed = model.variables.get('model.embed_tokens.weight')!.dataSync().slice();
      const tensorsBefore = tf.memory().numTensors;
      model.resizeTokenEmbeddings(310, 3);
      expect(tf.memory().numTensors).to.equal(tensorsBefore);
      expect(model.config.vocabSize).to.equal(310);
      const grown = model.variables.get('model.embed_tokens.weight')!;
      expect(grown.shape).to.deep.equal([310, 64]);
      expect(Array.from(grown.dataSync().slice(0, oldEmbed.length))).to.deep.equal(Array.from(oldEmbed));
      expect(model.trainableVariables()).to.include(grown);
      expect(model.stepScores(ids, mask, [[2, 4]])).to.deep.equal(before);
      const withNew = tf.tensor2d([[5, 305, 309]], undefined, 'int32') as tf.Tensor2D;
      expect(tf.tidy(() => model.stepScores(withNew, tf.onesLike(withNew), [[2]]))[0][0]).to.be.within(0, 1);
      model.setTokens({ stepTokenId: 305, stepToken: '<step>' });
      expect(model.config).to.include({ stepTokenId: 305, stepToken: '<step>' });
      expect(() => model.resizeTokenEmbeddings(300)).to.throw(/stepTokenId is 305/);
      model.setTokens({ stepTokenId: 291 });
      model.resizeTokenEmbeddings(300);
      expect(model.variables.get('model.embed_tokens.weight')!.shape).to.deep.equal([300, 64]);
      expect(() => model.stepScores(ids, mask, [[7]])).to.throw(/step position 7 in batch row 0 is outside \[0, 5\)/);
      expect(() => tf.tidy(() => model.stepScores(withNew, tf.onesLike(withNew), [[2]]))).to.throw(/token id 305 \(batch row 0\) is outside the model vocabulary \[0, 300\)/);
      const padded = tf.tensor2d([[1, 1, 0]], undefined, 'int32') as tf.Tensor2D;
      expect(() => model.stepScores(withNew, padded, [[2]])).to.throw(/is a padding position/);
      tf.dispose([ids, mask, withNew, padded]);
      model.dispose();
    });
  });
});
