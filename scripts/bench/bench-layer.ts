/**
 * One decoder layer of the bench model (scripts/bench/bench-config.ts), forward + backward,
 * with the eager tfjs ops against prmkit's fused native kernels (src/backend/fused), on the
 * native backend. The prototype measurement of docs/performance.md.
 *
 *   node --import tsx scripts/bench/bench-layer.ts [--batch 8] [--seq 256] [--repeats 10] [--profile] [--real]
 *
 * --real: one layer of the Qwen2.5-0.5B shape instead (hidden 896, 14/2 heads of 64, MLP 4864;
 * default batch 2 x 512).
 *
 * Prints one JSON line per variant: median wall and process-CPU ms of forward and of forward +
 * backward, alternating
 * the variants each repeat (the machine is shared; alternating keeps a slow spell from landing
 * on one variant only). --profile also prints tf.profile's kernel times of one forward + backward
 * per variant, by kernel and input shape.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { decoderContext, decoderLayer, disposeDecoderContext } from '../../src/model/qwen2.js';
import type { KernelChoice } from '../../src/backend/fused/kernel-choice.js';
import { fusedKernelsAvailability } from '../../src/backend/fused/fused-ops.js';
import { initPrm } from '../../src/model/prm.js';
import { Rng } from '../../src/util/rng.js';
import { benchModelConfig } from './bench-config.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const real = process.argv.includes('--real');
const batch = arg('batch', real ? 2 : 8);
const seq = arg('seq', real ? 512 : 256);
const repeats = arg('repeats', 10);

await selectBackend('tensorflow');
const avail = fusedKernelsAvailability();
if (!avail.ok) throw new Error(`no fused kernels: ${avail.reason}`);
// One layer is enough to time one layer (the real shape's vocabulary would only cost memory).
const cfg = real
  ? benchModelConfig({ hiddenSize: 896, numHiddenLayers: 1, numAttentionHeads: 14, numKeyValueHeads: 2, headDim: 64, intermediateSize: 4864, vocabSize: 1024 })
  : benchModelConfig();
const model = initPrm(cfg, 0);
const layerVars = [...model.variables.entries()].filter(([n]) => n.startsWith('model.layers.0.')).map(([, v]) => v);
const layer = (model as unknown as { decoder: { layers: Parameters<typeof decoderLayer>[1][] } }).decoder.layers[0];
const rng = new Rng('bench-layer');
const h = tf.tensor2d(Float32Array.from({ length: batch * seq * cfg.hiddenSize }, () => rng.normal()), [batch * seq, cfg.hiddenSize]);
// Every row right-padded by a few tokens, as real batches are.
const mask = tf.tensor2d(Float32Array.from({ length: batch * seq }, (_, i) => (i % seq < seq - (i / seq) * 3 ? 1 : 0)), [batch, seq]);
const upstream = tf.randomNormal([batch * seq, cfg.hiddenSize]);

/** Process CPU ms (all threads) of the last run: on a shared machine less noisy than wall time. */
let lastCpuMs = 0;

function run(kernels: KernelChoice, backward: boolean): number {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const ctx = decoderContext(cfg, mask, { attentionBlockSize: 256, kernels });
  tf.tidy(() => {
    const f = () => tf.sum(tf.mul(decoderLayer(cfg, layer, h, ctx), upstream)) as tf.Scalar;
    if (backward) {
      const { grads } = tf.variableGrads(f, layerVars as tf.Variable[]);
      for (const g of Object.values(grads)) g.dataSync();
    } else f().dataSync();
  });
  disposeDecoderContext(ctx);
  const cpu = process.cpuUsage(cpuStart);
  lastCpuMs = (cpu.user + cpu.system) / 1000;
  return performance.now() - start;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const times: Record<string, number[]> = {};
for (let r = 0; r < repeats + 1; r++) {
  for (const kernels of ['eager', 'fused'] as const) {
    for (const backward of [false, true]) {
      const ms = run(kernels, backward);
      if (r > 0) {
        (times[`${kernels} ${backward ? 'fwd+bwd' : 'fwd'}`] ??= []).push(ms);
        (times[`${kernels} ${backward ? 'fwd+bwd' : 'fwd'} cpu`] ??= []).push(lastCpuMs);
      }
    }
  }
}
for (const kernels of ['eager', 'fused']) {
  console.log(JSON.stringify({ kernels, batch, seq, fwd_ms: +median(times[`${kernels} fwd`]).toFixed(1), fwd_bwd_ms: +median(times[`${kernels} fwd+bwd`]).toFixed(1), fwd_cpu_ms: +median(times[`${kernels} fwd cpu`]).toFixed(1), fwd_bwd_cpu_ms: +median(times[`${kernels} fwd+bwd cpu`]).toFixed(1) }));
}
console.log(JSON.stringify({ tensors: tf.memory().numTensors }));

if (process.argv.includes('--profile')) {
  for (const kernels of ['eager', 'fused'] as const) {
    const p = await tf.profile(() => {
      run(kernels, true);
    });
    const byKernel = new Map<string, number>();
    for (const k of p.kernels) {
      const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
      byKernel.set(key, (byKernel.get(key) ?? 0) + Number(k.kernelTimeMs));
    }
    const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
    console.log(`-- ${kernels}: ${total.toFixed(1)} ms in ${p.kernels.length} kernels`);
    for (const [key, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${ms.toFixed(1)}\t${key}`);
  }
}
