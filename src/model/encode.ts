import { addClassCounts, countClasses, type PrmTokenizer } from './tokenizer.js';

/** The system prompt of Qwen2.5-Math-PRM (its model card's chat template). */
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
  truncated?: {
    keptSteps: number;
    totalSteps: number;
    /** Tokens of the whole sample; a lower bound when `estimated` (too long to tokenize whole). */
    fullLength: number;
    estimated?: boolean;
    reason: string;
  };
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
  const maxLength = opts.maxLength;
  if (maxLength !== undefined) {
    if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`maxLength must be a positive integer, got ${maxLength}`);
    checkSample(tok, sample);
    // Tokenizing costs more than linear time on long words: a sample that cannot fit by its
    // character counts alone is cut without tokenizing the steps that cannot fit.
    const bound = fittingBound(tok, sample, system, maxLength);
    if (bound.steps < sample.steps.length) return encodeFitting(tok, sample, system, maxLength, bound);
  }
  const full = encodeAll(tok, sample, system);
  if (maxLength === undefined || full.inputIds.length <= maxLength) return full;
  const { kept, shortened } = cutToFit(tok, sample, system, maxLength, full);
  const n = full.nSteps;
  const reason =
    `${full.inputIds.length} tokens > maxLength ${maxLength}; ` +
    (kept > 0 ? `the first ${kept} of ${n} steps fit` : `not even the first of ${n} steps fits`);
  const truncated = { keptSteps: kept, totalSteps: n, fullLength: full.inputIds.length, reason };
  if (kept === 0 || !shortened) return { inputIds: [], stepPositions: [], nSteps: 0, truncated };
  return { ...shortened, truncated };
}

/**
 * From the encoding of the sample cut to its first m steps (m = encoded.nSteps), the most steps
 * that fit in maxLength and their encoding.
 */
function cutToFit(
  tok: PrmTokenizer,
  sample: { problem: string; steps: readonly string[] },
  system: string | null,
  maxLength: number,
  encoded: EncodedSample,
): { kept: number; shortened?: EncodedSample } {
  const n = encoded.nSteps;
  const positions = encoded.stepPositions;
  if (encoded.inputIds.length <= maxLength) return { kept: n, shortened: encoded };
  // Text between special tokens is tokenized independently, so keeping k steps gives the first
  // positions[k-1] + 1 ids followed by the same closing ids; the re-encode below confirms it.
  const closingLength = n > 0 ? encoded.inputIds.length - 1 - positions[n - 1] : 0;
  let kept = 0;
  while (kept < n && positions[kept] + 1 + closingLength <= maxLength) kept++;
  let shortened: EncodedSample | undefined;
  for (; kept > 0; kept--) {
    shortened = encodeAll(tok, { problem: sample.problem, steps: sample.steps.slice(0, kept) }, system);
    if (shortened.inputIds.length <= maxLength) break;
  }
  return { kept, shortened: kept > 0 ? shortened : undefined };
}

/**
 * A lower bound on the encoded length of the whole sample (tok.minTokens over its characters:
 * chat frame, problem, steps and step tokens), and how many leading steps could still fit
 * by that bound.
 */
export function fittingBound(
  tok: PrmTokenizer,
  sample: { problem: string; steps: readonly string[] },
  system: string | null,
  maxLength: number,
): { steps: number; fullLength: number } {
  // The frame (system turn, role markers) is rendered once with empty messages.
  let counts = addClassCounts(countClasses(tok.renderChat(system, '', '')), countClasses(sample.problem));
  const stepToken = countClasses(tok.stepToken);
  // Real lengths grow with every step, so the first k whose bound is too long ends the fitting
  // prefix, and the largest bound seen bounds the whole sample.
  let atLeast = tok.minTokensOf(counts);
  let steps = atLeast <= maxLength ? 0 : -1;
  for (let k = 0; k < sample.steps.length; k++) {
    counts = addClassCounts(addClassCounts(counts, countClasses(sample.steps[k])), stepToken);
    const bound = tok.minTokensOf(counts);
    atLeast = Math.max(atLeast, bound);
    if (steps === k && bound <= maxLength) steps = k + 1;
  }
  return { steps: Math.max(steps, 0), fullLength: atLeast };
}

