import type { Argv, CommandModule } from 'yargs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { refuseOutputOverInput } from '../outputs.js';
import { parseAggregators, type Aggregator } from '../../eval/aggregate.js';
import type { StepScorer } from '../../eval/step-scorer.js';
import { addSplitOptions, splitOptionsOf, type SplitArgs } from '../split-options.js';
import type { BackendName } from '../../backend/backend-names.js';
import { backendOption, batchTokensOption, integerAtLeast, modelOption, optionalModelOption, positiveInt } from '../options.js';

const DEFAULT_AGGS = 'min,prod,last,mean,geomean';

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return items.length > 0 ? items : undefined;
}

function parseThreshold(raw: string): number | 'auto' {
  if (raw === 'auto') return 'auto';
  const t = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(t)) throw new UsageError(`--threshold must be a number or "auto", got "${raw}"`);
  return t;
}

function aggregatorsOption(raw: string, flag: string): Aggregator[] {
  try {
    return parseAggregators(raw);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

/** The files `eval bon` writes (per set when several), to check none of them is an input. */
async function bonOutputFiles(candidates: string[], out: string): Promise<string[]> {
  if (candidates.length === 1) return [join(out, 'metrics.json'), join(out, 'graded.jsonl')];
  const { candidateSetNames } = await import('../../eval/bon.js');
  const dirs = candidateSetNames(candidates).map((name) => join(out, name));
  return [join(out, 'summary.json'), ...dirs.flatMap((dir) => [join(dir, 'metrics.json'), join(dir, 'graded.jsonl')])];
}

/** Loads the PRM only when asked (keeps `--scores` runs free of TensorFlow start-up). */
async function openScorer(model: string, args: { backend: BackendName; 'batch-tokens'?: number }): Promise<StepScorer> {
  const { openStepScorer } = await import('../../eval/model-scorer.js');
  const scorer = await openStepScorer(model, { backend: args.backend, batchTokens: args['batch-tokens'] });
  console.error(`prmkit: model ${model} on backend ${scorer.backend}`);
  return scorer;
}

interface ProcessBenchArgs {
  data: string;
  model?: string;
  scores?: string;
  subsets?: string;
  threshold: string;
  'threshold-subset': string;
  backend: BackendName;
  'batch-tokens'?: number;
  out: string;
}

const processbench: CommandModule<object, ProcessBenchArgs> = {
  command: 'processbench',
  describe: 'ProcessBench step-error identification: per-subset error/correct accuracy and F1',
  builder: (y: Argv) =>
    y
      .option('data', { type: 'string', demandOption: true, describe: 'folder of <subset>.json files, or one JSON/JSONL/Parquet file' })
      .option('model', optionalModelOption(' that scores the steps'))
      .option('scores', { type: 'string', describe: 'JSONL of {"id", "step_scores": [...]} instead of a model' })
      .conflicts('model', 'scores')
      .option('subsets', { type: 'string', describe: 'comma list, e.g. gsm8k,math,olympiadbench,omnimath (default: all present)' })
      .option('threshold', { type: 'string', default: '0.5', describe: 'a step with score below it is an error; "auto" = best F1 on gsm8k' })
      .option('threshold-subset', { type: 'string', default: 'gsm8k', describe: 'subset the auto threshold is chosen on' })
      .option('backend', backendOption('TensorFlow.js backend (with --model)'))
      .option('batch-tokens', batchTokensOption(' (with --model)'))
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (metrics.json, predictions.jsonl)' })
      .example('$0 eval processbench --data data/processbench --scores scores.jsonl --threshold auto --out runs/pb', '')
      .example('$0 eval processbench --data data/processbench --model checkpoints/prm --out runs/pb', ''),
  handler: async (args) => {
    if (!args.model && !args.scores) throw new UsageError('eval processbench needs --model DIR or --scores FILE');
    const threshold = parseThreshold(args.threshold);
    const subsets = list(args.subsets);
    if (threshold === 'auto' && subsets && !subsets.includes(args['threshold-subset'])) {
      throw new UsageError(`--threshold auto is chosen on subset "${args['threshold-subset']}", which --subsets leaves out`);
    }
    await refuseOutputOverInput([args.data, args.scores], [join(args.out, 'metrics.json'), join(args.out, 'predictions.jsonl')]);
    const { runProcessBench } = await import('../../eval/run-processbench.js');
    const scorer = args.model ? await openScorer(args.model, args) : undefined;
    try {
      const result = await runProcessBench({
        data: args.data,
        subsets,
        scores: args.scores,
        scorer,
        threshold,
        thresholdSubset: args['threshold-subset'],
        out: args.out,
      });
      console.log(result.markdown);
      console.error(`prmkit: wrote ${result.files.metrics} and ${result.files.predictions}`);
    } finally {
      scorer?.dispose();
    }
  },
};

interface PrmBenchArgs {
  data: string;
  model?: string;
  scores?: string;
  threshold: number;
  backend: BackendName;
  'batch-tokens'?: number;
  out: string;
}

const prmbench: CommandModule<object, PrmBenchArgs> = {
  command: 'prmbench',
  describe: 'PRMBench: step validity F1, negative F1 and PRMScore, overall and per error class (official semantics)',
  builder: (y: Argv) =>
    y
      .option('data', { type: 'string', demandOption: true, describe: 'folder of PRMBench *.jsonl files (mr_eval/tasks/prmtest_classified/data)' })
      .option('model', optionalModelOption(' that scores the steps'))
      .option('scores', { type: 'string', describe: 'JSONL of {"id", "step_scores": [...]} with the loader ids (circular_<idx>, correct_<idx>, ...)' })
      .conflicts('model', 'scores')
      .option('threshold', { type: 'number', default: 0.5, describe: 'a step is valid when its score > threshold' })
      .option('backend', backendOption('TensorFlow.js backend (with --model)'))
      .option('batch-tokens', batchTokensOption(' (with --model)'))
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (metrics.json, predictions.jsonl)' })
      .example('$0 eval prmbench --data data/prmbench --scores scores.jsonl --out runs/prmbench', '')
      .example('$0 eval prmbench --data data/prmbench --model checkpoints/prm --out runs/prmbench', ''),
  handler: async (args) => {
    if (!args.model && !args.scores) throw new UsageError('eval prmbench needs --model DIR or --scores FILE');
    if (!Number.isFinite(args.threshold)) throw new UsageError(`--threshold must be a number, got ${String(args.threshold)}`);
    await refuseOutputOverInput([args.data, args.scores], [join(args.out, 'metrics.json'), join(args.out, 'predictions.jsonl')]);
    const { runPrmBench } = await import('../../eval/run-prmbench.js');
    const scorer = args.model ? await openScorer(args.model, args) : undefined;
    try {
      const result = await runPrmBench({ data: args.data, scores: args.scores, scorer, threshold: args.threshold, out: args.out });
      console.log(result.markdown);
      console.error(`prmkit: wrote ${result.files.metrics} and ${result.files.predictions}`);
    } finally {
      scorer?.dispose();
    }
  },
};

interface BonArgs extends SplitArgs {
  candidates: string;
  model?: string;
  'scores-field'?: string;
  n: number;
  agg: string;
  'vote-agg': string;
  'vote-weights': string;
  'problem-field'?: string;
  'answer-field'?: string;
  'responses-field'?: string;
  bootstrap: number;
  seed: number;
  backend: BackendName;
  'batch-tokens'?: number;
  out: string;
}

const bon: CommandModule<object, BonArgs> = {
  command: 'bon',
  describe: 'Best-of-N: pass@N, maj@N, prm@N per aggregator, weighted vote, curve over N with bootstrap intervals',
  builder: (y: Argv) =>
    addSplitOptions(y)
      .option('candidates', { type: 'string', demandOption: true, describe: 'candidate file(s), comma separated: several = multi-set run; a problem id given twice in a file is an error' })
      .option('model', optionalModelOption(' that scores the responses'))
      .option('scores-field', { type: 'string', describe: 'field holding per response a score or a list of step scores' })
      .conflicts('model', 'scores-field')
      .option('n', { type: 'number', default: 8, describe: 'responses per problem (the first n are used)' })
      .option('agg', { type: 'string', default: DEFAULT_AGGS, describe: 'aggregators of step scores: min,prod,last,mean,geomean' })
      .option('vote-agg', { type: 'string', default: 'prod', describe: 'aggregator whose scores weight the PRM-weighted vote' })
      .option('vote-weights', {
        type: 'string',
        choices: ['auto', 'score', 'softmax'],
        default: 'auto',
        describe: 'vote weights: the scores themselves (probabilities), or softmax per problem (unbounded reward scores); auto picks by the score range',
      })
      .option('problem-field', { type: 'string', describe: 'default problem|question' })
      .option('answer-field', { type: 'string', describe: 'default answer|gt|final_answer' })
      .option('responses-field', { type: 'string', describe: 'default responses|code' })
      .option('bootstrap', { type: 'number', default: 1000, describe: 'bootstrap resamples over problems (0 = no intervals)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the bootstrap' })
      .option('backend', backendOption('TensorFlow.js backend (with --model)'))
      .option('batch-tokens', batchTokensOption(' (with --model)'))
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (metrics.json, graded.jsonl; per set + summary.json)' })
      .group(['split', 'step-separator', 'split-min-chars', 'split-max-steps', 'think'], 'Step splitting (with --model):')
      .example('$0 eval bon --candidates cands.jsonl --scores-field scores --n 8 --out runs/bon', '')
      .example('$0 eval bon --candidates r1.jsonl --model checkpoints/prm --think skipped --split-max-steps 40 --out runs/bon', '')
      .example('$0 eval bon --candidates gsm8k.jsonl,math.jsonl --model checkpoints/prm --out runs/bon', ''),
  handler: async (args) => {
    if (!args.model && !args['scores-field']) throw new UsageError('eval bon needs --model DIR or --scores-field NAME');
    const candidates = list(args.candidates);
    if (!candidates) throw new UsageError('--candidates names no file');
    const aggregators = aggregatorsOption(args.agg, '--agg');
    const [voteAggregator] = aggregatorsOption(args['vote-agg'], '--vote-agg');
    const n = positiveInt(args.n, '--n');
    integerAtLeast(args.bootstrap, '--bootstrap', 0);
    await refuseOutputOverInput(candidates, await bonOutputFiles(candidates, args.out));
    const { runBon } = await import('../../eval/run-bon.js');
    const scorer = args.model ? await openScorer(args.model, args) : undefined;
    try {
      const result = await runBon({
        candidates,
        scoresField: args['scores-field'],
        scorer,
        split: splitOptionsOf(args),
        n,
        aggregators,
        voteAggregator,
        voteWeights: args['vote-weights'] as 'auto' | 'score' | 'softmax',
        fields: { problemField: args['problem-field'], answerField: args['answer-field'], responsesField: args['responses-field'] },
        bootstrap: { resamples: args.bootstrap, seed: args.seed },
        out: args.out,
      });
      console.log(result.markdown);
      console.error(`prmkit: wrote ${args.out}`);
    } finally {
      scorer?.dispose();
    }
  },
};

interface SimArgs {
  model: string;
  problems: number;
  n: number;
  seed: number;
  threshold: string;
  backend: BackendName;
  'batch-tokens'?: number;
  out: string;
}

const sim: CommandModule<object, SimArgs> = {
  command: 'sim',
  describe: 'Both benchmarks on the synthetic world: truth-labelled step errors and N policy samples per problem',
  builder: (y: Argv) =>
    y
      .option('model', modelOption())
      .option('problems', { type: 'number', default: 200, describe: 'problems per benchmark' })
      .option('n', { type: 'number', default: 8, describe: 'policy samples per problem (Best-of-N)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the generated benchmarks' })
      .option('threshold', { type: 'string', default: '0.5', describe: 'step-error threshold, or "auto" (best F1 on the sim set)' })
      .option('backend', backendOption())
      .option('batch-tokens', batchTokensOption())
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (processbench/, bon/, summary.json)' })
      .example('$0 eval sim --model checkpoints/prm --problems 200 --out runs/sim-eval', ''),
  handler: async (args) => {
    const threshold = parseThreshold(args.threshold);
    const problems = positiveInt(args.problems, '--problems');
    const n = positiveInt(args.n, '--n');
    const { runSimEval } = await import('../../eval/run-sim.js');
    const scorer = await openScorer(args.model, args);
    try {
      const result = await runSimEval({ scorer, problems, n, seed: args.seed, threshold, out: args.out });
      console.log(result.markdown);
      console.error(`prmkit: wrote ${args.out}`);
    } finally {
      scorer.dispose();
    }
  },
};

export const evalCommand: CommandModule = {
  command: 'eval',
  describe: 'Evaluate a PRM: ProcessBench, PRMBench, Best-of-N, or both on the synthetic world',
  builder: (y: Argv) =>
    y
      .command(processbench)
      .command(prmbench)
      .command(bon)
      .command(sim)
      .demandCommand(1, 'Name a benchmark: processbench, prmbench, bon or sim.'),
  handler: () => {},
};
