import { readInputText } from '../../util/input-file.js';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { refuseOutputOverInput } from '../outputs.js';
import { writeFileAtomic } from '../../util/durable-fs.js';
import { DATA_FORMATS, isDataFormat, type DataFormat } from '../../data/formats.js';
import type { EndpointOptions } from '../../labels/run.js';
import { CLIENT_DEFAULTS, JUDGE_DEFAULTS, MAX_FAILED_SAMPLES, MC_DEFAULTS, MC_LABEL_KINDS, MC_SEARCHES } from '../../labels/defaults.js';
import { integerAtLeast, parseEndpointList, positiveInt, requestBoundOptions, requestBounds, type RequestBoundArgs } from '../options.js';

interface ClientArgs extends RequestBoundArgs {
  endpoint: string;
  model: string;
  cache?: string;
  concurrency: number;
  'api-key'?: string;
  input: string;
  format?: string;
  'on-bad-record': 'fail' | 'skip';
  'max-failures': number;
  seed: number;
  'max-tokens'?: number;
  out: string;
  stats?: string;
}

function addClientOptions<T>(y: Argv<T>) {
  return y
    .option('input', { type: 'string', demandOption: true, describe: 'StepSample data (JSONL or any format prmkit reads)' })
    .option('format', { type: 'string', describe: `input layout (${DATA_FORMATS.join(', ')}); detected when not given` })
    .option('on-bad-record', { choices: ['fail', 'skip'] as const, default: 'fail' as const, describe: 'stop at bad input records, or skip them into a rejects file' })
    .option('endpoint', { type: 'string', demandOption: true, describe: 'OpenAI-compatible server(s): URL or URL1,URL2,... (load-balanced)' })
    .option('model', { type: 'string', demandOption: true, describe: 'model name sent with each request' })
    .option('cache', { type: 'string', describe: 'response cache directory: a rerun (e.g. after a kill) re-sends nothing it has' })
    .option('concurrency', { type: 'number', default: CLIENT_DEFAULTS.concurrency, describe: 'requests in flight at once, over all endpoints' })
    .options(requestBoundOptions)
    .option('api-key', { type: 'string', describe: 'bearer token (default: $OPENAI_API_KEY if set)' })
    .option('seed', { type: 'number', default: 0, describe: 'mixed into every request seed' })
    .option('max-tokens', { type: 'number', describe: `max_tokens per reply (default: ${MC_DEFAULTS.maxTokens} for mc; not sent for judge)` })
    .option('max-failures', { type: 'number', default: MAX_FAILED_SAMPLES, describe: 'stop once more samples than this have failed' })
    .option('stats', { type: 'string', describe: 'stats JSON file (default: <out>.stats.json)' })
    .option('out', { type: 'string', demandOption: true, describe: 'output StepSample JSONL' });
}

function endpointOptions(args: ClientArgs): EndpointOptions {
  return {
    endpoint: parseEndpointList(args.endpoint),
    apiKey: args['api-key'] ?? process.env.OPENAI_API_KEY,
    concurrency: positiveInt(args.concurrency, '--concurrency'),
    ...requestBounds(args),
    cacheDir: args.cache,
  };
}

function inputFormat(value: string | undefined): DataFormat | undefined {
  if (value === undefined) return undefined;
  if (!isDataFormat(value)) throw new UsageError(`--format must be one of ${DATA_FORMATS.join(', ')}; got "${value}"`);
  return value;
}

function statsPath(out: string, given: string | undefined): string {
  return given ?? `${out.replace(/\.(jsonl|ndjson)$/i, '')}.stats.json`;
}

