/**
 * Calibrates the activation constants of src/train/memory-plan.ts: one backward pass of a PRM with
 * the given layer shape. On the wasm backend (the default) the heap only grows, so its growth is
 * the peak of live memory (activations, their gradients and the parameter gradients). With
 * `--kernels fused|eager` it runs on the native backend instead and reports tf.profile's peak
 * bytes over the pass (the fused kernels' own scratch, a 64 x T block per thread, is not counted)
 * and the process's peak RSS. The engine counts a reshaped tensor's bytes again although
 * TensorFlow shares them, so on the native backend fit the per-layer cost to the peak RSS of two
 * layer counts (the difference cancels the libraries and the allocator's base).
 *
 *   node --import tsx scripts/bench/calibrate-memory-plan.ts HIDDEN MLP HEADS KV_HEADS LAYERS ROWS TOKENS [--recompute] [--kernels fused|eager] [--lora R]
 *
 * Two layer counts at one shape give the per-layer cost; two shapes split it into per-token and
 * per-score terms (see the memory-plan module for the fit). `--lora R` adds a LoRA adapter of rank R
 * (dropout 0.05, every projection) and trains it and the head, as model.lora does. `--vocab V` sets
 * the vocabulary (default 512); the weights are made in JavaScript, so the first use of each copies
 * it into TensorFlow while the JavaScript copy waits for the garbage collector: a large vocabulary
 * adds about one embedding to the peak RSS that a checkpoint loaded from disk does not.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { initPrm } from '../../src/model/prm.js';
import { AdamW } from '../../src/train/optimizer.js';
import { TrainStep } from '../../src/train/step.js';
import { prmMicroBatch } from '../../src/train/prm-objective.js';
import { collateBatch } from '../../src/model/encode.js';
import { stepTargets } from '../../src/train/loss.js';
import { checkKernelChoice, setKernelChoice } from '../../src/backend/fused/kernel-choice.js';
import { LORA_TARGETS } from '../../src/model/lora-targets.js';
const kernelsAt = process.argv.indexOf('--kernels');
const kernels = kernelsAt >= 0 ? checkKernelChoice(process.argv[kernelsAt + 1]) : null;
await selectBackend(kernels ? 'tensorflow' : 'wasm', { log: () => {} });
if (kernels) setKernelChoice(kernels);
const [h, inter, heads, kv, L, B, T] = process.argv.slice(2, 9).map(Number);
const recompute = process.argv.includes('--recompute');
const vocabAt = process.argv.indexOf('--vocab');
const cfg = { vocabSize: vocabAt >= 0 ? Number(process.argv[vocabAt + 1]) : 512, hiddenSize: h, numHiddenLayers: L, numAttentionHeads: heads, numKeyValueHeads: kv, headDim: h / heads, intermediateSize: inter, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, maxPositionEmbeddings: 4096, numLabels: 2 };
const model = initPrm(cfg, 0);
const loraAt = process.argv.indexOf('--lora');
const loraRank = loraAt >= 0 ? Number(process.argv[loraAt + 1]) : 0;
if (loraRank > 0) model.addLora({ r: loraRank, alpha: 2 * loraRank, dropout: 0.05, targetModules: [...LORA_TARGETS] }, 0);
const heap = () => (tf.backend() as any).wasm.HEAPU8.length as number;
const params = model.trainableVariables().map((variable) => ({ name: variable.name, variable }));
const step = new TrainStep(params, new AdamW(params), { maxGradNorm: 1, recompute });
const rows = Array.from({ length: B }, () => ({ inputIds: Array.from({ length: T }, (_, i) => (i * 31) % 500), stepPositions: [T - 1] }));
const collated = collateBatch(rows, { padTokenId: 0 });
const targets = stepTargets(collated.stepPositions, rows.map(() => [1]), T);
const staticBytes = tf.memory().numBytes; // weights + moments
const micro = prmMicroBatch(model, { collated, targets, tokens: B * T, pairs: B * (T - 1) }, 2, { kind: 'ce', classWeights: [1, 1] }, undefined, loraRank > 0 ? 'calibrate' : undefined);
let before: number, after: number, grads: tf.Tensor[] = [];
if (kernels) {
  before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    grads = step.gradients(micro).grads;
    return grads;
  });
  after = info.peakBytes; // the engine's byte count at its highest, weights and moments included
} else {
  before = heap();
  grads = step.gradients(micro).grads;
  after = heap();
}
const gradBytes = grads.reduce((a, g) => a + g.size * 4, 0);
console.log(JSON.stringify({ h, inter, heads, L, B, T, recompute, lora: loraRank, kernels: kernels ?? 'wasm', heapGrowthMB: ((after - before) / 1e6).toFixed(1), gradMB: (gradBytes / 1e6).toFixed(1), staticMB: (staticBytes / 1e6).toFixed(1), beforeMB: (before/1e6).toFixed(1), peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }));
