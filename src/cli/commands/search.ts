import { readInputText } from '../../util/input-file.js';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { AGGREGATORS, isAggregator, type Aggregator } from '../../eval/aggregate.js';
import type { BackendName } from '../../backend/backend-names.js';
import { backendOption, batchTokensOption, integerAtLeast, optionalModelOption, parseEndpointList, positiveInt, positiveNumber, REMOTE_REWARD_OPTIONS, remoteRewardOptions, requestBoundOptions, requestBounds, type RemoteRewardArgs, type RequestBoundArgs } from '../options.js';
import { addSplitOptions, splitOptionsOf, type SplitArgs } from '../split-options.js';
import { SEARCH_METHODS, type SearchMethod } from '../../search/methods.js';

interface SearchArgs extends SplitArgs, RemoteRewardArgs {
  policy: string;
  'policy-model': string;
  'api-key'?: string;
  model?: string;
  reward?: string;
  problems: string;
  'problem-field'?: string;
  'answer-field'?: string;
  limit?: number;
  method: string;
  n: string;
  'beam-width': number;
  'max-steps': number;
  agg: string;
  'vote-weights': string;
  temperature: number;
  'top-p'?: number;
  'max-tokens': number;
  'max-step-tokens': number;
  seed: number;
  system?: string;
  'chat-template'?: string;
  concurrency: number;
  'problem-concurrency': number;
  bootstrap: number;
  backend: BackendName;
  'batch-tokens'?: number;
  out: string;
}

type SearchCommandArgs = SearchArgs & RequestBoundArgs;

