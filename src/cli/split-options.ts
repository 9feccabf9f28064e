/**
 * The step-splitting options of every command that cuts free-text responses into steps (score,
 * eval bon, serve, search), declared once so they read the same everywhere.
 */
import type { Argv } from 'yargs';
import { SPLIT_MODES, THINK_MODES, resolveSplitOptions, type StepSplitOptions } from '../data/step-split.js';
import { unescapeSeparator } from '../data/split.js';
import { UsageError } from './errors.js';

export interface SplitArgs {
  split: string;
  'step-separator'?: string;
  'split-min-chars': number;
  'split-max-steps'?: number;
  think: string;
}

export function addSplitOptions<T>(y: Argv<T>): Argv<T & SplitArgs> {
  return y
    .option('split', { type: 'string', choices: SPLIT_MODES, default: 'paragraphs', describe: 'how a response is cut into steps: blank lines, lines or sentences' })
    .option('step-separator', { type: 'string', describe: 'cut on this string instead (escapes like \\n\\n allowed); overrides --split' })
    .option('split-min-chars', { type: 'number', default: 0, describe: 'merge steps shorter than this into the next one' })
    .option('split-max-steps', { type: 'number', describe: 'at most this many steps per response; the tail is merged into the last' })
    .option('think', {
      type: 'string',
      choices: THINK_MODES,
      default: 'scored',
      describe: 'a <think>...</think> block: split and scored, skipped, or scored as one step',
    }) as unknown as Argv<T & SplitArgs>;
}

/** The splitter options of parsed arguments; a bad value is a usage error naming the flag. */
export function splitOptionsOf(args: SplitArgs): StepSplitOptions {
  const opts: StepSplitOptions = {
    mode: args.split as StepSplitOptions['mode'],
    minChars: args['split-min-chars'],
    think: args.think as StepSplitOptions['think'],
    ...(args['step-separator'] !== undefined ? { separator: unescapeSeparator(args['step-separator']) } : {}),
    ...(args['split-max-steps'] !== undefined ? { maxSteps: args['split-max-steps'] } : {}),
  };
  try {
    resolveSplitOptions(opts);
  } catch (e) {
    const message = (e as Error).message;
    const flag = /minimum/.test(message) ? '--split-min-chars' : /maximum/.test(message) ? '--split-max-steps' : /separator/.test(message) ? '--step-separator' : /think/.test(message) ? '--think' : '--split';
    throw new UsageError(`${flag}: ${message}`);
  }
  return opts;
}
