import { z } from 'zod';
import { EncodeError, encodeSample, type EncodedSample } from '../model/encode.js';
import type { PrmTokenizer } from '../model/tokenizer.js';
import type { ScoreInput } from '../eval/score.js';
import { HttpError } from './errors.js';

/**
 * The body of POST /v1/score: one item `{problem, steps}` or a batch `{items: [...]}`. Objects
 * are strict: a field the server does not know (a "model", a "path", ...) is refused with 422,
 * so a request can never pick a model or make the server read a file.
 */
const ItemSchema = z.strictObject({
  problem: z.string(),
  steps: z.array(z.string()).min(1, 'must hold at least one step'),
});
const BatchSchema = z.strictObject({
  items: z.array(ItemSchema).min(1, 'must hold at least one item'),
});

export interface ScoreRequest {
  items: ScoreInput[];
  /** True for the {items: [...]} form, answered with {results: [...]}. */
  batch: boolean;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length === 0 ? 'body' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    const accepted = issue.path.length === 0 ? 'problem and steps, or items' : 'problem and steps';
    return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${keys} (accepted: ${accepted}; the model is fixed when the server starts)`;
  }
  return `${where}: ${issue.message}`;
}

/** Checks the shape of a parsed body; 422 with every problem found (at most 5 listed). */
export function parseScoreRequest(json: unknown): ScoreRequest {
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
  const items = batch ? (result.data as z.infer<typeof BatchSchema>).items : [result.data as z.infer<typeof ItemSchema>];
  return { items, batch };
}

export interface EncodeLimits {
  maxSteps: number;
  maxTokens: number;
  /** The model's context: a longer item cannot be scored whole. */
  maxLength: number;
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
      throw new HttpError(413, `${name(i)}: ${enc.truncated.fullLength} tokens exceed the model's context of ${limits.maxLength}`);
    }
    tokens += enc.inputIds.length;
    if (tokens > limits.maxTokens) {
      throw new HttpError(413, `too many tokens: more than ${limits.maxTokens} in this request (${tokens} after ${name(i)})`);
    }
    encoded.push(enc);
  });
  return encoded;
}
