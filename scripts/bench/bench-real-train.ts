/**
 * Real-size training on ONE backend (a child process of scripts/bench/bench-real.ts, so its peak RSS is
 * its own): the Qwen2.5-0.5B-shaped PRM made by scripts/bench/make_real_prm.py, loaded from its bf16
 * shards, fine-tuned by prmkit's own trainer (trainModel: batching, loss, the one training step,
 * AdamW, clipping) on random tokens, then one checkpoint written (model shards + optimizer state).
 *
 *   node --import tsx scripts/bench/bench-real-train.ts --model DIR --batch 2 --seq 512 [--steps 3]
 *        [--warmup 1] [--recompute] [--backend tensorflow] [--out DIR] [--lora R]
 *
 * Data-parallel (as a worker of scripts/bench/bench-sharded-train.ts, TF_CONFIG set): joins the
 * cluster and trains its share of every batch, with --shard none|states|states+gradients
 * (train.shard_optimizer); rank 0 also reports the collective seconds of each step.
 *
 * --lora R trains a LoRA adapter of rank R (alpha 2R, dropout 0.05, every projection) and the head
 * over the frozen base, as recipes/qwen2.5-math-7b-prm-lora.yaml does; the checkpoint is the adapter.
 *
 * Prints one JSON object on the last stdout line (RealTrainResult).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { TrainSchema } from '../../src/recipes/schema.js';
import type { TrainItem } from '../../src/train/batches.js';
import { prmModelIo } from '../../src/train/model-io.js';
import { trainModel } from '../../src/train/trainer.js';
import { LORA_TARGETS } from '../../src/model/lora.js';
import { Rng } from '../../src/util/rng.js';
import { argValue, emitResult, loadAverage } from './bench-config.js';
import { joinCluster, trainingCluster } from '../../src/distributed/join.js';
import { readFileSync } from 'node:fs';
import type { ShardOptimizer } from '../../src/train/memory-plan.js';

export interface RealTrainResult {
  backend: string;
  batch: [number, number];
  recompute: boolean;
  /** LoRA rank, or null for full fine-tuning. */
  lora: number | null;
  parameters: number;
  trainable_parameters: number;
  load_s: number;
  rss_after_load_mb: number;
  /** Process peak RSS up to the end of loading (the weights being read in, the adapter added). */
  peak_rss_after_load_mb: number;
  step_s: number[];
  /** Timed steps only (after warmup). */
  s_per_step: number;
  train_tokens_per_s: number;
  /** Process peak RSS up to the end of the last training step. */
  peak_rss_mb: number;
  /** RSS after each step: flat when nothing accumulates. */
  rss_per_step_mb: number[];
  num_tensors: number[];
  /** Checkpoint at the end: model shards, optimizer state, trainer state, checksums, publish of final/. */
  save_s: number;
  peak_rss_after_save_mb: number;
  final_loss: number | null;
  load_average: number[];
  /** Data-parallel runs: this worker's rank, the worker count, train.shard_optimizer. */
  rank?: number;
  workers?: number;
  shard_optimizer?: ShardOptimizer;
  /** Rank 0 of a data-parallel run: seconds in collectives, each step (metrics.jsonl collective_s). */
  collective_s?: number[];
}

const STEPS_PER_SEQUENCE = 8;

function randomItems(count: number, seqLen: number, vocab: number, stepToken: number, seed: number): TrainItem[] {
  const rng = new Rng(seed);
  const stride = Math.floor(seqLen / STEPS_PER_SEQUENCE);
  return Array.from({ length: count }, (_, i) => {
    const inputIds = new Int32Array(seqLen);
    for (let t = 0; t < seqLen; t++) inputIds[t] = rng.int(0, vocab - 1);
    const stepPositions: number[] = [];
    for (let t = stride - 1; t < seqLen; t += stride) {
      inputIds[t] = stepToken;
      stepPositions.push(t);
    }
    return { id: `real-${i}`, inputIds, stepPositions, labels: stepPositions.map(() => (rng.next() < 0.5 ? 0 : 1)) };
  });
}

const mb = (bytes: number) => Math.round(bytes / 1048576);
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

