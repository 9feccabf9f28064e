/**
 * Monte Carlo estimation of step labels (Math-Shepherd style, as in the paper §2.1): for a
 * step prefix, sample K completions from a policy and grade each against the gold answer;
 * the soft label is the share that reach it, the hard label is soft > threshold. Steps after
 * the first negative are dropped, not labelled.
 *
 * linear: prefixes 0, 1, ... until the first negative.
 * binary: OmegaPRM's binary search for the first negative, assuming labels are monotone
 *   (right, ..., right, wrong, ...): about log2(n) prefixes instead of up to n.
 * The last step needs no rollouts: its label is whether the full solution's answer is right.
 */
import { gradeAnswer } from '../math/index.js';
import type { StepSample } from '../data/types.js';
import { RecordError } from '../data/jsonl.js';
import { hashString } from '../util/rng.js';
import type { OpenAIClient } from './client.js';
import { MAX_FAILED_SAMPLES, MC_DEFAULTS, type MC_LABEL_KINDS, type MC_SEARCHES } from './defaults.js';
import { renderPolicyPrompt, STEP_SEPARATOR, type PolicyPromptOptions } from './prompts.js';
import { countJsonlLines, openClient, openInput, runLabeling, type EndpointOptions, type InputOptions, type SampleFailure } from './run.js';
import { LabelQualityTally, type LabelQuality } from './stats.js';
import type { ClientStats } from './client.js';

export type McSearch = (typeof MC_SEARCHES)[number];

export interface McSettings extends PolicyPromptOptions {
  model: string;
  /** Completions per prefix, K. */
  rollouts?: number;
  /** Hard label = soft > threshold. */
  threshold?: number;
  search?: McSearch;
  /** Which labels go in `labels`: hard 0/1 or the soft shares. */
  labels?: (typeof MC_LABEL_KINDS)[number];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  /** Mixed into each request's seed (a request's seed is derived from this and its prompt). */
  seed?: number;
  stop?: string[];
}

export interface McSampleResult {
  record: StepSample;
  /** Prefixes whose completions were requested. */
  prefixes: number;
  /** Prefixes a linear search would have evaluated to reach the same first error. */
  linearPrefixes: number;
}

/**
 * Labels one sample. `answer` (the gold answer) is required. The output keeps the steps up to
 * and including the first negative one, with hard (or soft) labels; meta.softLabels holds
 * the soft label of every kept step (null where binary search inferred it without rollouts).
 */
export async function labelSampleMc(sample: StepSample, client: OpenAIClient, settings: McSettings): Promise<McSampleResult> {
  const gold = sample.answer;
  if (gold === undefined) throw new Error(`sample ${sample.id}: no gold answer (field "answer"); MC estimation grades completions against it`);
  const k = settings.rollouts ?? MC_DEFAULTS.rollouts;
  const threshold = settings.threshold ?? MC_DEFAULTS.threshold;
  const n = sample.steps.length;
  const soft: (number | null)[] = new Array(n).fill(null);
  let prefixes = 0;

  const finalSoft = gradeAnswer(sample.steps.join(STEP_SEPARATOR), gold).correct ? 1 : 0;
  const softAt = async (i: number): Promise<number> => {
    if (soft[i] !== null) return soft[i]!;
    if (i === n - 1) return (soft[i] = finalSoft);
    prefixes++;
    const prefix = sample.steps.slice(0, i + 1);
    const prompt = renderPolicyPrompt(sample.problem, prefix, settings);
    const reply = await client.completions({
      model: settings.model,
      prompt,
      n: k,
      max_tokens: settings.maxTokens ?? MC_DEFAULTS.maxTokens,
      temperature: settings.temperature ?? MC_DEFAULTS.temperature,
      ...(settings.topP !== undefined ? { top_p: settings.topP } : {}),
      seed: hashString(`${settings.seed ?? 0}:${prompt}`) & 0x7fffffff,
      ...(settings.stop && settings.stop.length > 0 ? { stop: settings.stop } : {}),
    });
    const written = prefix.join(STEP_SEPARATOR) + STEP_SEPARATOR;
    const correct = reply.choices.filter((c) => gradeAnswer(written + c.text, gold).correct).length;
    return (soft[i] = correct / k);
  };
  const positive = async (i: number) => (await softAt(i)) > threshold;

  let firstError = -1;
  if (settings.search === 'binary') {
    // First negative among steps 0..n-2; hi = n-1 stands for "none before the last step".
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (await positive(mid)) lo = mid + 1;
      else hi = mid;
    }
    firstError = lo < n - 1 ? lo : (await positive(n - 1)) ? -1 : n - 1;
  } else {
    for (let i = 0; i < n; i++) {
      if (!(await positive(i))) {
        firstError = i;
        break;
      }
    }
  }

  const kept = firstError === -1 ? n : firstError + 1;
  const hard = Array.from({ length: kept }, (_, i) => (i === firstError ? 0 : 1));
  const keptSoft = soft.slice(0, kept);
  const labels = (settings.labels ?? MC_DEFAULTS.labels) === 'soft' ? keptSoft.map((s, i) => s ?? hard[i]) : hard;
  const record: StepSample = {
    ...sample,
    steps: sample.steps.slice(0, kept),
    labels,
    firstError,
    meta: {
      ...sample.meta,
      softLabels: keptSoft,
      mc: { rollouts: k, threshold, search: settings.search ?? MC_DEFAULTS.search, prefixes, totalSteps: n },
    },
  };
  // Linear search evaluates every prefix up to the first error (the last step is free).
  const linearPrefixes = Math.min(firstError === -1 ? n : firstError + 1, n - 1);
  return { record, prefixes, linearPrefixes };
}

