import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import type { BackendName } from '../../model/backend.js';
import { JsonlWriter, readJsonl, RecordError } from '../../data/jsonl.js';
import type { ScoreInput } from '../../eval/score.js';

// TensorFlow.js is imported only when the command runs, so `prmkit --help` stays quick.
const BACKEND_CHOICES = 'auto|tensorflow-gpu|tensorflow|wasm|cpu';

interface ScoreArgs {
  model: string;
  input: string;
  out: string;
  backend: string;
  'batch-tokens'?: number;
  'max-length'?: number;
}

interface InputLine extends ScoreInput {
  record: Record<string, unknown>;
  line: number;
}

/** Reads and checks every input line first, so a bad line fails before the model loads. */
export async function readScoreInput(file: string): Promise<InputLine[]> {
  const out: InputLine[] = [];
  for await (const { value, line } of readJsonl(file)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RecordError(file, line, undefined, 'expected a JSON object');
    const record = value as Record<string, unknown>;
    if (typeof record.problem !== 'string') throw new RecordError(file, line, 'problem', record.problem === undefined ? 'missing' : 'must be a string');
    const steps = record.steps;
    if (!Array.isArray(steps)) throw new RecordError(file, line, 'steps', steps === undefined ? 'missing' : 'must be an array of strings');
    const bad = steps.findIndex((s) => typeof s !== 'string');
    if (bad >= 0) throw new RecordError(file, line, `steps[${bad}]`, 'must be a string');
    out.push({ record, line, problem: record.problem, steps: steps as string[] });
  }
  return out;
}

function positiveInt(value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} must be a positive integer, got ${value}`);
  return value;
}

/** `prmkit score`: adds "step_scores" to every line of a JSONL file of {problem, steps}. */
export async function runScore(args: ScoreArgs): Promise<{ lines: number; steps: number; tooLongLines: number[] }> {
  if (!BACKEND_CHOICES.split('|').includes(args.backend)) {
    throw new UsageError(`--backend must be one of ${BACKEND_CHOICES}, got "${args.backend}"`);
  }
  const batchTokens = positiveInt(args['batch-tokens'], '--batch-tokens');
  const maxLength = positiveInt(args['max-length'], '--max-length');
  const lines = await readScoreInput(args.input);

  // TensorFlow loads only once the input is known to be good.
  const { selectBackend } = await import('../../model/backend.js');
  const { loadScoringModel, scoreSamples, SampleError } = await import('../../eval/score.js');
  await selectBackend(args.backend as BackendName);
  const { model, tokenizer } = await loadScoringModel(args.model);
  let result;
  try {
    result = await scoreSamples(model, tokenizer, lines, { maxTokensPerBatch: batchTokens, maxLength, progressLabel: 'score' });
  } catch (e) {
    if (e instanceof SampleError) throw new RecordError(args.input, lines[e.index].line, e.field, e.reason);
    throw e;
  } finally {
    model.dispose();
  }

  const writer = await JsonlWriter.open(args.out);
  let steps = 0;
  try {
    for (let i = 0; i < lines.length; i++) {
      const scores = result.stepScores[i];
      if (scores) steps += scores.length;
      await writer.write({ ...lines[i].record, step_scores: scores });
    }
  } finally {
    await writer.close();
  }
  const tooLongLines = result.tooLong.map((i) => lines[i].line);
  const limit = maxLength ?? model.config.maxPositionEmbeddings;
  console.error(`prmkit score: wrote ${args.out}: ${lines.length} lines, ${steps} steps scored`);
  if (tooLongLines.length > 0) {
    const shown = tooLongLines.slice(0, 20).join(', ') + (tooLongLines.length > 20 ? ', ...' : '');
    const n = tooLongLines.length;
    console.error(`prmkit score: ${n} line${n === 1 ? '' : 's'} longer than ${limit} tokens got step_scores null (line${n === 1 ? '' : 's'} ${shown})`);
  }
  return { lines: lines.length, steps, tooLongLines };
}

export const scoreCommand: CommandModule<object, ScoreArgs> = {
  command: 'score',
  describe: 'Score every step of each {problem, steps} line with a PRM; adds "step_scores"',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'PRM checkpoint directory (config.json, model.safetensors, tokenizer.json)' })
      .option('input', { type: 'string', demandOption: true, describe: 'JSONL with "problem" and "steps" per line (other fields are kept)' })
      .option('out', { type: 'string', demandOption: true, describe: 'output JSONL: the input lines plus "step_scores" (null when too long)' })
      .option('backend', { type: 'string', default: 'auto', describe: BACKEND_CHOICES })
      .option('batch-tokens', { type: 'number', describe: 'padded tokens per forward batch (default 8192)' })
      .option('max-length', { type: 'number', describe: "longest sequence scored (default: the model's max_position_embeddings)" })
      .example('$0 score --model checkpoints/prm --input samples.jsonl --out scored.jsonl', '') as unknown as Argv<ScoreArgs>,
  handler: async (args) => {
    await runScore(args);
  },
};
