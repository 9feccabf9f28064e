/**
 * Training throughput of the bench model on ONE backend (a child process of scripts/bench/bench.ts,
 * so its peak RSS is this backend's alone): prmkit's own trainer loop (trainModel: batching,
 * loss, clipping, AdamW, metrics) on random token data, a few warmup steps, then timed steps.
 *
 *   node --import tsx scripts/bench/bench-train.ts --backend wasm [--warmup 2] [--steps 5] [--kernels fused|eager]
 *
 * Prints one JSON object on the last stdout line (see TrainBenchResult).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, BackendUnavailableError, selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { checkKernelChoice, setKernelChoice, type KernelChoice, type KernelInfo } from '../../src/backend/fused/kernel-choice.js';
import { initPrm } from '../../src/model/prm.js';
import { TrainSchema } from '../../src/recipes/schema.js';
import type { TrainItem } from '../../src/train/batches.js';
import { prmModelIo } from '../../src/train/model-io.js';
import { trainModel } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { argValue, BENCH, benchModelConfig, emitResult, loadAverage } from './bench-config.js';

export interface TrainBenchResult {
  backend: string;
  available: boolean;
  reason?: string;
  threads?: number;
  simd?: boolean | null;
  /** train.kernels as requested and as run. */
  kernels?: KernelInfo;
  warmup_steps?: number;
  timed_steps?: number;
  ms_per_step?: number;
  step_ms?: number[];
  train_tokens_per_s?: number;
  /** Process CPU time over wall time in the timed steps (2.0 = both cores busy). */
  cpu_utilisation?: number;
  peak_rss_mb?: number;
  /** tf.memory().numTensors after each timed step: flat when nothing leaks. */
  num_tensors?: number[];
  final_loss?: number;
  load_average?: number[];
}

const STEP_TOKEN_ID = 3;
const PAD_TOKEN_ID = 0;

/** Random tokens with a step token every seqLen/stepsPerSequence positions, random labels. */
function randomItems(count: number, seed: number): TrainItem[] {
  const rng = new Rng(seed);
  const stride = BENCH.seqLen / BENCH.stepsPerSequence;
  const items: TrainItem[] = [];
  for (let i = 0; i < count; i++) {
    const inputIds = new Int32Array(BENCH.seqLen);
    for (let t = 0; t < BENCH.seqLen; t++) inputIds[t] = rng.int(8, BENCH.vocab - 1);
    const stepPositions: number[] = [];
    for (let t = stride - 1; t < BENCH.seqLen; t += stride) {
      inputIds[t] = STEP_TOKEN_ID;
      stepPositions.push(t);
    }
    items.push({ id: `bench-${i}`, inputIds, stepPositions, labels: stepPositions.map(() => (rng.next() < 0.5 ? 0 : 1)) });
  }
  return items;
}

export async function runTrainBench(backend: ConcreteBackend, warmup: number, steps: number, kernels: KernelChoice = 'fused'): Promise<TrainBenchResult> {
  try {
    await selectBackend(backend, { log: (line) => process.stderr.write(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendUnavailableError) return { backend, available: false, reason: err.reason };
    throw err;
  }
  if (!(warmup >= 0 && steps >= 1)) throw new Error(`need at least one timed step (got ${steps}, warmup ${warmup})`);
  setKernelChoice(kernels); // as a run does with train.kernels
  const info = backendInfo();
  const total = warmup + steps;
  const model = initPrm(benchModelConfig({ stepTokenId: STEP_TOKEN_ID, padTokenId: PAD_TOKEN_ID }), 0);
  const outDir = mkdtempSync(join(tmpdir(), 'prmkit-bench-train-'));
  const config = TrainSchema.parse({
    dev_fraction: 0,
    max_steps: total,
    batch_size: BENCH.batch,
    max_tokens_per_batch: BENCH.batch * BENCH.seqLen,
    max_length: BENCH.seqLen,
    lr: BENCH.lr,
    schedule: 'constant',
    warmup_steps: 0,
    weight_decay: BENCH.weightDecay,
    max_grad_norm: BENCH.maxGradNorm,
    eval_every: 0,
    save_every: 0,
    log_every: 1,
    final: 'last',
    seed: 0,
  });
  const stamps: number[] = [];
  const cpu: number[] = [];
  const numTensors: number[] = [];
  let peakRssMb = 0;
  // With no warmup step (the slow cpu backend) the first step is timed from the trainer's start.
  stamps[0] = performance.now();
  cpu[0] = (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
  try {
    await trainModel({
      model,
      io: prmModelIo(model, {}),
      train: randomItems(total * BENCH.batch, 1),
      config,
      outDir,
      padTokenId: PAD_TOKEN_ID,
      progress: false,
      log: (line) => process.stderr.write(`${line}\n`),
      afterStep: (step) => {
        stamps[step] = performance.now();
        const usage = process.cpuUsage();
        cpu[step] = (usage.user + usage.system) / 1e6;
        if (step > warmup) numTensors.push(tf.memory().numTensors);
        // Before the final checkpoint write, which is not part of training throughput.
        if (step === total) peakRssMb = process.resourceUsage().maxRSS / 1024;
        process.stderr.write(`step ${step}/${total}: ${(stamps[step] - (stamps[step - 1] ?? stamps[step])).toFixed(0)} ms\n`);
      },
    });
    const stepMs = [];
    for (let s = warmup + 1; s <= total; s++) stepMs.push(stamps[s] - stamps[s - 1]);
    const seconds = (stamps[total] - stamps[warmup]) / 1000;
    const lines = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]) as { loss?: number };
    return {
      backend,
      available: true,
      threads: info.threads,
      simd: info.simd,
      kernels: info.kernels,
      warmup_steps: warmup,
      timed_steps: steps,
      ms_per_step: (seconds * 1000) / steps,
      step_ms: stepMs.map((ms) => Math.round(ms)),
      train_tokens_per_s: (steps * BENCH.batch * BENCH.seqLen) / seconds,
      cpu_utilisation: (cpu[total] - cpu[warmup]) / seconds,
      peak_rss_mb: Math.round(peakRssMb),
      num_tensors: numTensors,
      final_loss: last.loss,
      load_average: loadAverage(),
    };
  } finally {
    model.dispose();
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('bench-train.ts')) {
  const backend = argValue('backend') as ConcreteBackend | undefined;
  if (!backend) throw new Error('--backend is required');
  emitResult(await runTrainBench(backend, Number(argValue('warmup', '2')), Number(argValue('steps', '5')), checkKernelChoice(argValue('kernels', 'fused')!)));
}
