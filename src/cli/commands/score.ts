import type { Argv, CommandModule } from 'yargs';
import { readJsonl, RecordError, writeJsonlAtomically } from '../../data/jsonl.js';
import { spliceJsonFields } from '../../data/splice.js';
import { refuseOutputOverInput } from '../outputs.js';
import type { ScoreInput } from '../../eval/score.js';
import { backendOption, batchTokensOption, optionalModelOption, optionalPositiveInt, parseBackend, REMOTE_REWARD_OPTIONS, remoteRewardOptions, type RemoteRewardArgs } from '../options.js';
import { UsageError } from '../errors.js';
import type { BackendName } from '../../backend/backend-names.js';
import { addSplitOptions, splitOptionsOf, type SplitArgs } from '../split-options.js';
import { createStepSplitter, describeSplitStats, type StepSplitter } from '../../data/step-split.js';

// TensorFlow.js is imported only when the command runs, so `prmkit --help` stays quick.

interface ScoreArgs extends Partial<SplitArgs>, RemoteRewardArgs {
  model?: string;
  reward?: string;
  input: string;
  out: string;
  backend: string;
  'batch-tokens'?: number;
  'max-length'?: number;
}

interface InputLine extends ScoreInput {
  /** The line as written: the output is this text with "step_scores" spliced in. */
  raw: string;
  line: number;
  /** Set when the line gave a response text that the splitter cut into these steps. */
  split?: true;
}

/**
 * Reads and checks every input line first, so a bad line fails before the model loads. A line
 * holds its steps, or a "response" text that the step splitter cuts into steps.
 */
export async function readScoreInput(file: string, splitter: StepSplitter = createStepSplitter()): Promise<InputLine[]> {
  const out: InputLine[] = [];
  for await (const { value, line, raw } of readJsonl(file)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RecordError(file, line, undefined, 'expected a JSON object');
    const record = value as Record<string, unknown>;
    if (typeof record.problem !== 'string') throw new RecordError(file, line, 'problem', record.problem === undefined ? 'missing' : 'must be a string');
    const steps = record.steps;
    if (steps === undefined && typeof record.response === 'string') {
      out.push({ raw, line, problem: record.problem, steps: splitter.split(record.response), split: true });
      continue;
    }
    if (steps === undefined && record.response !== undefined) throw new RecordError(file, line, 'response', 'must be a string');
    if (!Array.isArray(steps)) throw new RecordError(file, line, 'steps', steps === undefined ? 'missing (or give a "response" text to split)' : 'must be an array of strings');
    const bad = steps.findIndex((s) => typeof s !== 'string');
    if (bad >= 0) throw new RecordError(file, line, `steps[${bad}]`, 'must be a string');
    out.push({ raw, line, problem: record.problem, steps: steps as string[] });
  }
  return out;
}

/** `prmkit score`: adds "step_scores" to every line of a JSONL file of {problem, steps}. */
export async function runScore(args: ScoreArgs): Promise<{ lines: number; steps: number; tooLongLines: number[] }> {
  if (!args.model === !args.reward) throw new UsageError('score needs the PRM: --model DIR (local) or --reward URL (prmkit serve or vLLM /pooling), one of them');
  const backend = parseBackend(args.backend);
  const batchTokens = optionalPositiveInt(args['batch-tokens'], '--batch-tokens');
  const maxLength = optionalPositiveInt(args['max-length'], '--max-length');
  await refuseOutputOverInput([args.input], [args.out]);
  const splitter = createStepSplitter(args.split === undefined ? {} : splitOptionsOf(args as SplitArgs));
  const lines = await readScoreInput(args.input, splitter);
  const result = args.reward ? await scoreRemotely(args, args.reward, lines) : await scoreLocally(args, args.model as string, lines, backend, batchTokens, maxLength);

  let steps = 0;
  // Each input line as written plus step_scores (numbers like 1e999 pass through as text),
  // put in place only once complete.
  await writeJsonlAtomically(args.out, async (writer) => {
    for (let i = 0; i < lines.length; i++) {
      const scores = result.stepScores[i];
      if (scores) steps += scores.length;
      const fields = lines[i].split ? { steps: lines[i].steps, step_scores: scores } : { step_scores: scores };
      await writer.writeLine(spliceJsonFields(lines[i].raw, fields));
    }
  });
  const tooLongLines = result.tooLong.map((i) => lines[i].line);
  console.error(`prmkit score: wrote ${args.out}: ${lines.length} lines, ${steps} steps scored`);
  if (splitter.stats.responses > 0) console.error(`prmkit score: ${describeSplitStats(splitter.stats)}`);
  if (tooLongLines.length > 0) {
    const shown = tooLongLines.slice(0, 20).join(', ') + (tooLongLines.length > 20 ? ', ...' : '');
    const n = tooLongLines.length;
    console.error(`prmkit score: ${n} line${n === 1 ? '' : 's'} longer than ${result.limit} got step_scores null (line${n === 1 ? '' : 's'} ${shown})`);
  }
  return { lines: lines.length, steps, tooLongLines };
}