async function writeStats(path: string, stats: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(stats, null, 2)}\n`);
}

function failIfSamplesFailed(failed: { id: string; error: string }[], cache: string | undefined): void {
  if (failed.length === 0) return;
  const hint = cache ? 'run it again to retry them (answers received are in the cache)' : 'run it again with --cache DIR to keep answers across runs';
  throw new Error(`${failed.length} samples failed (first: ${failed[0].id}: ${failed[0].error}); ${hint}`);
}

interface McArgs extends ClientArgs {
  rollouts: number;
  threshold: number;
  search: 'linear' | 'binary';
  labels: 'hard' | 'soft';
  temperature: number;
  system?: string;
  'chat-template'?: string;
}

const mc: CommandModule<object, McArgs> = {
  command: 'mc',
  describe: 'Monte Carlo step labels: K policy completions per step prefix, graded against the gold answer',
  builder: (y: Argv) =>
    addClientOptions(y)
      .option('rollouts', { type: 'number', default: MC_DEFAULTS.rollouts, describe: 'completions per step prefix (K)' })
      .option('threshold', { type: 'number', default: MC_DEFAULTS.threshold, describe: 'hard label = share of correct completions > threshold' })
      .option('search', { choices: MC_SEARCHES, default: MC_DEFAULTS.search, describe: 'find the first negative step prefix by prefix, or by binary search (fewer rollouts)' })
      .option('labels', { choices: MC_LABEL_KINDS, default: MC_DEFAULTS.labels, describe: 'what goes in "labels" (soft labels are always in meta.softLabels)' })
      .option('temperature', { type: 'number', default: MC_DEFAULTS.temperature, describe: 'sampling temperature of the completions' })
      .option('system', { type: 'string', describe: 'system prompt (default: the Qwen2.5-Math one)' })
      .option('chat-template', { type: 'string', describe: 'file with a Jinja chat template (default ChatML, as Qwen models use)' })
      .example('$0 label mc --input data/solutions.jsonl --endpoint http://127.0.0.1:8000 --model Qwen/Qwen2.5-Math-7B-Instruct --cache data/cache --out data/mc.jsonl', '')
      .example('$0 label mc --input s.jsonl --endpoint http://gpu1:8000,http://gpu2:8000 --model policy --search binary --out mc.jsonl', ''),
  handler: async (args) => {
    const endpoint = endpointOptions(args);
    const rollouts = positiveInt(args.rollouts, '--rollouts');
    await refuseOutputOverInput([args.input, args['chat-template']], [args.out, statsPath(args.out, args.stats)]);
    if (!(args.threshold >= 0 && args.threshold < 1)) throw new UsageError(`--threshold must be in [0, 1), got ${args.threshold}`);
    const chatTemplate = args['chat-template'] ? await readInputText(args['chat-template']) : undefined;
    const { labelMc } = await import('../../labels/mc.js');
    const { formatMcStats } = await import('../../labels/summary.js');
    const stats = await labelMc({
      ...endpoint,
      input: args.input,
      format: inputFormat(args.format),
      onBadRecord: args['on-bad-record'],
      out: args.out,
      model: args.model,
      rollouts,
      threshold: args.threshold,
      search: args.search,
      labels: args.labels,
      temperature: args.temperature,
      maxTokens: args['max-tokens'],
      seed: args.seed,
      system: args.system,
      chatTemplate,
      maxFailures: args['max-failures'],
    });
    const file = statsPath(args.out, args.stats);
    await writeStats(file, stats);
    console.log(formatMcStats(stats));
    console.error(`prmkit: wrote ${args.out} and ${file}`);
    failIfSamplesFailed(stats.failed, args.cache);
  },
};

interface JudgeArgs extends ClientArgs {
  temperature: number;
  'parse-retries': number;
  'keep-replies': boolean;
}

const judge: CommandModule<object, JudgeArgs> = {
  command: 'judge',
  describe: 'LLM-as-a-judge labels: the first wrong paragraph of each solution, or none',
  builder: (y: Argv) =>
    addClientOptions(y)
      .option('temperature', { type: 'number', default: JUDGE_DEFAULTS.temperature, describe: `temperature of the first ask (re-asks after an unparsable reply use ${JUDGE_DEFAULTS.retryTemperature})` })
      .option('parse-retries', { type: 'number', default: JUDGE_DEFAULTS.parseRetries, describe: 're-asks (new seed) after an unparsable reply, before recording it as unparsable' })
      .option('keep-replies', { type: 'boolean', default: false, describe: 'keep every judge reply in meta.judge.reply' })
      .example('$0 label judge --input data/solutions.jsonl --endpoint http://127.0.0.1:8001 --model Qwen/Qwen2.5-72B-Instruct --cache data/cache --out data/judge.jsonl', ''),
  handler: async (args) => {
    const endpoint = endpointOptions(args);
    integerAtLeast(args['parse-retries'], '--parse-retries', 0);
    await refuseOutputOverInput([args.input], [args.out, statsPath(args.out, args.stats)]);
    const { labelJudge } = await import('../../labels/judge.js');
    const { formatJudgeStats } = await import('../../labels/summary.js');
    const stats = await labelJudge({
      ...endpoint,
      input: args.input,
      format: inputFormat(args.format),
      onBadRecord: args['on-bad-record'],
      out: args.out,
      model: args.model,
      temperature: args.temperature,
      parseRetries: args['parse-retries'],
      maxTokens: args['max-tokens'],
      seed: args.seed,
      keepReplies: args['keep-replies'],
      maxFailures: args['max-failures'],
    });
    const file = statsPath(args.out, args.stats);
    await writeStats(file, stats);
    console.log(formatJudgeStats(stats));
    console.error(`prmkit: wrote ${args.out} and ${file}`);
    failIfSamplesFailed(stats.failed, args.cache);
  },
};

interface ConsensusArgs {
  mc: string;
  judge: string;
  out: string;
  dropped?: string;
  stats?: string;
}

const consensusCommand: CommandModule<object, ConsensusArgs> = {
  command: 'consensus',
  describe: 'Keep samples where MC and the judge put the first error at the same step (or both find none)',
  builder: (y: Argv) =>
    y
      .option('mc', { type: 'string', demandOption: true, describe: 'output of label mc' })
      .option('judge', { type: 'string', demandOption: true, describe: 'output of label judge' })
      .option('out', { type: 'string', demandOption: true, describe: 'kept samples (MC labels), JSONL' })
      .option('dropped', { type: 'string', describe: 'dropped samples with meta.consensus.reason, JSONL' })
      .option('stats', { type: 'string', describe: 'stats JSON file (default: <out>.stats.json)' })
      .example('$0 label consensus --mc data/mc.jsonl --judge data/judge.jsonl --out data/consensus.jsonl --dropped data/dropped.jsonl', ''),
  handler: async (args) => {
    await refuseOutputOverInput([args.mc, args.judge], [args.out, args.dropped, statsPath(args.out, args.stats)]);
    const { consensus } = await import('../../labels/consensus.js');
    const { formatConsensusStats } = await import('../../labels/summary.js');
    const stats = await consensus({ mc: args.mc, judge: args.judge, out: args.out, dropped: args.dropped });
    const file = statsPath(args.out, args.stats);
    await writeStats(file, stats);
    console.log(formatConsensusStats(stats));
    console.error(`prmkit: wrote ${args.out}${args.dropped ? `, ${args.dropped}` : ''} and ${file}`);
  },
};

export const labelCommand: CommandModule = {
  command: 'label <command>',
  describe: 'Make step labels: MC estimation, LLM judge, consensus filtering',
  builder: (y: Argv) =>
    y
      .command(mc)
      .command(judge)
      .command(consensusCommand)
      .demandCommand(1, 'Name a label command: mc, judge or consensus.'),
  handler: () => {},
};
