import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackendOrSkip } from '../support/backend.js';
import { kernelChoice, setKernelChoice } from '../../src/backend/fused/kernel-choice.js';
import { maxAbsDiff } from '../support/close.js';
import { loadPrm, savePrmCheckpoint } from '../../src/model/checkpoint.js';
import type { CollatedBatch } from '../../src/model/encode.js';
import { loadLoraAdapter, saveLoraAdapter } from '../../src/model/peft-adapter.js';
import { prmParamSpecs, type PrmModel } from '../../src/model/prm.js';
import { SafetensorsReader } from '../../src/model/safetensors.js';
import { stepTargets } from '../../src/train/loss.js';
import { AdamW } from '../../src/train/optimizer.js';
import { prmMicroBatch, type HostBatch } from '../../src/train/prm-objective.js';
import { TrainStep } from '../../src/train/step.js';

/**
 * LoRA against PEFT (fixtures from scripts/fixtures/make_lora_fixture.py): an adapter PEFT saved
 * over the golden GQA checkpoint loads in prmkit and gives PEFT's logits and gradients (1e-5),
 * with and without activation recomputation; the base stays frozen (no gradient, no moments,
 * no weight-gradient kernel); an adapter prmkit saves loads in PEFT and scores the same (1e-4);
 * merging gives a plain checkpoint that scores like the adapter.
 */

const root = fileURLToPath(new URL('../fixtures/model/', import.meta.url));
const baseDir = join(root, 'qwen2-gqa');
const adapterDir = join(root, 'qwen2-gqa-lora');
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
interface Batch { padding: 'left' | 'right'; input_ids: number[][]; attention_mask: number[][]; step_positions: number[][] }
interface RefBatch { padding: string; labels: number[][]; logits: number[][]; loss: number }
const batches = (JSON.parse(readFileSync(join(baseDir, 'reference.json'), 'utf8')) as { batches: Batch[] }).batches;
const reference = JSON.parse(readFileSync(join(adapterDir, 'reference.json'), 'utf8')) as { batches: RefBatch[] };

function hostOf(batch: Batch, labels: number[][]): HostBatch {
  const seqLen = batch.input_ids[0].length;
  const collated: CollatedBatch = {
    inputIds: Int32Array.from(batch.input_ids.flat()),
    attentionMask: Int32Array.from(batch.attention_mask.flat()),
    batchSize: batch.input_ids.length,
    seqLen,
    stepPositions: batch.step_positions,
  };
  const tokens = batch.attention_mask.flat().reduce((a, b) => a + b, 0);
  return { collated, targets: stepTargets(batch.step_positions, labels, seqLen), tokens, pairs: 0 };
}

/** The trainer's gradients of the mean CE over the batch's steps, in HF layout by variable name. */
function trainerGradients(model: PrmModel, batch: Batch, labels: number[][], recompute: boolean, noiseSeed?: string): { loss: number; grads: Map<string, Float32Array> } {
  const host = hostOf(batch, labels);
  const steps = labels.flat().length;
  const names = new Map<tf.Variable, string>();
  for (const [name, v] of model.variables) names.set(v, name);
  const params = model.trainableVariables().map((variable) => ({ name: names.get(variable)!, variable }));
  const optimizer = new AdamW(params);
  const step = new TrainStep(params, optimizer, { maxGradNorm: 0, recompute });
  const micro = prmMicroBatch(model, host, steps, { kind: 'ce', classWeights: [1, 1] }, undefined, noiseSeed);
  try {
    const { value, grads } = step.gradients(micro);
    const out = new Map<string, Float32Array>();
    const specs = new Map([...model.loraSpecs(), ...prmParamSpecs(model.config)].map((s) => [s.name, s]));
    params.forEach((p, i) => {
      const hf = specs.get(p.name)!.kind === 'linear' ? tf.transpose(grads[i]) : grads[i];
      out.set(p.name, hf.dataSync() as Float32Array);
      if (hf !== grads[i]) hf.dispose();
    });
    const loss = value.dataSync()[0];
    tf.dispose([value, ...grads]);
    return { loss, grads: out };
  } finally {
    micro.dispose();
    optimizer.dispose();
  }
}