function listOf(value: string, flag: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${flag} names nothing`);
  return [...new Set(items)];
}

export async function runSearchCommand(args: SearchCommandArgs): Promise<void> {
  if (!args.model === !args.reward) throw new UsageError('search needs the PRM: --model DIR (local) or --reward URL (prmkit serve), one of them');
  const methods = listOf(args.method, '--method').map((m) => {
    if (!(SEARCH_METHODS as readonly string[]).includes(m)) throw new UsageError(`--method: unknown method "${m}" (choose from ${SEARCH_METHODS.join(', ')})`);
    return m as SearchMethod;
  });
  const ns = listOf(args.n, '--n').map((v) => positiveInt(Number(v), '--n'));
  const beamWidth = positiveInt(args['beam-width'], '--beam-width');
  for (const m of methods) {
    if (m === 'bon') continue;
    const bad = ns.find((n) => n < beamWidth || n % beamWidth !== 0);
    if (bad !== undefined) throw new UsageError(`--n ${bad}: ${m} needs N to be a multiple of --beam-width ${beamWidth}`);
  }
  if (!isAggregator(args.agg)) throw new UsageError(`--agg: unknown aggregator "${args.agg}" (known: ${AGGREGATORS.join(', ')})`);
  const maxSteps = positiveInt(args['max-steps'], '--max-steps');
  if (!(args.temperature >= 0)) throw new UsageError(`--temperature must be >= 0, got ${args.temperature}`);
  integerAtLeast(args.bootstrap, '--bootstrap', 0);
  const split = splitOptionsOf(args);
  const endpoints = parseEndpointList(args.policy, '--policy');
  const limit = args.limit === undefined ? undefined : positiveInt(args.limit, '--limit');

  const { readSearchProblems } = await import('../../search/problems.js');
  const problems = await readSearchProblems(args.problems, { fields: { problemField: args['problem-field'], answerField: args['answer-field'] }, limit });
  const chatTemplate = args['chat-template'] ? await readInputText(args['chat-template']) : undefined;

  const { ResponseCache } = await import('../../labels/cache.js');
  const { OpenAIClient } = await import('../../labels/client.js');
  const { PolicySampler } = await import('../../search/policy.js');
  const { localReward, openRemoteReward } = await import('../../search/reward.js');
  const { runSearch } = await import('../../search/run.js');
  // Policy completions (and remote PRM scores) are cached in the output folder: a killed run,
  // started again with the same options, re-sends nothing it already has.
  const cache = await ResponseCache.open(join(args.out, 'cache'));
  let reward;
  try {
    if (args.model) {
      const { openStepScorer } = await import('../../eval/model-scorer.js');
      const scorer = await openStepScorer(args.model, { backend: args.backend, batchTokens: args['batch-tokens'] });
      console.error(`prmkit: PRM ${args.model} on backend ${scorer.backend}`);
      reward = localReward(scorer, `${args.model} (local)`);
    } else if (args.reward === 'sim-truth') {
      const { simTruthScorer } = await import('../../sim/truth-scorer.js');
      reward = localReward(simTruthScorer(), 'the sim truth (a perfect process verifier)');
    } else {
      reward = await openRemoteReward(args.reward as string, { ...remoteRewardOptions(args), cache, concurrency: args.concurrency });
    }
    const bounds = requestBounds(args);
    const client = new OpenAIClient({
      endpoints,
      apiKey: args['api-key'] ?? process.env.OPENAI_API_KEY,
      cache,
      concurrency: positiveInt(args.concurrency, '--concurrency'),
      maxRetries: bounds.retries,
      timeoutMs: bounds.timeoutMs,
      deadlineMs: bounds.deadlineMs,
      maxReplyBytes: bounds.maxReplyBytes,
    });
    const policy = new PolicySampler(client, {
      model: args['policy-model'],
      temperature: args.temperature,
      ...(args['top-p'] !== undefined ? { topP: positiveNumber(args['top-p'], '--top-p') } : {}),
      maxTokens: positiveInt(args['max-tokens'], '--max-tokens'),
      maxStepTokens: positiveInt(args['max-step-tokens'], '--max-step-tokens'),
      ...(args.system !== undefined ? { system: args.system } : {}),
      ...(chatTemplate !== undefined ? { chatTemplate } : {}),
    });
    const result = await runSearch({
      problems,
      methods,
      ns,
      beamWidth,
      maxSteps,
      aggregator: args.agg as Aggregator,
      voteWeights: args['vote-weights'] as 'auto' | 'score' | 'softmax',
      seed: args.seed,
      policy,
      reward,
      split,
      concurrency: positiveInt(args['problem-concurrency'], '--problem-concurrency'),
      bootstrap: { resamples: args.bootstrap, seed: args.seed },
      out: args.out,
      log: (line) => console.error(`prmkit: ${line}`),
    });
    console.log(result.markdown);
    const stats = client.stats();
    console.error(`prmkit: policy requests ${stats.requests} sent, ${stats.cacheHits} from the cache; wrote ${result.files.metrics}, ${result.files.report}, ${result.files.plot}`);
  } finally {
    await reward?.close();
    await cache.close();
  }
}

export const searchCommand: CommandModule<object, SearchCommandArgs> = {
  command: 'search',
  describe: 'Test-time search guided by a PRM against an OpenAI-compatible policy: Best-of-N, beam search, DVTS',
  builder: (y: Argv) =>
    addSplitOptions(y)
      .option('policy', { type: 'string', demandOption: true, describe: 'OpenAI-compatible endpoint(s) of the policy (vLLM, SGLang, prmkit sim serve), comma separated' })
      .option('policy-model', { type: 'string', default: 'sim-policy', describe: 'model name sent to the policy endpoint' })
      .option('api-key', { type: 'string', describe: 'bearer token of the policy endpoint (or OPENAI_API_KEY)' })
      .option('model', optionalModelOption(': the PRM, run here'))
      .option('reward', { type: 'string', describe: 'URL of a prmkit serve reward server (or of vLLM\'s /pooling endpoint) instead of --model; "sim-truth": the sim world\'s truth (a perfect verifier, the ceiling of a sim PRM)' })
      .options(REMOTE_REWARD_OPTIONS)
      .conflicts('model', 'reward')
      .option('problems', { type: 'string', demandOption: true, describe: 'problems with gold answers: JSONL/JSON/Parquet of {problem|question, answer|gt} (bon-eval sets, sim problems.jsonl)' })
      .option('problem-field', { type: 'string', describe: 'default problem|question' })
      .option('answer-field', { type: 'string', describe: 'default answer|gt|final_answer' })
      .option('limit', { type: 'number', describe: 'only the first N problems' })
      .option('method', { type: 'string', default: 'bon', describe: `methods, comma separated: ${SEARCH_METHODS.join(', ')}` })
      .option('n', { type: 'string', default: '4', describe: 'budgets N, comma separated (e.g. 4,16,64): samples (bon), or beams x width (beam, dvts)' })
      .option('beam-width', { type: 'number', default: 4, describe: 'M: next steps sampled per kept partial solution (beam, dvts)' })
      .option('max-steps', { type: 'number', default: 40, describe: 'most rounds (steps) of step-wise search' })
      .option('agg', { type: 'string', default: 'min', describe: `how step scores rank a solution: ${AGGREGATORS.join(', ')}` })
      .option('vote-weights', { type: 'string', choices: ['auto', 'score', 'softmax'], default: 'auto', describe: 'weights of the weighted vote (auto: the scores if in [0,1], else softmax)' })
      .option('temperature', { type: 'number', default: 0.8, describe: 'sampling temperature of the policy' })
      .option('top-p', { type: 'number', describe: 'nucleus sampling of the policy' })
      .option('max-tokens', { type: 'number', default: 2048, describe: 'token limit of a whole solution (bon)' })
      .option('max-step-tokens', { type: 'number', default: 512, describe: 'token limit of one step (beam, dvts)' })
      .option('seed', { type: 'number', default: 0, describe: 'seeds every request (and the bootstrap): a rerun sends the same requests' })
      .option('system', { type: 'string', describe: 'system prompt of the policy (default: the Qwen2.5-Math one)' })
      .option('chat-template', { type: 'string', describe: 'file with the policy\'s Jinja chat template (default ChatML, as Qwen models use)' })
      .option('concurrency', { type: 'number', default: 16, describe: 'requests in flight at once' })
      .options(requestBoundOptions)
      .option('problem-concurrency', { type: 'number', default: 8, describe: 'problems searched at once' })
      .option('bootstrap', { type: 'number', default: 1000, describe: 'bootstrap resamples over problems (0 = no intervals)' })
      .option('backend', backendOption('TensorFlow.js backend (with --model)'))
      .option('batch-tokens', batchTokensOption(' (with --model)'))
      .option('out', { type: 'string', demandOption: true, describe: 'output directory: <method>-n<N>/results.jsonl, metrics.json, report.md, accuracy_vs_budget.svg, cache/' })
      .group(['split', 'step-separator', 'split-min-chars', 'split-max-steps', 'think'], 'Step splitting (Best-of-N samples):')
      .example('$0 search --policy http://127.0.0.1:8000 --problems data/sim/problems.jsonl --model checkpoints/prm --method bon,beam,dvts --n 4,16,64 --out runs/search', '')
      .example('$0 search --policy http://gpu:8000 --policy-model Qwen/Qwen2.5-Math-1.5B-Instruct --reward http://gpu:8001 --problems ../shared/data/bon-eval/gsm8k/test.jsonl --method beam --n 16 --out runs/search', ''),
  handler: async (args) => {
    await runSearchCommand(args);
  },
};