export async function runRealTrain(opts: { model: string; backend: ConcreteBackend; batch: number; seq: number; warmup: number; steps: number; recompute: boolean; out?: string; lora?: number; shard?: ShardOptimizer }): Promise<RealTrainResult> {
  await selectBackend(opts.backend, { log: (line) => process.stderr.write(`${line}\n`) });
  const cluster = trainingCluster();
  const dp = cluster ? await joinCluster(cluster, { log: (line) => process.stderr.write(`${line}\n`) }) : undefined;
  const t0 = performance.now();
  const { model, files } = await loadPrm(opts.model, { progress: false });
  if (opts.lora) model.addLora({ r: opts.lora, alpha: 2 * opts.lora, dropout: 0.05, targetModules: [...LORA_TARGETS] }, 0);
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoad = mb(process.memoryUsage().rss);
  const peakAfterLoad = maxRssMb();
  const total = opts.warmup + opts.steps;
  const outDir = opts.out ?? mkdtempSync(join(tmpdir(), 'prmkit-bench-real-'));
  const config = TrainSchema.parse({
    dev_fraction: 0,
    max_steps: total,
    batch_size: opts.batch,
    max_tokens_per_batch: opts.batch * opts.seq,
    max_length: opts.seq,
    lr: 1e-5,
    schedule: 'constant',
    warmup_steps: 0,
    max_grad_norm: 1,
    eval_every: 0,
    save_every: 0,
    log_every: 1,
    final: 'last',
    recompute: opts.recompute,
    shard_optimizer: opts.shard ?? 'none',
    seed: 0,
  });
  const stamps: number[] = [];
  const rss: number[] = [];
  const tensors: number[] = [];
  let peakTrain = 0;
  let lastLoss: number | null = null;
  stamps[0] = performance.now();
  try {
    await trainModel({
      model,
      io: prmModelIo(model, files, { adapterBase: opts.model }),
      train: randomItems(total * opts.batch, opts.seq, model.config.vocabSize, 151646 % model.config.vocabSize, 1),
      config,
      outDir,
      padTokenId: 0,
      progress: false,
      parallel: dp?.role,
      log: (line) => process.stderr.write(`${line}\n`),
      afterStep: (step) => {
        stamps[step] = performance.now();
        rss.push(mb(process.memoryUsage().rss));
        tensors.push(tf.memory().numTensors);
        peakTrain = maxRssMb();
        process.stderr.write(`step ${step}/${total}: ${((stamps[step] - stamps[step - 1]) / 1000).toFixed(1)} s, rss ${rss[rss.length - 1]} MB, peak ${peakTrain} MB\n`);
      },
    });
    const end = performance.now();
    const stepS = stamps.slice(1).map((t, i) => (t - stamps[i]) / 1000);
    const timed = stepS.slice(opts.warmup);
    const perStep = timed.reduce((a, b) => a + b, 0) / timed.length;
    return {
      backend: opts.backend,
      batch: [opts.batch, opts.seq],
      recompute: opts.recompute,
      lora: opts.lora ?? null,
      parameters: model.numParameters(),
      trainable_parameters: model.trainableVariables().reduce((a, v) => a + v.size, 0),
      load_s: loadS,
      rss_after_load_mb: rssAfterLoad,
      peak_rss_after_load_mb: peakAfterLoad,
      step_s: stepS.map((s) => Math.round(s * 100) / 100),
      s_per_step: perStep,
      train_tokens_per_s: (opts.batch * opts.seq) / perStep,
      peak_rss_mb: peakTrain,
      rss_per_step_mb: rss,
      num_tensors: tensors,
      save_s: (end - stamps[total]) / 1000,
      peak_rss_after_save_mb: maxRssMb(),
      final_loss: lastLoss,
      load_average: loadAverage(),
      ...(dp ? { rank: dp.rank, workers: dp.worldSize, shard_optimizer: config.shard_optimizer } : {}),
      ...(dp?.rank === 0 ? { collective_s: collectiveSeconds(join(outDir, 'metrics.jsonl')) } : {}),
    };
  } finally {
    dp?.close();
    model.dispose();
    if (!opts.out) rmSync(outDir, { recursive: true, force: true });
  }
}

/** collective_s of each train record of a run's metrics.jsonl (log_every 1: one per step). */
function collectiveSeconds(file: string): number[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; collective_s?: number })
    .filter((r) => r.kind === 'train' && r.collective_s !== undefined)
    .map((r) => Math.round((r.collective_s as number) * 100) / 100);
}

if (process.argv[1]?.endsWith('bench-real-train.ts')) {
  const model = argValue('model');
  if (!model) throw new Error('--model DIR is required (make it with scripts/bench/make_real_prm.py)');
  emitResult(
    await runRealTrain({
      model,
      backend: (argValue('backend', 'tensorflow') as ConcreteBackend),
      batch: Number(argValue('batch', '2')),
      seq: Number(argValue('seq', '512')),
      warmup: Number(argValue('warmup', '1')),
      steps: Number(argValue('steps', '3')),
      recompute: process.argv.includes('--recompute'),
      out: argValue('out'),
      lora: argValue('lora') === undefined ? undefined : Number(argValue('lora')),
      shard: argValue('shard', 'none') as ShardOptimizer,
    }),
  );
}
