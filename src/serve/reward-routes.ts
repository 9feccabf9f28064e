import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { aggregateScore, AGGREGATORS, type Aggregator } from '../eval/aggregate.js';
import type { StepSplitter } from '../data/step-split.js';
import type { ScoreInput } from '../eval/score.js';
import { HttpError } from './errors.js';
import { splitQuery, type ChatFrame } from './query-split.js';
import { parseScoreRequest, type ScoreRequest } from './request.js';

/**
 * The scoring routes, over what the server shares between them: admission and body reading (the
 * same limits), encoding and the batcher (the same forward passes). Each handler returns the
 * JSON body of its 200 answer; refusals are HttpErrors.
 */
export interface ScoringContext {
  /** Admits the request (503 when full), checks its type and size, and parses its JSON body. */
  readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown>;
  /** Step scores of every item, through the request limits and the shared batcher. */
  score(request: ScoreRequest): Promise<number[][]>;
  splitter: StepSplitter;
  /** The model's chat frame, for cutting queries (computed on first use). */
  frame(): ChatFrame;
  /** One reward per item when the request names no aggregator. */
  aggregate: Aggregator;
}

/** Routes with a scoring handler; the server answers them 503 while draining. */
export const SCORING_ROUTES = ['/v1/score', '/get_reward'] as const;

const AggregateSchema = z.enum(AGGREGATORS);
const IdSchema = z.union([z.string(), z.number()]);

function aggregateOf(value: unknown, fallback: Aggregator, where: string): Aggregator {
  if (value === undefined) return fallback;
  const parsed = AggregateSchema.safeParse(value);
  if (!parsed.success) throw new HttpError(422, `invalid request: ${where}: must be one of ${AGGREGATORS.join(', ')}, got ${JSON.stringify(value)}`);
  return parsed.data;
}

/**
 * Takes `aggregate` (top level) and `id` (per item) out of a /v1/score body before the strict
 * item schema sees it: they are the server's own fields, never passed to the model.
 */
export function takeScoreExtras(json: unknown, fallback: Aggregator): { body: unknown; aggregate: Aggregator; ids: (string | number | undefined)[] } {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { body: json, aggregate: fallback, ids: [] };
  const { aggregate: given, ...rest } = json as Record<string, unknown>;
  const aggregate = aggregateOf(given, fallback, 'aggregate');
  const batch = 'items' in rest;
  const raw = batch ? rest.items : rest;
  const takeId = (item: unknown, where: string): { item: unknown; id?: string | number } => {
    if (item === null || typeof item !== 'object' || Array.isArray(item) || !('id' in item)) return { item };
    const { id, ...others } = item as Record<string, unknown>;
    const parsed = IdSchema.safeParse(id);
    if (!parsed.success) throw new HttpError(422, `invalid request: ${where}.id: must be a string or a number`);
    return { item: others, id: parsed.data };
  };
  if (!batch) {
    const { item, id } = takeId(raw, 'body');
    return { body: item, aggregate, ids: [id] };
  }
  if (!Array.isArray(raw)) return { body: rest, aggregate, ids: [] };
  const taken = raw.map((item, i) => takeId(item, `items[${i}]`));
  return { body: { ...rest, items: taken.map((t) => t.item) }, aggregate, ids: taken.map((t) => t.id) };
}

/** POST /v1/score: step scores, plus one reward per item and the item's id when given. */
export async function handleScore(ctx: ScoringContext, req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const { body, aggregate, ids } = takeScoreExtras(await ctx.readJson(req, res), ctx.aggregate);
  const request = parseScoreRequest(body, ctx.splitter);
  const scores = await ctx.score(request);
  // Steps cut from a response go back with their scores, so the client knows what each score is of.
  const result = (i: number): Record<string, unknown> => ({
    ...(ids[i] !== undefined ? { id: ids[i] } : {}),
    ...(request.split[i] ? { steps: request.items[i].steps } : {}),
    step_scores: scores[i],
    reward: aggregateScore(scores[i], aggregate),
  });
  return request.batch ? { results: scores.map((_, i) => result(i)), aggregate } : { ...result(0), aggregate };
}

// OpenRLHF's remote reward model body. Fields it may add later are ignored rather than refused:
// a trainer should not stop over a field the server has no use for (none reaches the model).
const GetRewardSchema = z.object({
  query: z.array(z.string()).min(1, 'must hold at least one query'),
  prompts: z.array(z.string()).optional(),
  labels: z.array(z.unknown()).optional(),
  aggregate: z.unknown().optional(),
});

/**
 * POST /get_reward (OpenRLHF `--remote_rm_url`): `{query: [prompt+response, ...], prompts?,
 * labels?}` -> `{rewards: [...]}`. Each query is cut into problem and response with the model's
 * chat frame, the response into steps by the server's splitter, and its step scores aggregated.
 * A response without any step (empty) gets reward 0, the lowest a step probability can be, so
 * one degenerate rollout does not fail its whole batch. Labels (reference answers) are accepted
 * and unused: the PRM judges the steps, not the final answer.
 */
export async function handleGetReward(ctx: ScoringContext, req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const json = await ctx.readJson(req, res);
  const parsed = GetRewardSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length === 0 ? 'body' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new HttpError(422, `invalid request: ${where}: ${issue.message} (expected {"query": [string, ...], "prompts"?: [...], "labels"?: [...]})`);
  }
  const { query, prompts } = parsed.data;
  const aggregate = aggregateOf(parsed.data.aggregate, ctx.aggregate, 'aggregate');
  if (prompts !== undefined && prompts.length !== query.length) {
    throw new HttpError(422, `invalid request: prompts: ${prompts.length} prompts for ${query.length} queries`);
  }
  const frame = ctx.frame();
  const items: ScoreInput[] = [];
  const itemOf: number[] = [];
  const stepsOf: string[][] = query.map((text, i) => {
    const cut = splitQuery(frame, text, prompts?.[i]);
    if (typeof cut === 'string') throw new HttpError(422, `query[${i}]: ${cut}`);
    const steps = ctx.splitter.split(cut.response);
    if (steps.length > 0) {
      itemOf[i] = items.length;
      items.push({ problem: cut.problem, steps });
    }
    return steps;
  });
  let scores: number[][] = [];
  try {
    if (items.length > 0) scores = await ctx.score({ items, split: items.map(() => true), batch: true });
  } catch (e) {
    // The scorer names items by their place among the scored ones; the client knows its queries.
    if (!(e instanceof HttpError)) throw e;
    const queryOf = (k: number): number => itemOf.indexOf(k);
    throw new HttpError(e.status, e.message.replace(/items\[(\d+)\]/g, (_, k: string) => `query[${queryOf(Number(k))}]`), e.headers);
  }
  const stepScores = stepsOf.map((steps, i) => (steps.length === 0 ? [] : scores[itemOf[i]]));
  const rewards = stepScores.map((s) => (s.length === 0 ? 0 : aggregateScore(s, aggregate)));
  // OpenRLHF reads "rewards"; its newer versions also read "scores" (for filtering by score).
  return { rewards, scores: rewards, step_scores: stepScores, aggregate };
}
