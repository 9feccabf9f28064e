import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  Field,
  Float64,
  Int32,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
  type RecordBatchWriter,
} from 'apache-arrow';
import type { StepSample } from './types.js';

/**
 * The Arrow schema of a StepSample. `meta` is a JSON string: its shape differs per source
 * (ProcessBench generator, PRM800K ratings, ...), and a per-file struct type would not hold
 * them all. Reading goes through the 'prmkit' adapter, which parses it back.
 */
export const STEP_SAMPLE_SCHEMA = new Schema([
  new Field('id', new Utf8(), false),
  new Field('problem', new Utf8(), false),
  new Field('steps', new List(new Field('item', new Utf8(), false)), false),
  new Field('answer', new Utf8(), true),
  new Field('labels', new List(new Field('item', new Float64(), false)), true),
  new Field('firstError', new Int32(), true),
  new Field('source', new Utf8(), false),
  new Field('meta', new Utf8(), false),
]);

/** Rows per record batch: large enough to amortise per-batch cost, small enough to stream. */
export const ARROW_BATCH_ROWS = 8192;

/** One record batch of StepSamples under STEP_SAMPLE_SCHEMA. */
export function stepSampleBatch(samples: readonly StepSample[]): RecordBatch {
  const fields = STEP_SAMPLE_SCHEMA.fields;
  const columns = [
    vectorFromArray(samples.map((s) => s.id), fields[0].type),
    vectorFromArray(samples.map((s) => s.problem), fields[1].type),
    vectorFromArray(samples.map((s) => s.steps), fields[2].type),
    vectorFromArray(samples.map((s) => s.answer ?? null), fields[3].type),
    vectorFromArray(samples.map((s) => s.labels ?? null), fields[4].type),
    vectorFromArray(samples.map((s) => s.firstError ?? null), fields[5].type),
    vectorFromArray(samples.map((s) => s.source), fields[6].type),
    vectorFromArray(samples.map((s) => JSON.stringify(s.meta)), fields[7].type),
  ];
  const data = makeData({
    type: new Struct(fields),
    length: samples.length,
    nullCount: 0,
    children: columns.map((c) => c.data[0]),
  });
  return new RecordBatch(STEP_SAMPLE_SCHEMA, data);
}

/**
 * Streams StepSamples to an Arrow IPC file, batch by batch. ".arrows"/".ipc" get the IPC
 * stream format; anything else (".arrow", ".feather") the IPC file format (Feather v2), which
 * readers can open with random access. Returns the number of samples written.
 */
export async function writeArrowStepSamples(path: string, samples: AsyncIterable<StepSample> | Iterable<StepSample>, opts: { batchRows?: number } = {}): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  const ext = extname(path).toLowerCase();
  const writer: RecordBatchWriter = ext === '.arrows' || ext === '.ipc' ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
  const done = pipeline(writer.toNodeStream(), createWriteStream(path));
  const batchRows = opts.batchRows ?? ARROW_BATCH_ROWS;
  let pending: StepSample[] = [];
  let count = 0;
  let schemaWritten = false;
  try {
    for await (const s of samples) {
      pending.push(s);
      count++;
      if (pending.length >= batchRows) {
        writer.write(stepSampleBatch(pending));
        schemaWritten = true;
        pending = [];
        // Let the file stream drain what the writer queued before building the next batch.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    if (pending.length > 0 || !schemaWritten) {
      // An empty input still yields a valid file with the schema (a zero-row batch).
      writer.write(stepSampleBatch(pending));
    }
  } catch (e) {
    writer.abort(e as Error);
    await done.catch(() => undefined);
    throw e;
  }
  writer.finish();
  await done;
  return count;
}
