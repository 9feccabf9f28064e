import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackendOrSkip } from '../support/backend.js';
import { maxAbsDiff } from '../support/close.js';
import { runExport } from '../../src/cli/commands/export.js';
import { loadPrm, savePrmCheckpoint } from '../../src/model/checkpoint.js';
import type { PrmModel } from '../../src/model/prm.js';
import { SafetensorsReader } from '../../src/model/safetensors.js';
import { ModelSchema } from '../../src/recipes/schema.js';
import { createModel } from '../../src/run/model-setup.js';
import type { TrainItem } from '../../src/train/batches.js';
import { toySetup, toyTrainConfig, trainToy, type ToySetup } from './toy.js';

/**
 * A LoRA training run end to end on the toy world over a saved base: the base stays as it was,
 * checkpoints are PEFT adapter directories whose optimizer state covers the adapter and head
 * only, an interrupted run resumes to the uninterrupted run's adapter (dropout on, so its masks
 * must repeat), the published final adapter scores like the trained model, and
 * `prmkit export --merge` turns it into a plain checkpoint that scores the same.
 */

const LORA = { r: 4, alpha: 8, dropout: 0.1, target_modules: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] };

function stepLogits(model: PrmModel, items: readonly TrainItem[]): number[] {
  const out: number[] = [];
  for (const it of items.slice(0, 4)) {
    const ids = tf.tensor2d([Array.from(it.inputIds)], undefined, 'int32');
    const mask = tf.onesLike(ids) as tf.Tensor2D;
    const logits = model.logitsAt(ids, mask, [it.stepPositions]);
    out.push(...(logits.dataSync() as Float32Array));
    tf.dispose([ids, mask, logits]);
  }
  return out;
}

async function tensorsOf(file: string): Promise<Map<string, Float32Array>> {
  const reader = await SafetensorsReader.open(file);
  try {
    const out = new Map<string, Float32Array>();
    for (const name of reader.names()) out.set(name, (await reader.read(name)).data);
    return out;
  } finally {
    await reader.close();
  }
}

describe('LoRA training run (tensorflow)', function () {
  this.timeout(180_000);
  let tmp: string;
  let base: string;
  let setup: ToySetup;

  before(async function () {
    await selectBackendOrSkip(this, 'tensorflow');
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-lora-train-'));
    setup = await toySetup({ hidden: 16, layers: 2 });
    base = join(tmp, 'base');
    await savePrmCheckpoint(setup.model, base, setup.files);
    setup.model.dispose();
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const loraSetup = async (): Promise<ToySetup> => ({
    ...setup,
    model: await createModel(ModelSchema.parse({ init: 'pretrained', path: base, lora: LORA }), setup.tokenizer, 0, '.'),
  });
  const config = toyTrainConfig({ epochs: 1, max_steps: 6, save_every: 3, eval_every: 3, final: 'last', recompute: true });

  it('trains the adapter and head over a frozen base, saves PEFT adapter checkpoints, publishes and merges them', async () => {
    const run = await loraSetup();
    const frozenName = 'model.layers.1.mlp.down_proj.weight';
    const frozenBefore = run.model.variables.get(frozenName)!.dataSync().slice();
    const result = await trainToy(run, config, join(tmp, 'run'), { adapterBase: base });
    expect(result!.steps).to.equal(6);
    expect(maxAbsDiff(run.model.variables.get(frozenName)!.dataSync(), frozenBefore)).to.equal(0);
    const loraB = run.model.variables.get('model.layers.1.mlp.down_proj.lora_B.weight')!;
    expect(tf.tidy(() => tf.max(tf.abs(loraB)).dataSync()[0])).to.be.above(0);

    const ckpt = join(tmp, 'run', 'checkpoints', 'checkpoint-3');
    const files = readdirSync(ckpt);
    expect(files).to.include.members(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'tokenizer.json']);
    expect(files.some((f) => f.startsWith('model.safetensors'))).to.equal(false);
    const moments = [...(await tensorsOf(join(ckpt, 'optimizer.safetensors'))).keys()];
    expect(moments).to.have.length(2 * (2 * 4 * 2 + 4));
    expect(moments.every((n) => /lora_[AB]\.weight$|\.score\.|exp_avg(_sq)?\.score\./.test(n))).to.equal(true);

    const want = stepLogits(run.model, run.train);
    const final = (await loadPrm(result!.finalDir)).model;
    try {
      expect(final.lora?.r).to.equal(4);
      expect(maxAbsDiff(stepLogits(final, run.train), want)).to.be.below(1e-6);
    } finally {
      final.dispose();
    }
    const merged = join(tmp, 'merged');
    await runExport({ adapter: result!.finalDir, out: merged, merge: true, backend: 'tensorflow' });
    expect(existsSync(join(merged, 'model.safetensors'))).to.equal(true);
    const plain = (await loadPrm(merged)).model;
    try {
      expect(plain.lora).to.equal(null);
      expect(maxAbsDiff(stepLogits(plain, run.train), want)).to.be.below(1e-5);
    } finally {
      plain.dispose();
    }
    run.model.dispose();
  });

  it('resumes an interrupted LoRA run to the same adapter as an uninterrupted one', async () => {
    const whole = await loraSetup();
    await trainToy(whole, config, join(tmp, 'whole'), { adapterBase: base });
    const cut = await loraSetup();
    expect(await trainToy(cut, config, join(tmp, 'cut'), { adapterBase: base, stopAfter: 3 })).to.equal(null);
    cut.model.dispose();
    const resumed = await loraSetup();
    const result = await trainToy(resumed, config, join(tmp, 'cut'), { adapterBase: base, resume: true });
    expect(result!.resumedFrom).to.equal(3);
    let worst = 0;
    for (const spec of [...whole.model.loraSpecs()]) {
      worst = Math.max(worst, maxAbsDiff(whole.model.variables.get(spec.name)!.dataSync(), resumed.model.variables.get(spec.name)!.dataSync()));
    }
    expect(worst).to.be.below(1e-6);
    whole.model.dispose();
    resumed.model.dispose();
  });

  it('refuses LoRA without a pretrained base, and unknown target modules', () => {
    expect(ModelSchema.safeParse({ lora: LORA }).error?.issues[0].message).to.match(/LoRA adapts a pretrained base/);
    expect(ModelSchema.safeParse({ init: 'pretrained', path: 'x', lora: { ...LORA, target_modules: ['qkv'] } }).success).to.equal(false);
  });
});
