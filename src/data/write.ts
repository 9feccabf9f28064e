import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { extname } from 'node:path';
import { writeAtomically } from '../util/durable-fs.js';
import { writeArrowStepSamples } from './arrow.js';
import { toGsm8kRecord } from './gsm8k.js';
import { writeJsonlAtomically } from './jsonl.js';
import { toMathShepherdRecord } from './math-shepherd.js';
import { orderFields } from './prmkit.js';
import { toProcessBenchRecord } from './processbench.js';
import { toTrlRecord } from './trl.js';
import type { StepSample } from './types.js';

/** Container prmkit writes StepSamples in. */
export type WriteFormat = 'jsonl' | 'arrow';

/**
 * Writes StepSamples in the 'prmkit' layout: JSONL (one StepSample per line) or Arrow IPC
 * (STEP_SAMPLE_SCHEMA, batch by batch). Streams; returns the number written. Every writer here
 * is atomic: the file appears only once complete, and a failed write leaves an earlier one as it was.
 */
export async function writeStepSamples(path: string, samples: AsyncIterable<StepSample> | Iterable<StepSample>, format: WriteFormat): Promise<number> {
  if (format === 'arrow') return writeArrowStepSamples(path, samples);
  if (format === 'jsonl') return writeJsonlRecords(path, samples, orderFields);
  throw new Error(`unknown output format "${String(format)}" (jsonl or arrow)`);
}

/** The write format a path asks for by its extension, if it says. */
export function writeFormatOf(path: string): WriteFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.arrow' || ext === '.feather' || ext === '.arrows' || ext === '.ipc') return 'arrow';
  return undefined;
}

/** Streams values mapped by `toRecord` to JSONL; returns the count. Used by the native writers too. */
export async function writeJsonlRecords<T>(path: string, items: AsyncIterable<T> | Iterable<T>, toRecord: (item: T) => unknown): Promise<number> {
  return writeJsonlAtomically(path, async (out) => {
    let n = 0;
    for await (const item of items) {
      await out.write(toRecord(item));
      n++;
    }
    return n;
  });
}

/** Formats with a native layout prmkit can write back (see each adapter's to*Record). */
export type NativeFormat = 'processbench' | 'trl' | 'math-shepherd' | 'gsm8k';

const NATIVE_WRITERS: Record<NativeFormat, (s: StepSample) => Record<string, unknown>> = {
  processbench: toProcessBenchRecord,
  trl: (s) => toTrlRecord(s),
  'math-shepherd': toMathShepherdRecord,
  gsm8k: toGsm8kRecord,
};

/**
 * Writes StepSamples back in a source format's own layout: JSONL, or a JSON array when the
 * path ends in ".json" (how ProcessBench ships). Returns the number written.
 */
export async function writeNativeRecords(path: string, samples: AsyncIterable<StepSample> | Iterable<StepSample>, format: NativeFormat): Promise<number> {
  const toRecord = NATIVE_WRITERS[format];
  if (!toRecord) throw new Error(`no native writer for "${String(format)}" (have: ${Object.keys(NATIVE_WRITERS).join(', ')})`);
  if (extname(path).toLowerCase() === '.json') return writeJsonArray(path, samples, toRecord);
  return writeJsonlRecords(path, samples, toRecord);
}

/** Streams a JSON array, one element per line (so line numbers point at records on re-reading). */
export async function writeJsonArray<T>(path: string, items: AsyncIterable<T> | Iterable<T>, toRecord: (item: T) => unknown): Promise<number> {
  return writeAtomically(path, async (tmp) => {
    const stream = createWriteStream(tmp, { encoding: 'utf8' });
    await once(stream, 'open');
    const put = async (text: string) => {
      if (!stream.write(text)) await once(stream, 'drain');
    };
    let n = 0;
    try {
      await put('[');
      for await (const item of items) {
        await put(`${n === 0 ? '\n' : ',\n'}${JSON.stringify(toRecord(item))}`);
        n++;
      }
      await put(n === 0 ? ']\n' : '\n]\n');
    } catch (err) {
      stream.destroy();
      await once(stream, 'close');
      throw err;
    }
    await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    return n;
  });
}