interface Scored {
  stepScores: (number[] | null)[];
  /** Indices of the lines too long to score. */
  tooLong: number[];
  /** What "too long" was measured against, for the message. */
  limit: string;
}

async function scoreLocally(args: ScoreArgs, dir: string, lines: InputLine[], backend: BackendName, batchTokens?: number, maxLength?: number): Promise<Scored> {
  // TensorFlow loads only once the input is known to be good.
  const { selectBackend } = await import('../../backend/backend.js');
  const { loadScoringModel, scoreSamples, SampleError } = await import('../../eval/score.js');
  await selectBackend(backend);
  const { model, tokenizer } = await loadScoringModel(dir);
  try {
    const result = await scoreSamples(model, tokenizer, lines, { maxTokensPerBatch: batchTokens, maxLength, progressLabel: 'score' });
    return { stepScores: result.stepScores, tooLong: result.tooLong, limit: `${maxLength ?? model.config.maxPositionEmbeddings} tokens` };
  } catch (e) {
    if (e instanceof SampleError) throw new RecordError(args.input, lines[e.index].line, e.field, e.reason);
    throw e;
  } finally {
    model.dispose();
  }
}

/** Scores from a reward server (prmkit serve, or vLLM's /pooling); a line it refuses as too long gets null. */
async function scoreRemotely(args: ScoreArgs, url: string, lines: InputLine[]): Promise<Scored> {
  const { openRemoteReward } = await import('../../search/reward.js');
  const reward = await openRemoteReward(url, remoteRewardOptions(args));
  try {
    const stepScores = await reward.score(lines);
    const tooLong = stepScores.flatMap((s, i) => (s === null && lines[i].steps.length > 0 ? [i] : []));
    return { stepScores, tooLong, limit: `the context of ${reward.description}` };
  } finally {
    await reward.close();
  }
}

export const scoreCommand: CommandModule<object, ScoreArgs> = {
  command: 'score',
  describe: 'Score every step of each {problem, steps} line with a PRM; adds "step_scores"',
  builder: (y: Argv) =>
    addSplitOptions(y)
      .option('model', optionalModelOption(' (or --reward URL)'))
      .option('reward', { type: 'string', describe: "URL of a reward server instead of --model: prmkit serve, or vLLM's .../pooling endpoint" })
      .options(REMOTE_REWARD_OPTIONS)
      .conflicts('model', 'reward')
      .option('input', { type: 'string', demandOption: true, describe: 'JSONL with "problem" and "steps" (or a "response" text, split into steps) per line; other fields are kept' })
      .option('out', { type: 'string', demandOption: true, describe: 'output JSONL: the input lines plus "step_scores" (null when too long)' })
      .option('backend', backendOption())
      .option('batch-tokens', batchTokensOption(' (default 8192)'))
      .option('max-length', { type: 'number', describe: "longest sequence scored (default: the model's max_position_embeddings)" })
      .group(['split', 'step-separator', 'split-min-chars', 'split-max-steps', 'think'], 'Step splitting (lines with "response"):')
      .example('$0 score --model checkpoints/prm --input samples.jsonl --out scored.jsonl', '')
      .example('$0 score --reward http://gpu:8000/pooling --reward-tokenizer checkpoints/prm --input samples.jsonl --out scored.jsonl', '')
      .example('$0 score --model checkpoints/prm --input r1.jsonl --think alone --split-max-steps 40 --out scored.jsonl', ''),
  handler: async (args) => {
    await runScore(args);
  },
};
