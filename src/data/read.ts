import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AdapterOptions } from './adapter.js';
import { ADAPTERS, guessFormat, type DataFormat } from './formats.js';
import { MANIFEST_NAME } from './hub.js';
import { BadRecordPolicy, type BadRecordOptions } from './bad-records.js';
import { RecordError, type JsonLimits } from './jsonl.js';
import { orderFields } from './prmkit.js';
import type { RecordLocation } from './record.js';
import { detectFileKind, readRecords, type FileKind } from './sources.js';
import type { StepSample } from './types.js';
import { validateStepSample } from './validate.js';

export type { DataFormat } from './formats.js';

export interface ReadOptions extends BadRecordOptions, JsonLimits {
  format: DataFormat;
  /** Separator for formats that split running text into steps (default "\n\n"; GSM8K "\n"). */
  stepSeparator?: string;
  /** PRM800K neutral (0) ratings: 'positive' (default) or 'negative'. */
  neutral?: 'positive' | 'negative';
  /** ProcessBench subset name for files that do not say (e.g. a single JSONL). */
  subset?: string;
}

/** What a read saw; complete once the samples generator has finished. */
export interface ReadStats {
  path: string;
  format: DataFormat;
  files: string[];
  /** Source records seen (lines, array items, rows). */
  records: number;
  /** StepSamples produced. */
  samples: number;
  /** Records rejected (skip mode) — each written to rejectsPath. */
  rejected: number;
  /** Steps in the source that could not be kept (counted by the adapters, e.g. unlabelled tails). */
  droppedSteps: number;
  /** Steps cut from kept samples (none of the readers cut; kept for the DESIGN contract and callers that truncate). */
  truncatedSteps: number;
  rejectsPath?: string;
  done: boolean;
}

export { BadRecordsError, MAX_REPORTED_PROBLEMS } from './bad-records.js';

/**
 * Opens a data file (or a folder of them) as a stream of validated StepSamples. `stats` fills
 * in while iterating and is final when the generator returns. Records that do not fit the
 * format or the StepSample contract fail the read (default) or, with onBadRecord 'skip', are
 * written to the rejects file with their reason and counted; nothing is dropped silently.
 */
export function openStepSamples(path: string, opts: ReadOptions): { samples: AsyncGenerator<StepSample>; stats: ReadStats } {
  const stats: ReadStats = { path, format: opts.format, files: [], records: 0, samples: 0, rejected: 0, droppedSteps: 0, truncatedSteps: 0, done: false };
  return { samples: iterate(path, opts, stats), stats };
}

/** Streams validated StepSamples from a file or folder (see openStepSamples for the stats). */
export async function* readStepSamples(path: string, opts: ReadOptions): AsyncGenerator<StepSample> {
  yield* openStepSamples(path, opts).samples;
}

/** Reads a whole (small) file into memory, with its stats. */
export async function readAllStepSamples(path: string, opts: ReadOptions): Promise<{ samples: StepSample[]; stats: ReadStats }> {
  const { samples, stats } = openStepSamples(path, opts);
  const out: StepSample[] = [];
  for await (const s of samples) out.push(s);
  return { samples: out, stats };
}

async function* iterate(path: string, opts: ReadOptions, stats: ReadStats): AsyncGenerator<StepSample> {
  const adapter = ADAPTERS[opts.format];
  if (!adapter) throw new Error(`unknown data format "${String(opts.format)}"`);
  const adapterOpts: AdapterOptions = { stepSeparator: opts.stepSeparator, neutral: opts.neutral ?? 'positive', subset: opts.subset };
  const policy = new BadRecordPolicy(path, opts);
  try {
    for (const file of await dataFiles(path)) {
      stats.files.push(file);
      for await (const rec of readRecords(file, undefined, opts)) {
        stats.records++;
        policy.countRecord();
        let samples: StepSample[];
        let dropped = 0;
        try {
          if (rec.error) throw rec.error;
          const out = adapter(rec.value, rec, adapterOpts);
          samples = out.samples.map(orderFields);
          dropped = out.droppedSteps ?? 0;
          for (const s of samples) {
            const found = validateStepSample(s);
            if (found.length > 0) throw toRecordError(rec, s, found[0].field, found.map((f) => (f.field === found[0].field ? f.reason : `${f.field}: ${f.reason}`)).join('; '));
          }
        } catch (e) {
          if (!(e instanceof RecordError)) throw e;
          await policy.reject(e, rec.value);
          stats.rejected = policy.rejected;
          stats.rejectsPath = policy.rejectsPath;
          continue;
        }
        if (policy.failing) continue; // only looking for more problems to report
        stats.droppedSteps += dropped;
        for (const s of samples) {
          stats.samples++;
          yield s;
        }
      }
    }
    policy.finish();
    stats.done = true;
  } finally {
    await policy.close(stats.done);
  }
}

function toRecordError(loc: RecordLocation, sample: StepSample, field: string, reason: string): RecordError {
  // An adapter that makes several samples per record (BoN, GSM8K examples) names which one.
  const where = sample.id ? `sample ${sample.id}: ` : '';
  return new RecordError(loc.file, loc.line, field, `${where}${reason}`, loc.unit);
}

const DATA_EXTENSIONS = ['.jsonl', '.ndjson', '.json', '.arrow', '.feather', '.arrows', '.ipc', '.parquet', '.pq'];

/** A file is itself; a folder is its data files in name order (not recursive). */
export async function dataFiles(path: string): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [path];
  // Our own side files (download manifest, rejects) live next to data but are not data.
  const names = (await readdir(path))
    .filter((n) => DATA_EXTENSIONS.some((e) => n.toLowerCase().endsWith(e)) && !n.endsWith('.rejects.jsonl') && n !== MANIFEST_NAME)
    .sort();
  if (names.length === 0) throw new Error(`${path}: no data files (${DATA_EXTENSIONS.join(', ')})`);
  return names.map((n) => join(path, n));
}

/** The format of a file from its first record, or undefined when it fits none. */
export async function detectFormat(path: string): Promise<{ format: DataFormat | undefined; kind: FileKind }> {
  const [file] = await dataFiles(path);
  const kind = await detectFileKind(file);
  // The first record that parses decides; when none of the first few does, the first one's
  // error (file:line and why) says more than "unknown format" would.
  let firstError: RecordError | undefined;
  let seen = 0;
  for await (const rec of readRecords(file, kind)) {
    if (!rec.error) return { format: guessFormat(rec.value), kind };
    firstError ??= rec.error;
    if (++seen >= DETECTION_RECORDS) break;
  }
  if (firstError) throw firstError;
  return { format: undefined, kind };
}

/** Records looked at for one that parses when guessing a file's format. */
const DETECTION_RECORDS = 100;
