/**
 * The bench configuration of DESIGN.md ("Performance"), shared by scripts/bench/bench.ts, its child
 * processes and (as command-line flags) scripts/bench/bench_torch.py.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Qwen2Config } from '../../src/model/config.js';

export const BENCH = {
  vocab: 4096,
  hidden: 256,
  layers: 4,
  heads: 4,
  kvHeads: 4,
  intermediate: 1024,
  seqLen: 256,
  batch: 8,
  /** Supervised step tokens per training sequence (every seqLen/stepsPerSequence tokens). */
  stepsPerSequence: 8,
  ropeTheta: 10000,
  rmsNormEps: 1e-6,
  lr: 1e-4,
  weightDecay: 0.01,
  maxGradNorm: 1,
} as const;

/**
 * The bench model. Scoring reads whole ProcessBench responses (up to ~4,100 word-level tokens),
 * so positions go well past the training length; RoPE has no learned position table.
 */
export function benchModelConfig(extra: Partial<Qwen2Config> = {}): Qwen2Config {
  return {
    vocabSize: BENCH.vocab,
    hiddenSize: BENCH.hidden,
    numHiddenLayers: BENCH.layers,
    numAttentionHeads: BENCH.heads,
    numKeyValueHeads: BENCH.kvHeads,
    headDim: BENCH.hidden / BENCH.heads,
    intermediateSize: BENCH.intermediate,
    ropeTheta: BENCH.ropeTheta,
    rmsNormEps: BENCH.rmsNormEps,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 8192,
    numLabels: 2,
    initializerRange: 0.02,
    ...extra,
  };
}

/** The same model for scripts/bench/bench_torch.py. */
export function torchArgs(): string[] {
  return [
    '--vocab', String(BENCH.vocab),
    '--hidden', String(BENCH.hidden),
    '--layers', String(BENCH.layers),
    '--heads', String(BENCH.heads),
    '--kv-heads', String(BENCH.kvHeads),
    '--intermediate', String(BENCH.intermediate),
    '--seq', String(BENCH.seqLen),
    '--batch', String(BENCH.batch),
    '--steps-per-seq', String(BENCH.stepsPerSequence),
    '--lr', String(BENCH.lr),
    '--weight-decay', String(BENCH.weightDecay),
    '--max-grad-norm', String(BENCH.maxGradNorm),
  ];
}

/** One JSON object on the last stdout line: how child processes hand results back. */
export function emitResult(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function argValue(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** 1, 5 and 15-minute load averages, rounded: the machine is shared, so every figure carries them. */
export function loadAverage(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs a child process; its result is the JSON object on its last stdout line. */
export function runChild<T>(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited with ${code}`));
      try {
        resolvePromise(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${command} ${args.join(' ')} printed no JSON result (last line: ${last.slice(0, 200)})`));
      }
    });
  });
}