export interface LabelMcOptions extends McSettings, EndpointOptions, InputOptions {
  out: string;
  /** Samples labelled at once (default: 2 x client concurrency). */
  window?: number;
  /** Give up after more than this many samples failed. */
  maxFailures?: number;
  progress?: boolean;
}

export interface McStats {
  command: 'mc';
  input: number;
  output: number;
  retention: number | null;
  failed: SampleFailure[];
  search: McSearch;
  rolloutsPerPrefix: number;
  threshold: number;
  prefixesEvaluated: number;
  rollouts: number;
  /** Rollouts a linear search would have needed for the same first errors, and the saving. */
  rolloutsLinear: number;
  rolloutsSaved: number;
  client: ClientStats;
  quality: LabelQuality;
}

/** `prmkit label mc` as a function: labels a StepSample file into `out` (JSONL). */
export async function labelMc(opts: LabelMcOptions): Promise<McStats> {
  const { client, close } = await openClient(opts);
  try {
    const { samples } = await openInput(opts);
    const total = /\.(jsonl|ndjson)$/i.test(opts.input) ? await countJsonlLines(opts.input) : 0;
    const quality = new LabelQualityTally();
    let prefixes = 0;
    let linearPrefixes = 0;
    const k = opts.rollouts ?? MC_DEFAULTS.rollouts;
    const run = await runLabeling({
      samples: checkAnswers(samples, opts.input),
      total,
      out: opts.out,
      progressLabel: 'label mc',
      window: opts.window ?? 2 * client.opts.concurrency,
      maxFailures: opts.maxFailures ?? MAX_FAILED_SAMPLES,
      progress: opts.progress,
      label: async (sample) => {
        const result = await labelSampleMc(sample, client, opts);
        prefixes += result.prefixes;
        linearPrefixes += result.linearPrefixes;
        return result.record;
      },
      onWritten: (record) => quality.add(record),
    });
    return {
      command: 'mc',
      input: run.input,
      output: run.written,
      retention: run.input > 0 ? run.written / run.input : null,
      failed: run.failed,
      search: opts.search ?? MC_DEFAULTS.search,
      rolloutsPerPrefix: k,
      threshold: opts.threshold ?? MC_DEFAULTS.threshold,
      prefixesEvaluated: prefixes,
      rollouts: prefixes * k,
      rolloutsLinear: linearPrefixes * k,
      rolloutsSaved: (linearPrefixes - prefixes) * k,
      client: client.stats(),
      quality: quality.result(),
    };
  } finally {
    await close();
  }
}

/** Fails early, naming the record, when a sample lacks the gold answer MC needs. */
async function* checkAnswers(samples: AsyncIterable<StepSample>, file: string): AsyncGenerator<StepSample> {
  let record = 0;
  for await (const s of samples) {
    record++;
    if (s.answer === undefined || s.answer.trim() === '') {
      throw new RecordError(file, record, 'answer', `sample ${s.id}: no gold answer; MC estimation grades completions against it`);
    }
    yield s;
  }
}
