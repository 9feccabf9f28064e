import type { PrmTokenizer } from './tokenizer.js';

/** The system prompt of Qwen2.5-Math-PRM (PAPER.md, "What a PRM is here"). */
export const DEFAULT_SYSTEM_PROMPT = 'Please reason step by step, and put your final answer within \\boxed{}.';

export interface EncodeOptions {
  /** Default DEFAULT_SYSTEM_PROMPT; null renders no system turn. */
  systemPrompt?: string | null;
  /** Longest allowed sequence; a longer sample is cut to the steps that fit and marked `truncated`. */
  maxLength?: number;
}

export interface EncodedSample {
  inputIds: number[];
  /** Index in inputIds of the step token closing each step: exactly one per step, increasing. */
  stepPositions: number[];
  /** Number of steps encoded (= stepPositions.length). */
  nSteps: number;
  /**
   * Set when the whole sample exceeds maxLength. inputIds/stepPositions then hold the first
   * keptSteps steps (the encoding of the shortened sample, within maxLength); keptSteps 0 means
   * not even one step fits and inputIds is empty. Callers decide: drop the sample or use the steps kept.
   */
  truncated?: { keptSteps: number; totalSteps: number; fullLength: number; reason: string };
}

/** A sample that cannot be encoded faithfully (e.g. its text contains the step token). */
export class EncodeError extends Error {
  override name = 'EncodeError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`field "${field}": ${reason}`);
  }
}

/**
 * THE encoding of a PRM sample, used by training and scoring alike. As Qwen2.5-Math-PRM's model
 * card: chat template with system, user = problem, assistant = steps each followed by the step
 * token ("<extra_0>".join(steps) + "<extra_0>"), the rendered conversation tokenized as one string.
 * The step token is a special token, so it is one id and the text between two of them is exactly
 * one step; positions are read back from the ids and checked against the step count.
 */
export function encodeSample(
  tok: PrmTokenizer,
  sample: { problem: string; steps: readonly string[] },
  opts: EncodeOptions = {},
): EncodedSample {
  const system = opts.systemPrompt === undefined ? DEFAULT_SYSTEM_PROMPT : opts.systemPrompt;
  const full = encodeAll(tok, sample, system);
  const maxLength = opts.maxLength;
  if (maxLength === undefined || full.inputIds.length <= maxLength) return full;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`maxLength must be a positive integer, got ${maxLength}`);

  const n = full.nSteps;
  const positions = full.stepPositions;
  // Text between special tokens is tokenized independently, so keeping k steps gives the first
  // positions[k-1] + 1 ids followed by the same closing ids; the re-encode below confirms it.
  const closingLength = n > 0 ? full.inputIds.length - 1 - positions[n - 1] : 0;
  let kept = 0;
  while (kept < n && positions[kept] + 1 + closingLength <= maxLength) kept++;
  let shortened: EncodedSample | undefined;
  for (; kept > 0; kept--) {
    shortened = encodeAll(tok, { problem: sample.problem, steps: sample.steps.slice(0, kept) }, system);
    if (shortened.inputIds.length <= maxLength) break;
  }
  const reason =
    `${full.inputIds.length} tokens > maxLength ${maxLength}; ` +
    (kept > 0 ? `the first ${kept} of ${n} steps fit` : `not even the first of ${n} steps fits`);
  const truncated = { keptSteps: kept, totalSteps: n, fullLength: full.inputIds.length, reason };
  if (kept === 0 || !shortened) return { inputIds: [], stepPositions: [], nSteps: 0, truncated };
  return { ...shortened, truncated };
}

const CONTENT_PROBE = 'PRMKIT-ASSISTANT-CONTENT-PROBE';