/** The cut encoding of a sample known (by its character counts) not to fit whole. */
function encodeFitting(
  tok: PrmTokenizer,
  sample: { problem: string; steps: readonly string[] },
  system: string | null,
  maxLength: number,
  bound: { steps: number; fullLength: number },
): EncodedSample {
  const n = sample.steps.length;
  let kept = 0;
  let shortened: EncodedSample | undefined;
  if (bound.steps > 0) {
    const prefix = encodeAll(tok, { problem: sample.problem, steps: sample.steps.slice(0, bound.steps) }, system);
    ({ kept, shortened } = cutToFit(tok, sample, system, maxLength, prefix));
  }
  const reason =
    `at least ${bound.fullLength} tokens > maxLength ${maxLength} (counted from its characters, not tokenized whole); ` +
    (kept > 0 ? `the first ${kept} of ${n} steps fit` : `not even the first of ${n} steps fits`);
  const truncated = { keptSteps: kept, totalSteps: n, fullLength: bound.fullLength, estimated: true, reason };
  if (kept === 0 || !shortened) return { inputIds: [], stepPositions: [], nSteps: 0, truncated };
  return { ...shortened, truncated };
}

/** The checks that need no tokenizing: field types, and no step token inside the text. */
function checkSample(tok: PrmTokenizer, sample: { problem: string; steps: readonly string[] }): void {
  const { problem, steps } = sample;
  if (typeof problem !== 'string') throw new EncodeError('problem', 'must be a string');
  if (!Array.isArray(steps)) throw new EncodeError('steps', 'must be an array of strings');
  const stepToken = tok.stepToken;
  if (problem.includes(stepToken)) throw new EncodeError('problem', `contains the step token ${stepToken}`);
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    if (typeof step !== 'string') throw new EncodeError(`steps[${i}]`, 'must be a string');
    if (step.includes(stepToken)) throw new EncodeError(`steps[${i}]`, `contains the step token ${stepToken}`);
  }
}

const CONTENT_PROBE = 'PRMKIT-ASSISTANT-CONTENT-PROBE';

/** The assistant message of a sample: every step closed by the step token. */
function stepsContent(tok: PrmTokenizer, steps: readonly string[]): string {
  let content = '';
  for (let i = 0; i < steps.length; i++) content += steps[i] + tok.stepToken;
  return content;
}

/**
 * The text encodeSample tokenizes, for servers that tokenize it themselves (vLLM's step pooling
 * reads the step scores at the step token of this text).
 */
export function renderSample(tok: PrmTokenizer, sample: { problem: string; steps: readonly string[] }, systemPrompt: string | null = DEFAULT_SYSTEM_PROMPT): string {
  checkSample(tok, sample);
  return tok.renderChat(systemPrompt, sample.problem, stepsContent(tok, sample.steps));
}

function encodeAll(tok: PrmTokenizer, sample: { problem: string; steps: readonly string[] }, system: string | null): EncodedSample {
  checkSample(tok, sample);
  const { problem, steps } = sample;
  const stepToken = tok.stepToken;
  const content = stepsContent(tok, steps);
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
  opts: { maxBatchSize?: number; sortByLength?: boolean } = {},
): number[][] {
  if (!(maxTokensPerBatch > 0)) throw new Error(`maxTokensPerBatch must be positive, got ${maxTokensPerBatch}`);
  const maxBatchSize = opts.maxBatchSize ?? Infinity;
  const order: number[] = [];
  for (let i = 0; i < items.length; i++) if (items[i].inputIds.length > 0) order.push(i);
  if (opts.sortByLength !== false) order.sort((a, b) => items[a].inputIds.length - items[b].inputIds.length || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  for (const i of order) {
    const len = items[i].inputIds.length;
    const padded = Math.max(longest, len);
    if (current.length > 0 && ((current.length + 1) * padded > maxTokensPerBatch || current.length >= maxBatchSize)) {
      batches.push(current);
      current = [];
      longest = 0;
    }
    current.push(i);
    longest = Math.max(longest, len);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
