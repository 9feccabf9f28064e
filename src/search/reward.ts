import { ApiError, OpenAIClient } from '../labels/client.js';
import type { ResponseCache } from '../labels/cache.js';
import type { StepScorer } from '../eval/step-scorer.js';
import { renderSample } from '../model/encode.js';
import type { PrmTokenizer } from '../model/tokenizer.js';

/**
 * The PRM side of search: step scores of partial or whole solutions, from a local checkpoint
 * (a StepScorer: every step of a sequence read from one forward pass), from a remote
 * `prmkit serve` (POST /v1/score) or from vLLM's pooling endpoint (POST /pooling), batched,
 * retried and cached like policy requests. Each scored
 * sequence is one PRM forward pass: the count every method's budget reports.
 */

export interface RewardModel {
  /** One score list per item; null for an item the PRM could not score (longer than its context). */
  score(items: readonly { problem: string; steps: readonly string[] }[]): Promise<(number[] | null)[]>;
  readonly description: string;
  close(): Promise<void>;
}

export function localReward(scorer: StepScorer, description: string): RewardModel {
  return {
    description,
    async score(items) {
      if (items.length === 0) return [];
      return (await scorer.score(items, null)).stepScores;
    },
    async close() {
      scorer.dispose();
    },
  };
}

function validateScores(value: unknown, items: number): number[][] {
  const results = (value as { results?: unknown })?.results;
  if (!Array.isArray(results) || results.length !== items) throw new Error(`reply has no "results" array of ${items} items`);
  return results.map((r, i) => {
    const s = (r as { step_scores?: unknown })?.step_scores;
    if (!Array.isArray(s) || !s.every((x) => typeof x === 'number')) throw new Error(`results[${i}].step_scores is not an array of numbers`);
    return s as number[];
  });
}

type Items = readonly { problem: string; steps: readonly string[] }[];

/**
 * Scores items in requests of at most `batchItems`; a request refused as too long (`tooLong`:
 * an item longer than the model's context) is retried item by item, and an item refused alone
 * stays unscored.
 */
function batchedRemote(description: string, batchItems: number, post: (items: Items) => Promise<number[][]>, tooLong: (e: unknown) => boolean): RewardModel {
  return {
    description,
    async score(items) {
      const out: (number[] | null)[] = new Array(items.length).fill(null);
      const chunks: number[][] = [];
      for (let i = 0; i < items.length; i += batchItems) chunks.push(Array.from({ length: Math.min(batchItems, items.length - i) }, (_, k) => i + k));
      await Promise.all(
        chunks.map(async (idx) => {
          const scorable = idx.filter((i) => items[i].steps.length > 0);
          if (scorable.length === 0) return;
          try {
            const scores = await post(scorable.map((i) => items[i]));
            scorable.forEach((i, k) => (out[i] = scores[k]));
          } catch (e) {
            if (!tooLong(e)) throw e;
            for (const i of scorable) {
              try {
                out[i] = (await post([items[i]]))[0];
              } catch (inner) {
                if (!tooLong(inner)) throw inner;
              }
            }
          }
        }),
      );
      return out;
    },
    async close() {},
  };
}

export interface RemoteRewardOptions {
  token?: string;
  cache?: ResponseCache;
  concurrency?: number;
  batchItems?: number;
  timeoutMs?: number;
  /** Retries of one request (the client's default when unset). */
  maxRetries?: number;
}

/** A remote `prmkit serve` (POST /v1/score). */
export function remoteReward(url: string, opts: RemoteRewardOptions = {}): RewardModel {
  const client = clientFor(url, opts);
  const post = (items: Items) =>
    client.post('/v1/score', { items: items.map((it) => ({ problem: it.problem, steps: [...it.steps] })) }, (v) => validateScores(v, items.length));
  return batchedRemote(`reward server ${url}`, opts.batchItems ?? 16, post, (e) => e instanceof ApiError && e.status === 413);
}

function clientFor(base: string, opts: RemoteRewardOptions): OpenAIClient {
  return new OpenAIClient({
    endpoints: [base],
    apiKey: opts.token,
    cache: opts.cache,
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
  });
}