function encodeAll(tok: PrmTokenizer, sample: { problem: string; steps: readonly string[] }, system: string | null): EncodedSample {
  const { problem, steps } = sample;
  if (typeof problem !== 'string') throw new EncodeError('problem', 'must be a string');
  if (!Array.isArray(steps)) throw new EncodeError('steps', 'must be an array of strings');
  const stepToken = tok.stepToken;
  if (problem.includes(stepToken)) throw new EncodeError('problem', `contains the step token ${stepToken}`);
  let content = '';
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    if (typeof step !== 'string') throw new EncodeError(`steps[${i}]`, 'must be a string');
    if (step.includes(stepToken)) throw new EncodeError(`steps[${i}]`, `contains the step token ${stepToken}`);
    content += step + stepToken;
  }
  const rendered = tok.renderChat(system, problem, content);
  // The steps must reach the tokenizer as written: rendering a probe message in their place must
  // give the same string around it (a template may strip or rewrite content, as Qwen3's does).
  const probed = tok.renderChat(system, problem, CONTENT_PROBE);
  const at = probed.lastIndexOf(CONTENT_PROBE);
  if (at < 0 || rendered !== probed.slice(0, at) + content + probed.slice(at + CONTENT_PROBE.length)) {
    throw new Error(
      'the chat template alters the assistant message (steps would not be scored as written); ' +
        'pass a chatTemplate that renders message content verbatim (e.g. CHATML_TEMPLATE)',
    );
  }
  const inputIds = tok.encodeText(rendered);
  const stepTokenId = tok.stepTokenId;
  const stepPositions: number[] = [];
  for (let j = 0; j < inputIds.length; j++) if (inputIds[j] === stepTokenId) stepPositions.push(j);
  if (stepPositions.length !== steps.length) {
    throw new Error(`encoded ${stepPositions.length} step tokens for ${steps.length} steps: the chat template or system prompt contains ${stepToken}`);
  }
  return { inputIds, stepPositions, nSteps: steps.length };
}

export interface CollatedBatch {
  /** [batchSize * seqLen], row-major. */
  inputIds: Int32Array;
  /** [batchSize * seqLen]: 1 on tokens, 0 on padding. */
  attentionMask: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Step positions per row, shifted by the left padding. */
  stepPositions: number[][];
}

/** Pads encoded samples to one rectangle (right padding by default). */
export function collateBatch(
  items: readonly { inputIds: ArrayLike<number>; stepPositions: readonly number[] }[],
  opts: { padSide?: 'left' | 'right'; padTokenId: number },
): CollatedBatch {
  const padSide = opts.padSide ?? 'right';
  const batchSize = items.length;
  let seqLen = 0;
  for (const item of items) seqLen = Math.max(seqLen, item.inputIds.length);
  const inputIds = new Int32Array(batchSize * seqLen).fill(opts.padTokenId);
  const attentionMask = new Int32Array(batchSize * seqLen);
  const stepPositions: number[][] = [];
  for (let b = 0; b < batchSize; b++) {
    const ids = items[b].inputIds;
    const offset = padSide === 'left' ? seqLen - ids.length : 0;
    const row = b * seqLen + offset;
    inputIds.set(ids, row);
    attentionMask.fill(1, row, row + ids.length);
    stepPositions.push(offset === 0 ? items[b].stepPositions.slice() : items[b].stepPositions.map((p) => p + offset));
  }
  return { inputIds, attentionMask, batchSize, seqLen, stepPositions };
}

/**
 * Groups item indices into batches of similar length: sorted by length (ties keep input order),
 * cut so that batch size x longest sequence (the padded token count) stays within
 * maxTokensPerBatch. An item longer than the budget forms a batch of its own. Empty items are
 * skipped. Batches come out shortest first.
 */
export function bucketByLength(
  items: readonly { inputIds: ArrayLike<number> }[],
  maxTokensPerBatch: number,
  opts: { maxBatchSize?: number } = {},
): number[][] {
  if (!(maxTokensPerBatch > 0)) throw new Error(`maxTokensPerBatch must be positive, got ${maxTokensPerBatch}`);
  const maxBatchSize = opts.maxBatchSize ?? Infinity;
  const order: number[] = [];
  for (let i = 0; i < items.length; i++) if (items[i].inputIds.length > 0) order.push(i);
  order.sort((a, b) => items[a].inputIds.length - items[b].inputIds.length || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  for (const i of order) {
    // Sorted ascending, so the newcomer is the longest in the batch.
    const len = items[i].inputIds.length;
    if (current.length > 0 && ((current.length + 1) * len > maxTokensPerBatch || current.length >= maxBatchSize)) {
      batches.push(current);
      current = [];
    }
    current.push(i);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
