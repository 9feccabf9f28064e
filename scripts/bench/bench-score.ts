/**
 * Scoring throughput of the bench model on ONE backend (a child process of scripts/bench/bench.ts):
 * ProcessBench responses scored with one forward pass per response (scoreSamples) against the
 * naive one forward pass per step prefix (scoreByPrefixes), in steps per second.
 *
 *   node --import tsx scripts/bench/bench-score.ts --backend tensorflow [--samples 340]
 *        [--prefix-samples 100] [--data ../shared/data/processbench]
 *
 * The bench model (vocabulary 4096) reads text through a word-level tokenizer built from the
 * ProcessBench text itself (src/model/word-tokenizer.ts), so no Qwen vocabulary is needed.
 * --samples 0 scores all samples. Subsets take every k-th sample, so they mix all four
 * ProcessBench subsets and their lengths. Prints one JSON object on the last stdout line.
 */
import { fileURLToPath } from 'node:url';
import { readProcessBench } from '../../src/data/processbench.js';
import type { StepSample } from '../../src/data/types.js';
import { scoreByPrefixes, scoreSamples, type ScoreInput } from '../../src/eval/score.js';
import { backendInfo, BackendUnavailableError, selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { checkKernelChoice, setKernelChoice, type KernelChoice } from '../../src/backend/fused/kernel-choice.js';
import { encodeSample } from '../../src/model/encode.js';
import { initPrm } from '../../src/model/prm.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';
import { argValue, BENCH, benchModelConfig, emitResult, loadAverage } from './bench-config.js';

export const DEFAULT_PROCESSBENCH_DIR = fileURLToPath(new URL('../../../shared/data/processbench', import.meta.url));

export interface ScoreRun {
  samples: number;
  steps: number;
  /** Tokens through the model (one sequence per response, or per prefix). */
  tokens: number;
  seconds: number;
  steps_per_s: number;
}

export interface ScoreBenchResult {
  backend: string;
  available: boolean;
  reason?: string;
  threads?: number;
  /** The whole benchmark: samples and steps in it. */
  dataset?: { samples: number; steps: number; tokens: number };
  one_forward_per_response?: ScoreRun;
  one_forward_per_prefix?: ScoreRun;
  /** one_forward_per_response.steps_per_s / one_forward_per_prefix.steps_per_s. */
  speedup?: number;
  /** Largest |score difference| between the two methods on the samples both scored. */
  max_score_difference?: number;
  peak_rss_mb?: number;
  load_average?: number[];
}

/** Every k-th sample, n in all (n <= 0 or n >= length: all of them). */
export function strideSubset<T>(items: readonly T[], n: number): T[] {
  if (n <= 0 || n >= items.length) return [...items];
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(items[Math.floor((i * items.length) / n)]);
  return out;
}

function* corpus(samples: readonly StepSample[]): Generator<string> {
  for (const s of samples) {
    yield s.problem;
    yield* s.steps;
  }
}

export async function runScoreBench(
  backend: ConcreteBackend,
  opts: { samples: number; prefixSamples: number; data?: string; kernels?: KernelChoice },
): Promise<ScoreBenchResult> {
  try {
    await selectBackend(backend, { log: (line) => process.stderr.write(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendUnavailableError) return { backend, available: false, reason: err.reason };
    throw err;
  }
  setKernelChoice(opts.kernels ?? 'fused');
  const all = await readProcessBench(opts.data ?? DEFAULT_PROCESSBENCH_DIR);
  const files = buildWordLevelTokenizer(corpus(all), { maxVocab: BENCH.vocab });
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  if (tok.vocabSize > BENCH.vocab) throw new Error(`word-level tokenizer has ${tok.vocabSize} ids, the bench model ${BENCH.vocab}`);
  const model = initPrm(benchModelConfig({ stepTokenId: tok.stepTokenId, padTokenId: tok.padTokenId }), 0);
  try {
    const inputs: ScoreInput[] = all.map((s) => ({ problem: s.problem, steps: s.steps }));
    let tokens = 0;
    let steps = 0;
    const lengths = inputs.map((s) => {
      const enc = encodeSample(tok, s);
      tokens += enc.inputIds.length;
      steps += enc.nSteps;
      return enc;
    });
    const prefixTokens = (sample: number) => lengths[sample].stepPositions.reduce((a, p) => a + p + 1, 0);
    const indices = inputs.map((_, i) => i);
    const timed = async (subset: number[], method: typeof scoreSamples, label: string) => {
      const chosen = subset.map((i) => inputs[i]);
      const start = performance.now();
      const result = await method(model, tok, chosen, { progressLabel: `${backend} ${label}` });
      const seconds = (performance.now() - start) / 1000;
      const nSteps = subset.reduce((a, i) => a + lengths[i].nSteps, 0);
      const nTokens = subset.reduce((a, i) => a + (method === scoreByPrefixes ? prefixTokens(i) : lengths[i].inputIds.length), 0);
      const run: ScoreRun = { samples: subset.length, steps: nSteps, tokens: nTokens, seconds, steps_per_s: nSteps / seconds };
      return { run, scores: result.stepScores };
    };
    // Warm-up: kernel setup and, on wasm, XNNPACK operator creation, outside the timing.
    await scoreSamples(model, tok, inputs.slice(0, 2));

    const responseSubset = strideSubset(indices, opts.samples);
    const perResponse = await timed(responseSubset, scoreSamples, 'per response');
    const prefixSubset = strideSubset(responseSubset, opts.prefixSamples);
    const perPrefix = await timed(prefixSubset, scoreByPrefixes, 'per prefix');
    let maxDiff = 0;
    const position = new Map(responseSubset.map((sample, k) => [sample, k]));
    prefixSubset.forEach((sample, k) => {
      const a = perResponse.scores[position.get(sample)!] ?? [];
      const b = perPrefix.scores[k] ?? [];
      a.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - b[j]))));
    });
    return {
      backend,
      available: true,
      threads: backendInfo().threads,
      dataset: { samples: inputs.length, steps, tokens },
      one_forward_per_response: perResponse.run,
      one_forward_per_prefix: perPrefix.run,
      speedup: perResponse.run.steps_per_s / perPrefix.run.steps_per_s,
      max_score_difference: maxDiff,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      load_average: loadAverage(),
    };
  } finally {
    model.dispose();
  }
}

if (process.argv[1]?.endsWith('bench-score.ts')) {
  const backend = argValue('backend') as ConcreteBackend | undefined;
  if (!backend) throw new Error('--backend is required');
  emitResult(
    await runScoreBench(backend, {
      samples: Number(argValue('samples', '340')),
      prefixSamples: Number(argValue('prefix-samples', '100')),
      data: argValue('data'),
      kernels: checkKernelChoice(argValue('kernels', 'fused')!),
    }),
  );
}
