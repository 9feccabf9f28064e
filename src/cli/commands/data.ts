import { basename, dirname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { refuseOutputOverInput } from '../outputs.js';
import { DATA_FORMATS, isDataFormat, type DataFormat } from '../../data/formats.js';
import { dataFiles, detectFormat, openStepSamples, type ReadOptions, type ReadStats } from '../../data/read.js';
import { countRecords } from '../../data/sources.js';
import { unescapeSeparator } from '../../data/split.js';
import { formatStats, StatsCollector, type DataStats } from '../../data/stats.js';
import { writeStepSamples, type WriteFormat } from '../../data/write.js';
import { downloadDataset, HUB_DATASETS, type HubDatasetName } from '../../data/hub.js';
import { progressBar } from '../../util/progress.js';
import type { StepSample } from '../../data/types.js';

interface ReadArgs {
  'on-bad-record': 'fail' | 'skip';
  rejects?: string;
  'step-separator'?: string;
  neutral: 'positive' | 'negative';
}

function readOptions(format: DataFormat, args: ReadArgs, rejectsDefault: string): ReadOptions {
  return {
    format,
    onBadRecord: args['on-bad-record'],
    rejectsPath: args.rejects ?? rejectsDefault,
    stepSeparator: args['step-separator'] !== undefined ? unescapeSeparator(args['step-separator']) : undefined,
    neutral: args.neutral,
    onReject: (err) => console.error(`prmkit: skipped ${err.message}`),
  };
}

function addReadOptions<T>(y: Argv<T>): Argv<T & ReadArgs> {
  return y
    .option('on-bad-record', { choices: ['fail', 'skip'] as const, default: 'fail' as const, describe: 'fail after reporting the first bad records, or skip them into a rejects file' })
    .option('rejects', { type: 'string', describe: 'rejects file for --on-bad-record skip (default: next to the output)' })
    .option('step-separator', { type: 'string', describe: 'separator for formats that split text into steps (escapes like \\n\\n allowed; default "\\n\\n", GSM8K "\\n")' })
    .option('neutral', { choices: ['positive', 'negative'] as const, default: 'positive' as const, describe: 'PRM800K: how neutral (0) ratings count' });
}

function parseFormat(value: string | undefined, flag: string): DataFormat | undefined {
  if (value === undefined) return undefined;
  if (!isDataFormat(value)) throw new UsageError(`${flag} must be one of ${DATA_FORMATS.join(', ')}; got "${value}"`);
  return value;
}

async function resolveFormat(path: string, given: DataFormat | undefined): Promise<DataFormat> {
  if (given) return given;
  const { format } = await detectFormat(path);
  if (!format) throw new UsageError(`cannot tell the record format of ${path}; pass --format (${DATA_FORMATS.join(', ')})`);
  return format;
}

function summariseRead(stats: ReadStats): string {
  const parts = [`${stats.records} records`, `${stats.samples} samples`, `${stats.rejected} rejected`, `${stats.droppedSteps} dropped steps`, `${stats.truncatedSteps} truncated steps`];
  return `${parts.join(', ')}${stats.rejectsPath && stats.rejected > 0 ? ` (rejects in ${stats.rejectsPath})` : ''}`;
}

/**
 * Passes samples through while a progress bar follows the records read (the total is known
 * for JSONL and Parquet inputs, so the bar has an ETA; otherwise it shows a running count).
 */
async function* withProgress(samples: AsyncIterable<StepSample>, stats: ReadStats, label: string): AsyncGenerator<StepSample> {
  let total = 0;
  for (const file of await dataFiles(stats.path)) total += (await countRecords(file).catch(() => undefined)) ?? 0;
  const bar = progressBar(label, total);
  let shown = 0;
  const update = () => {
    if (stats.records - shown >= 1000 || stats.done) {
      bar.tick(stats.records - shown, { samples: stats.samples, rejected: stats.rejected });
      shown = stats.records;
    }
  };
  try {
    for await (const s of samples) {
      update();
      yield s;
    }
  } finally {
    update();
    bar.stop();
  }
}

interface ConvertArgs extends ReadArgs {
  from: string;
  to: WriteFormat;
  in: string;
  out: string;
}

export async function runConvert(args: ConvertArgs): Promise<ReadStats> {
  const format = parseFormat(args.from, '--from')!;
  const rejectsDefault = join(dirname(args.out), `${basename(args.out)}.rejects.jsonl`);
  await refuseOutputOverInput([args.in], [args.out, args.rejects ?? rejectsDefault]);
  const { samples, stats } = openStepSamples(args.in, readOptions(format, args, rejectsDefault));
  const written = await writeStepSamples(args.out, withProgress(samples, stats, 'convert'), args.to);
  console.error(`prmkit: wrote ${written} samples to ${args.out} (${args.to}); read ${summariseRead(stats)}`);
  return stats;
}

const convert: CommandModule<object, ConvertArgs> = {
  command: 'convert <in> <out>',
  describe: 'Convert a PRM data file (or folder) to prmkit StepSamples as JSONL or Arrow',
  builder: (y: Argv) =>
    addReadOptions(
      y
        .positional('in', { type: 'string', demandOption: true, describe: 'input file or folder (JSONL, JSON array, Arrow IPC, Parquet)' })
        .positional('out', { type: 'string', demandOption: true, describe: 'output file' })
        .option('from', { type: 'string', demandOption: true, choices: DATA_FORMATS, describe: 'record format of the input' })
        .option('to', { choices: ['jsonl', 'arrow'] as const, demandOption: true, describe: 'output container' }),
    )
      .example('$0 data convert --from processbench --to arrow data/processbench pb.arrow', '')
      .example('$0 data convert --from prm800k --neutral negative --to jsonl --on-bad-record skip phase2_train.jsonl prm800k.jsonl', ''),
  handler: async (args) => {
    await runConvert(args);
  },
};

interface StatsArgs extends ReadArgs {
  file: string;
  format?: string;
  json: boolean;
}

export async function computeFileStats(file: string, args: Omit<StatsArgs, 'file' | 'json'>): Promise<{ stats: DataStats; read: ReadStats }> {
  const rejectsDefault = `${basename(file)}.rejects.jsonl`;
  await refuseOutputOverInput([file], [args.rejects ?? rejectsDefault]);
  const format = await resolveFormat(file, parseFormat(args.format, '--format'));
  const { samples, stats: read } = openStepSamples(file, readOptions(format, args, rejectsDefault));
  const collector = new StatsCollector();
  for await (const s of withProgress(samples, read, 'stats')) collector.add(s);
  return { stats: collector.result(), read };
}

const stats: CommandModule<object, StatsArgs> = {
  command: 'stats <file>',
  describe: 'Counts, steps-per-sample histogram, label balance and first-error positions of a data file',
  builder: (y: Argv) =>
    addReadOptions(
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'data file or folder' })
        .option('format', { type: 'string', choices: DATA_FORMATS, describe: 'record format (default: guessed from the first record)' })
        .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' }),
    )
      .example('$0 data stats data/processbench --format processbench', '')
      .example('$0 data stats train.arrow --json', ''),
  handler: async (args) => {
    const { stats: result, read } = await computeFileStats(args.file, args);
    if (args.json) console.log(JSON.stringify({ read, ...result }, null, 2));
    else console.log(formatStats(result, read));
  },
};

