/**
 * Real-size checkpoint loading and scoring on ONE backend (a child process of
 * scripts/bench/bench-real.ts): loads a checkpoint written by scripts/bench/bench-real-train.ts the way
 * `--resume` does (model weights streamed in, then the optimizer moments), then scores
 * ProcessBench responses with the real Qwen tokenizer (one forward pass per response).
 *
 *   node --import tsx scripts/bench/bench-real-load.ts --checkpoint DIR [--samples 12] [--backend tensorflow]
 *
 * Prints one JSON object on the last stdout line (RealLoadResult).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readProcessBench } from '../../src/data/processbench.js';
import { loadScoringModel, scoreSamples } from '../../src/eval/score.js';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { encodeSample } from '../../src/model/encode.js';
import { OPTIMIZER_FILE, readOptimizerStateInto } from '../../src/train/checkpoints.js';
import { AdamW } from '../../src/train/optimizer.js';
import { argValue, emitResult, loadAverage } from './bench-config.js';
import { DEFAULT_PROCESSBENCH_DIR, strideSubset } from './bench-score.js';

export interface RealLoadResult {
  backend: string;
  /** Model weights from the checkpoint's shards (as `prmkit score` and `--resume` load them). */
  load_s: number;
  /** The optimizer moments (2 x the model) streamed into their variables, as `--resume` does. */
  optimizer_load_s: number | null;
  peak_rss_after_load_mb: number;
  score: { samples: number; steps: number; tokens: number; seconds: number; tokens_per_s: number; mean_tokens: number };
  peak_rss_mb: number;
  load_average: number[];
}

const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

export async function runRealLoad(opts: { checkpoint: string; backend: ConcreteBackend; samples: number; data: string }): Promise<RealLoadResult> {
  await selectBackend(opts.backend, { log: (line) => process.stderr.write(`${line}\n`) });
  let t = performance.now();
  const { model, tokenizer } = await loadScoringModel(opts.checkpoint);
  const loadS = (performance.now() - t) / 1000;
  try {
    // A trainer checkpoint also holds the optimizer moments, which --resume loads next.
    let optimizerLoadS: number | null = null;
    if (existsSync(join(opts.checkpoint, OPTIMIZER_FILE))) {
      t = performance.now();
      const optimizer = new AdamW([...model.variables].map(([name, variable]) => ({ name, variable })));
      await readOptimizerStateInto(opts.checkpoint, optimizer);
      optimizerLoadS = (performance.now() - t) / 1000;
      optimizer.dispose();
    }
    const peakAfterLoad = maxRssMb();

    const all = await readProcessBench(opts.data);
    const subset = strideSubset(all, opts.samples);
    let tokens = 0;
    let steps = 0;
    for (const s of subset) {
      tokens += encodeSample(tokenizer, s).inputIds.length;
      steps += s.steps.length;
    }
    t = performance.now();
    const result = await scoreSamples(model, tokenizer, subset, { maxTokensPerBatch: 4096 });
    const seconds = (performance.now() - t) / 1000;
    if (result.tooLong.length > 0) throw new Error(`${result.tooLong.length} samples longer than the model's positions`);
    return {
      backend: opts.backend,
      load_s: loadS,
      optimizer_load_s: optimizerLoadS,
      peak_rss_after_load_mb: peakAfterLoad,
      score: { samples: subset.length, steps, tokens, seconds, tokens_per_s: tokens / seconds, mean_tokens: Math.round(tokens / subset.length) },
      peak_rss_mb: maxRssMb(),
      load_average: loadAverage(),
    };
  } finally {
    model.dispose();
    if (tf.memory().numTensors !== 0) process.stderr.write(`bench-real-load: ${tf.memory().numTensors} tensors left\n`);
  }
}

if (process.argv[1]?.endsWith('bench-real-load.ts')) {
  const checkpoint = argValue('checkpoint');
  if (!checkpoint) throw new Error('--checkpoint DIR is required');
  emitResult(
    await runRealLoad({
      checkpoint,
      backend: argValue('backend', 'tensorflow') as ConcreteBackend,
      samples: Number(argValue('samples', '12')),
      data: argValue('data', DEFAULT_PROCESSBENCH_DIR) as string,
    }),
  );
}
