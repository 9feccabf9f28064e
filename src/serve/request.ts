import { z } from 'zod';
import { DEFAULT_SYSTEM_PROMPT, EncodeError, encodeSample, fittingBound, type EncodedSample } from '../model/encode.js';
import type { PrmTokenizer } from '../model/tokenizer.js';
import type { ScoreInput } from '../eval/score.js';
import type { StepSplitter } from '../data/step-split.js';
import { HttpError } from './errors.js';

/**
 * The body of POST /v1/score: one item `{problem, steps}` (or `{problem, response}`: a text the
 * server's step splitter cuts into steps) or a batch `{items: [...]}`. Objects are strict: a
 * field the server does not know (a "model", a "path", ...) is refused with 422, so a request
 * can never pick a model or make the server read a file.
 */
const ItemSchema = z
  .strictObject({
    problem: z.string(),
    steps: z.array(z.string()).min(1, 'must hold at least one step').optional(),
    response: z.string().optional(),
  })
  .superRefine((item, ctx) => {
    if (item.steps !== undefined && item.response !== undefined) ctx.addIssue({ code: 'custom', path: ['response'], message: 'give steps or a response, not both' });
    if (item.steps === undefined && item.response === undefined) ctx.addIssue({ code: 'custom', path: ['steps'], message: 'Invalid input: expected array, received undefined (or give a "response" text)' });
  });
const BatchSchema = z.strictObject({
  items: z.array(ItemSchema).min(1, 'must hold at least one item'),
});

export interface ScoreRequest {
  items: ScoreInput[];
  /** Per item: true when its steps come from splitting its response (they are sent back). */
  split: boolean[];
  /** True for the {items: [...]} form, answered with {results: [...]}. */
  batch: boolean;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length === 0 ? 'body' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    const accepted = issue.path.length === 0 ? 'problem and steps (or response), or items' : 'problem and steps (or response)';
    return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${keys} (accepted: ${accepted}; the model is fixed when the server starts)`;
  }
  return `${where}: ${issue.message}`;
}

/**
 * Checks the shape of a parsed body; 422 with every problem found (at most 5 listed). Items
 * given as a response are split into steps by `splitter` (a response without any step is 422).
 */
export function parseScoreRequest(json: unknown, splitter?: StepSplitter): ScoreRequest {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new HttpError(422, 'expected a JSON object {"problem": string, "steps": [string, ...]} or {"items": [...]}');
  }
  const batch = 'items' in json;
  const result = (batch ? BatchSchema : ItemSchema).safeParse(json);
  if (!result.success) {
    const issues = result.error.issues;
    const shown = issues.slice(0, 5).map(formatIssue);
    if (issues.length > 5) shown.push(`... and ${issues.length - 5} more`);
    throw new HttpError(422, `invalid request: ${shown.join('; ')}`);
  }
  const given = batch ? (result.data as z.infer<typeof BatchSchema>).items : [result.data as z.infer<typeof ItemSchema>];
  const split = given.map((item) => item.response !== undefined);
  const items = given.map((item, i): ScoreInput => {
    if (item.response === undefined) return { problem: item.problem, steps: item.steps as string[] };
    if (!splitter) throw new HttpError(422, `${batch ? `items[${i}]` : 'body'}.response: this server takes steps only`);
    const steps = splitter.split(item.response);
    if (steps.length === 0) throw new HttpError(422, `${batch ? `items[${i}]` : 'body'}.response: no step in the response (empty after splitting)`);
    return { problem: item.problem, steps };
  });
  return { items, split, batch };
}

export interface EncodeLimits {
  maxSteps: number;
  maxTokens: number;
  /** The model's context: a longer item cannot be scored whole. */
  maxLength: number;
}

/**
 * The limits that need no tokenizing, checked before a request costs any: its step count, and
 * per item a lower bound of its tokens counted from its characters (tok.minTokens) against the
 * model's context and the per-request token limit. A one-megabyte word is refused here in
 * microseconds instead of tokenized for seconds. encodeRequest applies the exact limits after.
 */
export function checkRequestCheaply(tok: PrmTokenizer, request: ScoreRequest, limits: EncodeLimits): void {
  const { items, batch } = request;
  const name = (i: number): string => (batch ? `items[${i}]` : 'body');
  let steps = 0;
  for (const item of items) steps += item.steps.length;
  if (steps > limits.maxSteps) {
    throw new HttpError(413, `too many steps: ${steps} in this request, the limit is ${limits.maxSteps}`);
  }
  let tokens = 0;
  items.forEach((item, i) => {
    const bound = fittingBound(tok, item, DEFAULT_SYSTEM_PROMPT, limits.maxLength);
    if (bound.steps < item.steps.length) {
      throw new HttpError(413, `${name(i)}: at least ${bound.fullLength} tokens (counted from its characters) exceed the model's context of ${limits.maxLength}`);
    }
    tokens += bound.fullLength;
    if (tokens > limits.maxTokens) {
      throw new HttpError(413, `too many tokens: at least ${tokens} in this request (counted from its characters), the limit is ${limits.maxTokens}`);
    }
  });
}

/**
 * Encodes every item with THE sample encoding (encodeSample), enforcing the step and token
 * bounds (413) and turning unencodable text into 422. Steps are counted before any tokenizing.
 */
export function encodeRequest(tok: PrmTokenizer, request: ScoreRequest, limits: EncodeLimits): EncodedSample[] {
  const { items, batch } = request;
  const name = (i: number): string => (batch ? `items[${i}]` : 'body');
  let steps = 0;
  for (const item of items) steps += item.steps.length;
  if (steps > limits.maxSteps) {
    throw new HttpError(413, `too many steps: ${steps} in this request, the limit is ${limits.maxSteps}`);
  }
  const encoded: EncodedSample[] = [];
  let tokens = 0;
  items.forEach((item, i) => {
    let enc: EncodedSample;
    try {
      enc = encodeSample(tok, item, { maxLength: limits.maxLength });
    } catch (e) {
      if (e instanceof EncodeError) throw new HttpError(422, `${name(i)}.${e.field}: ${e.reason}`);
      throw e;
    }
    if (enc.truncated) {
      const size = `${enc.truncated.estimated ? 'at least ' : ''}${enc.truncated.fullLength}`;
      throw new HttpError(413, `${name(i)}: ${size} tokens exceed the model's context of ${limits.maxLength}`);
    }
    tokens += enc.inputIds.length;
    if (tokens > limits.maxTokens) {
      throw new HttpError(413, `too many tokens: more than ${limits.maxTokens} in this request (${tokens} after ${name(i)})`);
    }
    encoded.push(enc);
  });
  return encoded;
}