interface GetArgs {
  dataset: string;
  to: string;
  revision?: string;
  force: boolean;
}

const get: CommandModule<object, GetArgs> = {
  command: 'get <dataset>',
  describe: 'Download a dataset from the Hugging Face Hub: a known name, or any hf://OWNER/NAME[@revision][:split] (resumable, sha256-checked)',
  builder: (y: Argv) =>
    y
      .positional('dataset', { type: 'string', demandOption: true, describe: `${Object.keys(HUB_DATASETS).join(', ')}, or hf://OWNER/NAME[@revision][:split]` })
      .option('to', { type: 'string', default: 'data', describe: 'target root folder' })
      .option('revision', { type: 'string', describe: 'branch, tag or commit of a known dataset (default main); for hf:// use @revision' })
      .option('force', { type: 'boolean', default: false, describe: 'download again even if the cache verifies' })
      .epilogue('HF_ENDPOINT overrides the Hub address (mirrors); HF_TOKEN is sent as a bearer token.')
      .example('$0 data get processbench --to data/', '')
      .example('$0 data get hf://peiyi9979/Math-Shepherd:train', '')
      .example('HF_ENDPOINT=https://hf-mirror.com $0 data get gsm8k', ''),
  handler: async (args) => {
    await runDataGet(args);
  },
};

/** `prmkit data get`: a known dataset by name, or any Hub dataset by hf:// reference. */
export async function runDataGet(args: GetArgs, log: (line: string) => void = (l) => console.error(l)): Promise<{ dir: string; format?: string }> {
  if (args.dataset.startsWith('hf://')) {
    const { getHubDataset, parseHubRef } = await import('../../data/hub-parquet.js');
    let ref;
    try {
      ref = parseHubRef(args.dataset);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (args.revision !== undefined) throw new UsageError(`--revision is for known datasets; pin a Hub dataset with ${args.dataset.replace(/[@:].*$/, '')}@REVISION`);
    const result = await getHubDataset(ref, { to: args.to, force: args.force, log });
    log(
      `prmkit: ${args.dataset} in ${result.dir} (${result.files.length} Parquet file${result.files.length === 1 ? '' : 's'}, manifest ${result.manifestPath}); ` +
        (result.format ? `format ${result.format}: read it with --format ${result.format}` : 'format not recognised (give --format when reading it)'),
    );
    return { dir: result.dir, format: result.format };
  }
  if (!Object.prototype.hasOwnProperty.call(HUB_DATASETS, args.dataset)) {
    throw new UsageError(`unknown dataset "${args.dataset}": choose ${Object.keys(HUB_DATASETS).join(', ')}, or give hf://OWNER/NAME[@revision][:split]`);
  }
  const name = args.dataset as HubDatasetName;
  const result = await downloadDataset(name, { to: args.to, revision: args.revision, force: args.force, log });
  const spec = HUB_DATASETS[name];
  log(`prmkit: ${name} in ${result.dir} (manifest ${result.manifestPath}); read it with --format ${spec.format}`);
  return { dir: result.dir, format: spec.format };
}

export const dataCommand: CommandModule = {
  command: 'data',
  describe: 'Convert, inspect and download PRM data',
  builder: (y: Argv) =>
    y
      .command(convert)
      .command(stats)
      .command(get)
      .demandCommand(1, 'Name a data command: convert, stats or get.'),
  handler: () => undefined,
};
