import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { nativeAvailability } from '../../src/backend/fused/fused-ops.js';
import { kernelInfo, setKernelChoice } from '../../src/backend/fused/kernel-choice.js';
import { backendInfo, selectBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { collateBatch } from '../../src/model/encode.js';
import type { PrmModel } from '../../src/model/prm.js';
import { usesFusedKernels } from '../../src/model/qwen2.js';
import { AdamW } from '../../src/train/optimizer.js';
import { prmMicroBatch } from '../../src/train/prm-objective.js';
import { stepTargets, type LossConfig } from '../../src/train/loss.js';
import { TrainStep } from '../../src/train/step.js';
import { Rng } from '../../src/util/rng.js';
import { skipUnlessFusedKernels } from '../backend/native-probe.js';

/**
 * Training through the fused native kernels (train.kernels: fused: decoder and AdamW) against the eager ops: 20
 * AdamW steps from the same weights on the same padded batches end within 1e-4 of each other
 * (losses and every parameter), on the plain and the recompute path, with the auxiliary LM
 * loss. Native backend only; the fallback (and its reason) is checked on wasm.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));
const LOSS: LossConfig = { kind: 'ce', classWeights: [1, 1] };
const STEPS = 20;

function batchAt(model: PrmModel, step: number) {
  const rng = new Rng(`fused-training-${step}`);
  const vocab = model.config.vocabSize;
  // Lengths vary, so rows are right-padded; 70+ tokens spans two of the kernel's 64-row blocks.
  const lengths = [rng.int(60, 90), rng.int(1, 12), rng.int(20, 70)];
  const rows = lengths.map((n) => ({
    inputIds: Array.from({ length: n }, () => rng.int(0, vocab - 1)),
    stepPositions: [...new Set([Math.floor(n / 3), Math.floor((2 * n) / 3), n - 1])],
  }));
  const collated = collateBatch(rows, { padTokenId: 0 });
  const labels = rows.map((r) => r.stepPositions.map(() => (rng.next() < 0.5 ? 0 : 1)));
  const targets = stepTargets(collated.stepPositions, labels, collated.seqLen);
  return { collated, targets, tokens: lengths.reduce((a, b) => a + b, 0), pairs: lengths.reduce((a, b) => a + b - 1, 0) };
}

async function train(kernels: 'fused' | 'eager', recompute: boolean): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  const { model } = await loadPrm(FIXTURE);
  model.setDecoderOptions({ kernels });
  expect(usesFusedKernels(model.decoderOptions)).to.equal(kernels === 'fused');
  const params = [...model.variables].filter(([, v]) => v.trainable).map(([name, variable]) => ({ name, variable }));
  const optimizer = new AdamW(params, { weightDecay: 0.01, kernels });
  const step = new TrainStep(params, optimizer, { maxGradNorm: 1, recompute });
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const micro = prmMicroBatch(model, batchAt(model, s), 9, LOSS, { weight: 0.3, groupPairs: 150 });
    try {
      losses.push((await step.run([micro], 1e-3)).loss); // train.lr's default
    } finally {
      micro.dispose();
    }
  }
  const out = new Map(params.map(({ name, variable }) => [name, variable.dataSync() as Float32Array]));
  optimizer.dispose();
  model.dispose();
  return { losses, params: out };
}

function maxRelativeDiff(a: Float32Array, b: Float32Array): number {
  const scale = b.reduce((m, x) => Math.max(m, Math.abs(x)), 0) || 1;
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0) / scale;
}

describe('train: fused kernels vs eager ops over 20 steps (native backend)', function () {
  this.timeout(300000);
  before(async function () {
    await skipUnlessFusedKernels(this);
  });

  for (const recompute of [false, true]) {
    it(`losses and parameters agree within 1e-4${recompute ? ' (activation recomputation)' : ''}, without leaking`, async () => {
      const eager = await train('eager', recompute);
      const before = tf.memory().numTensors;
      const fused = await train('fused', recompute);
      expect(tf.memory().numTensors, 'tensors after fused training').to.equal(before);
      expect(eager.losses.some((l, i) => i > 0 && l !== eager.losses[0]), 'the model trains').to.equal(true);
      fused.losses.forEach((l, i) => expect(Math.abs(l - eager.losses[i]), `loss at step ${i}`).to.be.below(1e-4 * Math.max(1, Math.abs(eager.losses[i]))));
      for (const [name, want] of eager.params) expect(maxRelativeDiff(fused.params.get(name)!, want), name).to.be.below(1e-4);
    });
  }

  it('the process-wide choice (train.kernels) reaches the decoder and the backend info', () => {
    try {
      expect(setKernelChoice('eager')).to.deep.equal({ requested: 'eager', used: 'eager' });
      expect(usesFusedKernels({ attentionBlockSize: 256 })).to.equal(false);
      expect(backendInfo().kernels.used).to.equal('eager');
      expect(setKernelChoice('fused')).to.deep.equal({ requested: 'fused', used: 'fused' });
      expect(usesFusedKernels({ attentionBlockSize: 256 })).to.equal(true);
      expect(usesFusedKernels({ attentionBlockSize: 256, kernels: 'eager' })).to.equal(false);
    } finally {
      setKernelChoice('fused');
    }
  });
});

describe('train: fused kernels fall back to eager on wasm', () => {
  after(async () => {
    await selectBackend('cpu', { log: () => {} });
  });
  it('with the reason in kernelInfo (and so in the manifest)', async () => {
    await selectBackend('wasm', { log: () => {} });
    const info = kernelInfo('fused');
    expect(info.used).to.equal('eager');
    expect(info.reason).to.match(/wasm backend has no fused kernels/);
    expect(backendInfo().kernels.used).to.equal('eager');
    expect(usesFusedKernels({ attentionBlockSize: 256, kernels: 'fused' })).to.equal(false);
  });

  it('and on a native binding without the kernels, naming what is missing', () => {
    expect(nativeAvailability({})).to.deep.equal({ ok: false, reason: "the native binding was built without prmkit's fused kernels (run 'npm run setup-native')" });
    const partial = nativeAvailability({ prmkitFusedOps: ['PrmkitAttention'], prmkitFusedError: 'PrmkitRmsNorm: already registered' });
    expect(partial.ok).to.equal(false);
    expect(!partial.ok && partial.reason).to.match(/lacks the fused ops PrmkitAttentionGrad, .*: PrmkitRmsNorm: already registered/);
    const gpu = nativeAvailability({ prmkitFusedOps: ['PrmkitAttention'], isUsingGpuDevice: () => true });
    expect(!gpu.ok && gpu.reason).to.match(/CPU kernels and this native backend runs on a GPU/);
  });
});
