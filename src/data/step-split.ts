import { splitSteps } from './split.js';

/**
 * THE splitter of a model's free-text response into PRM steps, used by `prmkit score`,
 * `eval bon`, `serve` and `search` (data adapters of fixed formats keep their format's own
 * separator through splitSteps). Steps are what the PRM scores one by one, so how a response is
 * cut decides what a step score means:
 *
 * - mode `paragraphs` (default, the Qwen PRM papers' and ProcessBench's convention): blank lines;
 *   `lines`: every line; `sentences`: Intl.Segmenter's sentence boundaries (Unicode UAX #29, so
 *   line breaks also end a sentence); or an explicit `separator` string.
 * - `minChars`: a step shorter than this (trimmed) is merged into the step after it (the last
 *   one into the step before), so headings, "Step 3:" lines and stray formulas do not become
 *   steps of their own.
 * - `maxSteps`: at most this many steps; the tail beyond is merged into the last step, so no
 *   text is dropped (a long chain of thought would otherwise give hundreds of steps).
 * - `think`: reasoning models write `<think>...</think>` before the answer. `scored` (default):
 *   its text is split and scored like the rest; `skipped`: only the text outside the block is
 *   split (a response whose think block never closes then has no step); `alone`: the whole
 *   think block is one step, in its place among the others. A response that has `</think>`
 *   without `<think>` (chat templates that open the block in the prompt) has everything before
 *   `</think>` as its think block.
 *
 * Steps are trimmed; whitespace-only pieces are not steps. Text is never dropped except the
 * think block with `skipped`, and the tags themselves.
 */

export const SPLIT_MODES = ['paragraphs', 'lines', 'sentences'] as const;
export type SplitMode = (typeof SPLIT_MODES)[number];
export const THINK_MODES = ['scored', 'skipped', 'alone'] as const;
export type ThinkMode = (typeof THINK_MODES)[number];

export interface StepSplitOptions {
  mode?: SplitMode;
  /** Splits on this string instead of the mode (e.g. "\n\n\n", "ки"). */
  separator?: string;
  /** Steps shorter than this many characters are merged into a neighbour (default 0: none). */
  minChars?: number;
  /** At most this many steps; the tail is merged into the last (default: no cap). */
  maxSteps?: number;
  think?: ThinkMode;
}

/** What the splitter did over the responses it split: reported by the commands. */
export interface StepSplitStats {
  responses: number;
  steps: number;
  /** Short steps merged into a neighbour. */
  merged_short: number;
  /** Responses whose steps were capped at maxSteps, and the steps merged into their last. */
  capped_responses: number;
  capped_steps: number;
  /** Responses with a think block, and those whose block was skipped (not scored). */
  think_blocks: number;
  think_skipped: number;
  /** Responses left without any step (empty, or only a skipped think block). */
  empty: number;
}

export interface StepSplitter {
  readonly options: Readonly<Required<Omit<StepSplitOptions, 'separator' | 'maxSteps'>> & Pick<StepSplitOptions, 'separator' | 'maxSteps'>>;
  split(text: string): string[];
  readonly stats: StepSplitStats;
}

const JOINERS: Record<SplitMode, string> = { paragraphs: '\n\n', lines: '\n', sentences: ' ' };

/** Checks options once (a bad value is an error naming the option) and fills defaults. */
export function resolveSplitOptions(opts: StepSplitOptions = {}): StepSplitter['options'] {
  const mode = opts.mode ?? 'paragraphs';
  if (!(SPLIT_MODES as readonly string[]).includes(mode)) throw new Error(`step split mode must be one of ${SPLIT_MODES.join(', ')}, got "${mode}"`);
  const think = opts.think ?? 'scored';
  if (!(THINK_MODES as readonly string[]).includes(think)) throw new Error(`think must be one of ${THINK_MODES.join(', ')}, got "${think}"`);
  if (opts.separator !== undefined && opts.separator === '') throw new Error('step separator must not be empty');
  const minChars = opts.minChars ?? 0;
  if (!Number.isInteger(minChars) || minChars < 0) throw new Error(`minimum step length must be an integer >= 0, got ${minChars}`);
  if (opts.maxSteps !== undefined && (!Number.isInteger(opts.maxSteps) || opts.maxSteps < 1)) {
    throw new Error(`maximum steps must be a positive integer, got ${opts.maxSteps}`);
  }
  return { mode, think, minChars, ...(opts.separator !== undefined ? { separator: opts.separator } : {}), ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}) };
}

/**
 * A response around its think block: the text before it, the block (null when there is none)
 * and the text after it.
 */