/** True for a URL of vLLM's pooling endpoint (".../pooling"), which remoteRewardFor speaks to with vllmPoolingReward. */
export function isPoolingUrl(url: string): boolean {
  return /\/pooling\/?$/.test(new URL(url).pathname);
}

/**
 * The probability that a step is correct from what vLLM's step pooler returns for it: the pair
 * [P(wrong), P(right)] (softmax applied) or the two raw logits (then softmaxed here); a single
 * number is taken as the score itself.
 */
function stepProbability(row: unknown, where: string): number {
  if (typeof row === 'number') return row;
  if (!Array.isArray(row) || row.length !== 2 || !row.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`${where} is not a pair of numbers [wrong, right] (was the model served with num_labels 2?)`);
  }
  const [wrong, right] = row as number[];
  if (wrong >= 0 && right >= 0 && Math.abs(wrong + right - 1) < 1e-4) return right;
  return 1 / (1 + Math.exp(wrong - right));
}

function validatePooling(value: unknown, items: Items): number[][] {
  const data = (value as { data?: unknown })?.data;
  if (!Array.isArray(data) || data.length !== items.length) throw new Error(`reply has no "data" array of ${items.length} items (is this vLLM's /pooling?)`);
  const byIndex = new Array<number[]>(items.length);
  data.forEach((entry, k) => {
    const index = typeof (entry as { index?: unknown })?.index === 'number' ? (entry as { index: number }).index : k;
    const rows = (entry as { data?: unknown })?.data;
    if (!Array.isArray(rows)) throw new Error(`data[${k}].data is not an array`);
    if (index < 0 || index >= items.length || byIndex[index]) throw new Error(`data[${k}].index ${index} is out of range or repeated`);
    const steps = items[index].steps.length;
    if (rows.length !== steps) {
      throw new Error(`data[${k}]: ${rows.length} step scores for ${steps} steps (serve the model with the STEP pooler and step_tag_id = the step token's id)`);
    }
    byIndex[index] = rows.map((row, j) => stepProbability(row, `data[${k}].data[${j}]`));
  });
  return byIndex;
}

/**
 * A PRM served by vLLM (`vllm serve DIR --runner pooling`, Qwen2ForProcessRewardModel with the
 * STEP pooler): POST {base}/pooling with each item rendered as prmkit encodes it (the chat
 * template of `tokenizer`, steps closed by its step token); vLLM tokenizes the text and returns
 * one row per step token. A request refused as too long (400 naming the context length) is
 * retried item by item, like remoteReward's 413.
 */
export function vllmPoolingReward(url: string, tokenizer: PrmTokenizer, opts: RemoteRewardOptions & { model?: string } = {}): RewardModel {
  const base = url.replace(/\/pooling\/?$/, '');
  const client = clientFor(base, opts);
  const post = (items: Items) =>
    client.post('/pooling', { ...(opts.model ? { model: opts.model } : {}), input: items.map((it) => renderSample(tokenizer, it)) }, (v) => validatePooling(v, items));
  const tooLong = (e: unknown) => e instanceof ApiError && e.status === 400 && /context|too long|maximum .*length|max_model_len/i.test(e.message);
  return batchedRemote(`vLLM pooling ${url}`, opts.batchItems ?? 16, post, tooLong);
}

/**
 * The reward model at a URL: vLLM's pooling endpoint when the URL ends in /pooling (its items
 * are rendered with the tokenizer in `tokenizerDir`, the PRM's, so the text is the one prmkit
 * trains on), else a `prmkit serve`.
 */
export async function openRemoteReward(url: string, opts: RemoteRewardOptions & { tokenizerDir?: string; model?: string }): Promise<RewardModel> {
  if (!isPoolingUrl(url)) return remoteReward(url, opts);
  if (opts.tokenizerDir === undefined) {
    throw new Error(`${url} is vLLM's pooling endpoint: give --reward-tokenizer DIR (the PRM's directory, for its chat template and step token)`);
  }
  const { PrmTokenizer } = await import('../model/tokenizer.js');
  return vllmPoolingReward(url, await PrmTokenizer.fromDir(opts.tokenizerDir), opts);
}