function stepLogits(model: PrmModel, batch: Batch): number[][] {
  const ids = tf.tensor2d(batch.input_ids, undefined, 'int32');
  const mask = tf.tensor2d(batch.attention_mask, undefined, 'int32');
  const logits = model.logitsAt(ids, mask, batch.step_positions);
  const out = logits.arraySync() as number[][];
  tf.dispose([ids, mask, logits]);
  return out;
}

function peftMissing(): string | null {
  const r = spawnSync('python3', ['-c', 'import torch, transformers, peft'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'python3 with torch, transformers and peft (scripts/requirements.txt) is not available';
}

for (const backend of ['tensorflow', 'wasm'] as const) describe(`LoRA in PEFT format (${backend})`, function () {
  this.timeout(120_000);
  let model: PrmModel;
  let peftGrads: Map<string, Float32Array>;

  before(async function () {
    await selectBackendOrSkip(this, backend);
    model = (await loadPrm(adapterDir)).model;
    peftGrads = new Map();
    const reader = await SafetensorsReader.open(join(adapterDir, 'gradients.safetensors'));
    try {
      for (const name of reader.names()) peftGrads.set(name, (await reader.read(name)).data);
    } finally {
      await reader.close();
    }
  });
  after(() => model?.dispose());

  it("loads PEFT's adapter over its base (base_model_name_or_path relative to the adapter)", () => {
    // PEFT writes target_modules in set order; prmkit keeps them in its canonical order.
    expect(model.lora).to.deep.equal({ r: 4, alpha: 12, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    expect(model.loraSpecs()).to.have.length(2 * 7 * 2);
  });

  reference.batches.forEach((ref, i) => {
    it(`gives PEFT's logits on the ${ref.padding}-padded batch (1e-5)`, () => {
      const err = maxAbsDiff(stepLogits(model, batches[i]).flat(), ref.logits.flat());
      expect(err).to.be.below(1e-5);
    });

    for (const recompute of [false, true]) {
      it(`gives PEFT's gradients of every adapter and head tensor on the ${ref.padding}-padded batch${recompute ? ' with recomputation' : ''} (1e-5)`, () => {
        const before = tf.memory().numTensors;
        const { loss, grads } = trainerGradients(model, batches[i], ref.labels, recompute);
        expect(tf.memory().numTensors).to.equal(before);
        expect(loss).to.be.closeTo(ref.loss, 1e-5);
        const want = [...peftGrads.keys()].filter((k) => k.startsWith(`${ref.padding}/`));
        expect([...grads.keys()].sort()).to.deep.equal(want.map((k) => k.slice(ref.padding.length + 1).replace(/^base_model\.model\./, '')).sort());
        let worst = 0;
        for (const key of want) worst = Math.max(worst, maxAbsDiff(grads.get(key.slice(ref.padding.length + 1).replace(/^base_model\.model\./, ''))!, peftGrads.get(key)!));
        expect(worst).to.be.below(1e-5);
      });
    }
  });

  it('trains the adapter and the head only: the optimizer holds moments of those alone', () => {
    const trained = new Set(model.trainableVariables());
    const names = [...model.variables].filter(([, v]) => trained.has(v)).map(([n]) => n);
    expect(names.every((n) => /\.lora_[AB]\.weight$/.test(n) || n.startsWith('score.'))).to.equal(true);
    expect(names).to.have.length(28 + 4);
    const optimizer = new AdamW([...model.variables].filter(([, v]) => trained.has(v)).map(([name, variable]) => ({ name, variable })));
    const moments = optimizer.stateTensors();
    expect(moments).to.have.length(2 * 32);
    expect(moments.every((m) => /lora_[AB]|score\./.test(m.name))).to.equal(true);
    optimizer.dispose();
    expect(() => model.trainableVariables({ trainLastLayers: 1 })).to.throw(/does not combine with model.lora/);
  });

  it('computes no weight gradient of a frozen projection with recomputation (kernel outputs)', async function () {
    // Internal shapes of frozen base weights no activation here has: k/v [64, 32], gate/up [64, 128], down [128, 64].
    const frozenShapes = new Set(['64x32', '64x128', '128x64']);
    const batch = batches[0];
    const rows = batch.input_ids.length * batch.input_ids[0].length;
    expect([64, 128]).to.not.include(rows);
    const shapesOf = async (m: PrmModel) => {
      const info = await tf.profile(() => {
        trainerGradients(m, batch, reference.batches[0].labels, true);
      });
      // Identity kernels are the tape's saved copies of a matMul's inputs (weights included), not gradients.
      return info.kernels.filter((k) => k.name !== 'Identity').flatMap((k) => k.outputShapes.map((s) => (s ?? []).join('x')));
    };
    const adapted = await shapesOf(model);
    expect(adapted.filter((s) => frozenShapes.has(s))).to.deep.equal([]);
    // Control: with the whole model trained the same profile does show those gradients.
    const full = (await loadPrm(baseDir)).model;
    try {
      const shapes = await shapesOf(full);
      expect(shapes.filter((s) => frozenShapes.has(s)).length).to.be.greaterThan(0);
    } finally {
      full.dispose();
    }
  });

  /** Gradients of a dropout 0.3 adapter: the same with recomputation (same masks), not those without dropout. */
  async function expectRecomputedMasks(): Promise<void> {
    const { model: dropped } = await loadPrm(adapterDir);
    try {
      (dropped as unknown as { loraConfig: { dropout: number } }).loraConfig.dropout = 0.3;
      const batch = batches[0];
      const labels = reference.batches[0].labels;
      const tape = trainerGradients(dropped, batch, labels, false, 'seed-a');
      const recomputed = trainerGradients(dropped, batch, labels, true, 'seed-a');
      const plain = trainerGradients(dropped, batch, labels, false);
      let same = 0;
      let differs = 0;
      for (const [name, g] of tape.grads) {
        same = Math.max(same, maxAbsDiff(g, recomputed.grads.get(name)!));
        if (name.includes('lora_A')) differs = Math.max(differs, maxAbsDiff(g, plain.grads.get(name)!));
      }
      expect(same).to.be.below(1e-6);
      expect(differs).to.be.above(1e-4);
      expect(plain.loss).to.be.closeTo(reference.batches[0].loss, 1e-5);
    } finally {
      dropped.dispose();
    }
  }

  it('draws the same dropout masks when a layer is recomputed, and none outside training', async () => {
    await expectRecomputedMasks();
  });

  it("draws the same masks when recomputed with the native backend's eager kernels too (TensorFlow's stateless generator)", async function () {
    if (tf.getBackend() !== 'tensorflow') {
      console.warn(`      skipped on ${tf.getBackend()}: the stateless generator is the native backend's path without the fused kernels`);
      this.skip();
    }
    const previous = kernelChoice();
    setKernelChoice('eager');
    try {
      await expectRecomputedMasks();
    } finally {
      setKernelChoice(previous);
    }
  });

  it('a new adapter (B = 0) leaves the scores of the base unchanged', async () => {
    const { model: base } = await loadPrm(baseDir);
    try {
      const before = stepLogits(base, batches[0]).flat();
      base.addLora({ r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'] }, 7);
      expect(maxAbsDiff(stepLogits(base, batches[0]).flat(), before)).to.equal(0);
      expect(base.trainableVariables()).to.have.length(2 * 2 * 2 + 4);
    } finally {
      base.dispose();
    }
  });

  it('merges into a plain checkpoint that scores like the adapter (1e-5)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-lora-merge-'));
    const { model: adapted } = await loadPrm(adapterDir);
    try {
      const want = stepLogits(adapted, batches[1]).flat();
      await expectRejects(savePrmCheckpoint(adapted, join(dir, 'x')), /LoRA adapter/);
      adapted.mergeLora();
      expect(adapted.lora).to.equal(null);
      expect([...adapted.variables.keys()].some((n) => n.includes('lora_'))).to.equal(false);
      await savePrmCheckpoint(adapted, join(dir, 'merged'));
      const { model: merged } = await loadPrm(join(dir, 'merged'));
      try {
        expect(maxAbsDiff(stepLogits(merged, batches[1]).flat(), want)).to.be.below(1e-5);
      } finally {
        merged.dispose();
      }
    } finally {
      adapted.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses adapter configs prmkit does not compute, naming the file and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-lora-bad-'));
    try {
      const cfg = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      for (const [key, value, pattern] of [
        ['use_dora', true, /"use_dora" is set/],
        ['target_modules', 'q_proj|v_proj', /"target_modules" must be a list/],
        ['target_modules', ['q_proj', 'lm_head'], /"target_modules" names "lm_head"/],
        ['peft_type', 'IA3', /"peft_type" is "IA3"; only LORA/],
      ] as const) {
        writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, base_model_name_or_path: baseDir, [key]: value }));
        await expectRejects(loadLoraAdapter(dir), new RegExp(`adapter_config\\.json: ${pattern.source}`));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("round trip: an adapter prmkit trained and saved loads in PEFT and scores the same (1e-4)", async function () {
    if (backend !== 'tensorflow') {
      console.warn('      skipped on wasm: the files and PEFT do not depend on the backend (run on tensorflow)');
      this.skip();
    }
    const missing = peftMissing();
    if (missing) {
      console.warn(`      skipped: ${missing}`);
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-lora-rt-'));
    const { model: trained } = await loadPrm(adapterDir);
    try {
      // Two optimizer steps move every adapter and head tensor away from PEFT's saved values.
      const names = new Map<tf.Variable, string>();
      for (const [n, v] of trained.variables) names.set(v, n);
      const params = trained.trainableVariables().map((variable) => ({ name: names.get(variable)!, variable }));
      const optimizer = new AdamW(params);
      const step = new TrainStep(params, optimizer, { maxGradNorm: 1, recompute: true });
      for (let k = 0; k < 2; k++) {
        await step.run([prmMicroBatch(trained, hostOf(batches[0], reference.batches[0].labels), 6, { kind: 'ce', classWeights: [1, 1] })], 0.01);
      }
      optimizer.dispose();
      await saveLoraAdapter(trained, join(dir, 'adapter'), { baseModel: baseDir });
      const batch = batches[1];
      const ids = tf.tensor2d(batch.input_ids, undefined, 'int32');
      const mask = tf.tensor2d(batch.attention_mask, undefined, 'int32');
      const logits = trained.logits(ids, mask);
      const ours = logits.arraySync() as number[][][];
      tf.dispose([ids, mask, logits]);
      const idsFile = join(dir, 'ids.json');
      writeFileSync(idsFile, JSON.stringify({ input_ids: batch.input_ids, attention_mask: batch.attention_mask }));
      const r = spawnSync('python3', ['scripts/fixtures/make_lora_fixture.py', '--score', join(dir, 'adapter'), '--base', baseDir, '--ids', idsFile], { cwd: repoRoot, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const theirs = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { logits: number[][][] }).logits;
      // Step positions only: padded positions carry no meaning.
      const at = (l: number[][][]) => batch.step_positions.flatMap((pos, b) => pos.flatMap((p) => l[b][p]));
      expect(maxAbsDiff(at(ours), at(theirs))).to.be.below(1e-4);
      expect(maxAbsDiff(at(ours), reference.batches[1].logits.flat())).to.be.above(1e-3);
    } finally {
      trained.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function expectRejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect((e as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}
