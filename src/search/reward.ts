import { ApiError, OpenAIClient } from '../labels/client.js';
import type { ResponseCache } from '../labels/cache.js';
import type { StepScorer } from '../eval/step-scorer.js';

/**
 * The PRM side of search: step scores of partial or whole solutions, from a local checkpoint
 * (a StepScorer: every step of a sequence read from one forward pass) or from a remote
 * `prmkit serve` (POST /v1/score, batched, retried, cached like policy requests). Each scored
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

/**
 * A remote reward server. Items go in requests of at most `batchItems`; a request refused as too
 * large (413: an item longer than the model's context) is retried item by item, and an item
 * refused alone stays unscored.
 */
export function remoteReward(url: string, opts: { token?: string; cache?: ResponseCache; concurrency?: number; batchItems?: number; timeoutMs?: number } = {}): RewardModel {
  const client = new OpenAIClient({
    endpoints: [url],
    apiKey: opts.token,
    cache: opts.cache,
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const batchItems = opts.batchItems ?? 16;
  const post = (items: readonly { problem: string; steps: readonly string[] }[]) =>
    client.post('/v1/score', { items: items.map((it) => ({ problem: it.problem, steps: [...it.steps] })) }, (v) => validateScores(v, items.length));
  return {
    description: `reward server ${url}`,
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
            if (!(e instanceof ApiError && e.status === 413)) throw e;
            for (const i of scorable) {
              try {
                out[i] = (await post([items[i]]))[0];
              } catch (inner) {
                if (!(inner instanceof ApiError && inner.status === 413)) throw inner;
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
