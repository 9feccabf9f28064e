/**
 * LLM-as-a-judge labels (the paper §3.1): the judge reads the solution as numbered paragraphs
 * and names the earliest wrong one or none. Replies are parsed strictly (prompts.ts); an
 * unparsable reply is asked again with another seed, and if none parses the sample is recorded
 * as unparsable — never guessed.
 */
import type { StepSample } from '../data/types.js';
import { hashString } from '../util/rng.js';
import type { ClientStats, OpenAIClient } from './client.js';
import { JUDGE_DEFAULTS, MAX_FAILED_SAMPLES } from './defaults.js';
import { buildJudgeMessages, parseJudgeReply } from './prompts.js';
import { countJsonlLines, openClient, openInput, runLabeling, type EndpointOptions, type InputOptions, type SampleFailure } from './run.js';
import { LabelQualityTally, type LabelQuality } from './stats.js';

export interface JudgeSettings {
  model: string;
  /** First attempt's temperature. */
  temperature?: number;
  /** Temperature of the re-asks after an unparsable reply. */
  retryTemperature?: number;
  /** Re-asks after unparsable replies. */
  parseRetries?: number;
  maxTokens?: number;
  seed?: number;
  /** Keep every reply in meta.judge.replies (default: only unparsable ones). */
  keepReplies?: boolean;
}

export interface JudgeSampleResult {
  record: StepSample;
  attempts: number;
  unparsable: boolean;
}

/**
 * Judges one sample. A verdict k keeps steps 0..k with labels 1..1,0 (like MC: what follows
 * the first error is dropped); -1 keeps all steps labelled 1. Unparsable: steps kept, no
 * labels, no firstError, meta.judge.status "unparsable" with the replies and reasons.
 */
export async function labelSampleJudge(sample: StepSample, client: OpenAIClient, settings: JudgeSettings): Promise<JudgeSampleResult> {
  const messages = buildJudgeMessages(sample.problem, sample.steps);
  const retries = settings.parseRetries ?? JUDGE_DEFAULTS.parseRetries;
  const baseSeed = hashString(`${settings.seed ?? 0}:${sample.problem}:${sample.steps.join('\n\n')}`) & 0x3fffffff;
  const replies: string[] = [];
  const reasons: string[] = [];
  for (let attempt = 0; attempt <= retries; attempt++) {
    const reply = await client.chat({
      model: settings.model,
      messages,
      temperature: attempt === 0 ? (settings.temperature ?? JUDGE_DEFAULTS.temperature) : (settings.retryTemperature ?? JUDGE_DEFAULTS.retryTemperature),
      seed: baseSeed + attempt,
      ...(settings.maxTokens !== undefined ? { max_tokens: settings.maxTokens } : {}),
    });
    const text = reply.choices[0].message.content;
    replies.push(text);
    const parsed = parseJudgeReply(text, sample.steps.length);
    if (!parsed.ok) {
      reasons.push(parsed.reason);
      continue;
    }
    const f = parsed.index;
    const kept = f === -1 ? sample.steps.length : f + 1;
    const judgeMeta: Record<string, unknown> = { status: 'ok', attempts: attempt + 1 };
    if (reasons.length > 0) judgeMeta.unparsableReplies = replies.slice(0, -1);
    if (settings.keepReplies) judgeMeta.reply = text;
    return {
      record: {
        ...sample,
        steps: sample.steps.slice(0, kept),
        labels: Array.from({ length: kept }, (_, i) => (i === f ? 0 : 1)),
        firstError: f,
        meta: { ...sample.meta, judge: judgeMeta },
      },
      attempts: attempt + 1,
      unparsable: false,
    };
  }
  const { labels: _labels, firstError: _firstError, ...unlabelled } = sample;
  return {
    record: { ...unlabelled, meta: { ...sample.meta, judge: { status: 'unparsable', attempts: retries + 1, replies, reasons } } },
    attempts: retries + 1,
    unparsable: true,
  };
}

export interface LabelJudgeOptions extends JudgeSettings, EndpointOptions, InputOptions {
  out: string;
  window?: number;
  maxFailures?: number;
  progress?: boolean;
}

export interface JudgeStats {
  command: 'judge';
  input: number;
  output: number;
  /** Samples with a parsed verdict, over samples in. */
  retention: number | null;
  failed: SampleFailure[];
  unparsable: number;
  /** Re-asks after an unparsable reply. */
  parseRetries: number;
  client: ClientStats;
  quality: LabelQuality;
}

/** `prmkit label judge` as a function. */
export async function labelJudge(opts: LabelJudgeOptions): Promise<JudgeStats> {
  const { client, close } = await openClient(opts);
  try {
    const { samples } = await openInput(opts);
    const total = /\.(jsonl|ndjson)$/i.test(opts.input) ? await countJsonlLines(opts.input) : 0;
    const quality = new LabelQualityTally();
    let unparsable = 0;
    let parseRetries = 0;
    const run = await runLabeling({
      samples,
      total,
      out: opts.out,
      progressLabel: 'label judge',
      window: opts.window ?? 2 * client.opts.concurrency,
      maxFailures: opts.maxFailures ?? MAX_FAILED_SAMPLES,
      progress: opts.progress,
      label: async (sample) => {
        const result = await labelSampleJudge(sample, client, opts);
        parseRetries += result.attempts - 1;
        if (result.unparsable) unparsable++;
        return result.record;
      },
      onWritten: (record) => quality.add(record),
    });
    return {
      command: 'judge',
      input: run.input,
      output: run.written,
      retention: run.input > 0 ? (run.written - unparsable) / run.input : null,
      failed: run.failed,
      unparsable,
      parseRetries,
      client: client.stats(),
      quality: quality.result(),
    };
  } finally {
    await close();
  }
}
