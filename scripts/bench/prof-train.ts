import * as tf from '@tensorflow/tfjs';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { initPrm } from '../../src/model/prm.js';
import { usesFusedKernels } from '../../src/model/qwen2.js';
import { checkKernelChoice, setKernelChoice } from '../../src/backend/fused/kernel-choice.js';
import { collateBatch } from '../../src/model/encode.js';
import { stepTargets, stepWeightTotal } from '../../src/train/loss.js';
import { AdamW } from '../../src/train/optimizer.js';
import { prmMicroBatch } from '../../src/train/prm-objective.js';
import { TrainStep } from '../../src/train/step.js';
import { Rng } from '../../src/util/rng.js';

const backend = (process.argv[2] ?? 'wasm') as ConcreteBackend;
const steps = Number(process.argv[3] ?? 3);
const profile = process.argv.includes('--profile');

await selectBackend(backend);
const cfg = { vocabSize: 4096, hiddenSize: 256, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 4, headDim: 64, intermediateSize: 1024, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, maxPositionEmbeddings: 512, numLabels: 2 };
const model = initPrm(cfg, 0);
// --kernels eager|fused: train.kernels for the whole step (decoder and AdamW), as a run sets it.
const kernelsArg = process.argv.indexOf('--kernels');
if (kernelsArg >= 0) setKernelChoice(checkKernelChoice(process.argv[kernelsArg + 1]));
const B = 8, T = 256;
const rng = new Rng(1);
const ids = Int32Array.from({ length: B * T }, () => rng.int(0, 4095));
const positions = Array.from({ length: B }, () => Array.from({ length: 8 }, (_, i) => 31 + 32 * i));
const probs = Float32Array.from({ length: B * 8 }, () => (rng.next() < 0.5 ? 0 : 1));
const names = [...model.variables.keys()];
const params = model.trainableVariables().map((v, i) => ({ name: names[i], variable: v }));
const recompute = process.argv.includes('--recompute');
const trainStep = new TrainStep(params, new AdamW(params), { maxGradNorm: 1, recompute });
const loss = { kind: 'ce' as const, classWeights: [1, 1] as [number, number] };
const rows = Array.from({ length: B }, (_, b) => ({ inputIds: ids.subarray(b * T, (b + 1) * T), stepPositions: positions[b] }));
const collated = collateBatch(rows, { padTokenId: 0 });
const targets = stepTargets(collated.stepPositions, positions.map((p, b) => p.map((_, k) => probs[b * 8 + k])), T);
const w = stepWeightTotal(probs, loss);
const phase = { step: 0 };
// The one training step (src/train/step.ts), as the trainer runs it.
async function step() {
  const t = performance.now();
  const r = await trainStep.run([prmMicroBatch(model, { collated, targets, tokens: B * T, pairs: B * (T - 1) }, w, loss)], 1e-4);
  phase.step += performance.now() - t;
  return r.loss;
}
await step();
await step();
if (profile) {
  const p = await tf.profile(async () => { await step(); });
  const agg = new Map<string, { ms: number; n: number }>();
  for (const k of p.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = agg.get(key) ?? { ms: 0, n: 0 };
    e.ms += Number(k.kernelTimeMs); e.n++;
    agg.set(key, e);
  }
  const byName = new Map<string, number>();
  for (const k of p.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  const calls = new Map<string, number>();
  for (const k of p.kernels) calls.set(k.name, (calls.get(k.name) ?? 0) + 1);
  console.log(`kernel calls ${p.kernels.length}`);
  console.log([...byName].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([n, ms]) => `${n}\t${ms.toFixed(1)}\t${calls.get(n)}`).join('\n'));
  console.log('----');
  console.log([...agg].sort((a, b) => b[1].ms - a[1].ms).slice(0, 120).map(([k, e]) => `${e.ms.toFixed(1)}\t${e.n}\t${k}`).join('\n'));
}
phase.step = 0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < steps; i++) await step();
const dt = (performance.now() - t0) / steps;
const cpu = process.cpuUsage(cpu0);
// Process CPU ms per step (all threads): on a shared machine steadier than wall time.
console.log(`cpu ${((cpu.user + cpu.system) / 1000 / steps).toFixed(0)} ms/step`);
console.log(Object.entries(phase).map(([k, v]) => `${k} ${(v / steps).toFixed(0)}`).join(' '));
console.log(`${backend} (kernels ${usesFusedKernels(model.decoderOptions) ? 'fused' : 'eager'}): ${dt.toFixed(0)} ms/step, ${(B * T / dt * 1000).toFixed(0)} tok/s, tensors ${tf.memory().numTensors}`);
if (process.argv.includes('--fwd')) {
  const micro = prmMicroBatch(model, { collated, targets, tokens: B * T, pairs: B * (T - 1) }, w, loss);
  const fwd = () => tf.tidy(() => micro.loss().dataSync()[0]);
  fwd();
  const t1 = performance.now();
  for (let i = 0; i < steps; i++) fwd();
  console.log(`forward only: ${((performance.now() - t1) / steps).toFixed(0)} ms`);
  micro.dispose();
}