export function splitThink(text: string): { before: string; think: string | null; after: string; closed: boolean } {
  const open = text.indexOf('<think>');
  const close = text.indexOf('</think>', open === -1 ? 0 : open);
  if (open === -1 && close === -1) return { before: '', think: null, after: text, closed: true };
  if (close === -1) {
    // Opened and never closed (a generation cut off while thinking): all of it is the block.
    return { before: text.slice(0, open), think: text.slice(open + '<think>'.length), after: '', closed: false };
  }
  const start = open === -1 ? 0 : open + '<think>'.length;
  const before = open === -1 ? '' : text.slice(0, open);
  return { before, think: text.slice(start, close), after: text.slice(close + '</think>'.length), closed: true };
}

let sentenceSegmenter: Intl.Segmenter | undefined;

function piecesOf(text: string, opts: StepSplitter['options']): string[] {
  if (opts.separator !== undefined) return splitSteps(text, opts.separator);
  switch (opts.mode) {
    case 'paragraphs':
      return splitSteps(text, '\n\n');
    case 'lines':
      return splitSteps(text, '\n');
    case 'sentences': {
      sentenceSegmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
      const out: string[] = [];
      for (const { segment } of sentenceSegmenter.segment(text.replace(/\r\n/g, '\n'))) {
        const s = segment.trim();
        if (s !== '') out.push(s);
      }
      return out;
    }
  }
}

/** Merges steps shorter than minChars into the next one (the last into the one before). */
function mergeShort(steps: string[], minChars: number, joiner: string): { steps: string[]; merged: number } {
  if (minChars <= 0 || steps.length <= 1) return { steps, merged: 0 };
  const out: string[] = [];
  let pending: string | null = null;
  let merged = 0;
  for (const step of steps) {
    const current: string = pending === null ? step : `${pending}${joiner}${step}`;
    if (pending !== null) merged++;
    if (current.length < minChars) pending = current;
    else {
      out.push(current);
      pending = null;
    }
  }
  if (pending !== null) {
    if (out.length === 0) out.push(pending);
    else {
      out[out.length - 1] = `${out[out.length - 1]}${joiner}${pending}`;
      merged++;
    }
  }
  return { steps: out, merged };
}

export function createStepSplitter(opts: StepSplitOptions = {}): StepSplitter {
  const options = resolveSplitOptions(opts);
  const joiner = options.separator ?? JOINERS[options.mode];
  const stats: StepSplitStats = { responses: 0, steps: 0, merged_short: 0, capped_responses: 0, capped_steps: 0, think_blocks: 0, think_skipped: 0, empty: 0 };
  const cut = (text: string): string[] => {
    const { steps, merged } = mergeShort(piecesOf(text, options), options.minChars, joiner);
    stats.merged_short += merged;
    return steps;
  };
  return {
    options,
    stats,
    split(text: string): string[] {
      if (typeof text !== 'string') throw new Error(`a response must be a string, got ${text === null ? 'null' : typeof text}`);
      stats.responses++;
      const { before, think, after } = splitThink(text);
      let steps: string[];
      if (think === null) steps = cut(text);
      else {
        stats.think_blocks++;
        if (options.think === 'skipped') {
          stats.think_skipped++;
          steps = [...cut(before), ...cut(after)];
        } else if (options.think === 'alone') {
          const block = think.trim();
          steps = [...cut(before), ...(block === '' ? [] : [block]), ...cut(after)];
        } else {
          steps = [...cut(before), ...cut(think), ...cut(after)];
        }
      }
      const max = options.maxSteps;
      if (max !== undefined && steps.length > max) {
        stats.capped_responses++;
        stats.capped_steps += steps.length - max;
        steps = [...steps.slice(0, max - 1), steps.slice(max - 1).join(joiner)];
      }
      if (steps.length === 0) stats.empty++;
      stats.steps += steps.length;
      return steps;
    },
  };
}

/** One line for logs: what splitting did (only the parts that happened). */
export function describeSplitStats(s: StepSplitStats): string {
  const parts = [`${s.responses} responses split into ${s.steps} steps`];
  if (s.merged_short > 0) parts.push(`${s.merged_short} short steps merged`);
  if (s.capped_responses > 0) parts.push(`${s.capped_responses} responses capped (${s.capped_steps} steps merged into their last)`);
  if (s.think_blocks > 0) parts.push(`${s.think_blocks} think blocks${s.think_skipped > 0 ? ` (${s.think_skipped} skipped)` : ''}`);
  if (s.empty > 0) parts.push(`${s.empty} without any step`);
  return parts.join('; ');
}
