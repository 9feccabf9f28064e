import { createWriteStream } from 'node:fs';
import { extname } from 'node:path';
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
  type Data,
  type RecordBatchWriter,
} from 'apache-arrow';
import { writeAtomically } from '../util/durable-fs.js';
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
  const n = samples.length;
  const columns = [
    utf8Data(samples.map((s) => s.id)),
    utf8Data(samples.map((s) => s.problem)),
    listData(fields[2].type as List<Utf8>, samples.map((s) => s.steps), (flat) => utf8Data(flat)),
    utf8Data(samples.map((s) => s.answer ?? null)),
    listData(fields[4].type as List<Float64>, samples.map((s) => s.labels ?? null), (flat) => makeData({ type: new Float64(), length: flat.length, nullCount: 0, data: Float64Array.from(flat) })),
    int32Data(samples.map((s) => s.firstError ?? null)),
    utf8Data(samples.map((s) => s.source)),
    utf8Data(samples.map((s) => JSON.stringify(s.meta))),
  ];
  const data = makeData({ type: new Struct(fields), length: n, nullCount: 0, children: columns as Data[] });
  return new RecordBatch(STEP_SAMPLE_SCHEMA, data);
}

// The column builders below fill Arrow buffers directly. apache-arrow's generic builders
// (vectorFromArray) encode value by value through several layers and made the List<Utf8>
// steps column alone take ~25 s per million samples; writing offsets and bytes in one pass
// keeps the JSONL -> Arrow path well inside the throughput target.

/** Validity bitmap (LSB first, 1 = present), or undefined when nothing is null. */
function validity(values: readonly unknown[]): { nullBitmap?: Uint8Array; nullCount: number } {
  let nullCount = 0;
  for (const v of values) if (v === null) nullCount++;
  if (nullCount === 0) return { nullCount };
  const nullBitmap = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) nullBitmap[i >> 3] |= 1 << (i & 7);
  });
  return { nullBitmap, nullCount };
}

function utf8Data(values: readonly (string | null)[]): Data<Utf8> {
  const n = values.length;
  const valueOffsets = new Int32Array(n + 1);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    valueOffsets[i] = bytes;
    const v = values[i];
    if (v !== null) bytes += Buffer.byteLength(v, 'utf8');
  }
  if (bytes > 0x7fffffff) throw new Error('an Arrow batch holds more than 2 GiB of text; write smaller batches');
  valueOffsets[n] = bytes;
  const data = Buffer.allocUnsafe(bytes);
  let pos = 0;
  for (const v of values) if (v !== null && v !== '') pos += data.write(v, pos, 'utf8');
  return makeData({ type: new Utf8(), length: n, ...validity(values), valueOffsets, data: new Uint8Array(data.buffer, data.byteOffset, bytes) });
}

function listData<T extends Utf8 | Float64, V>(type: List<T>, lists: readonly (readonly V[] | null)[], child: (flat: V[]) => Data<T>): Data<List<T>> {
  const n = lists.length;
  const valueOffsets = new Int32Array(n + 1);
  const flat: V[] = [];
  for (let i = 0; i < n; i++) {
    valueOffsets[i] = flat.length;
    const list = lists[i];
    if (list !== null) for (const v of list) flat.push(v);
  }
  valueOffsets[n] = flat.length;
  return makeData({ type, length: n, ...validity(lists), valueOffsets, child: child(flat) });
}

function int32Data(values: readonly (number | null)[]): Data<Int32> {
  return makeData({ type: new Int32(), length: values.length, ...validity(values), data: Int32Array.from(values, (v) => v ?? 0) });
}

/**
 * Streams StepSamples to an Arrow IPC file, batch by batch. ".arrows"/".ipc" get the IPC
 * stream format; anything else (".arrow", ".feather") the IPC file format (Feather v2), which
 * readers can open with random access. Returns the number of samples written. The file is
 * written atomically: when the samples fail midway, no partial file is left and an earlier one
 * stays as it was.
 */
export async function writeArrowStepSamples(path: string, samples: AsyncIterable<StepSample> | Iterable<StepSample>, opts: { batchRows?: number } = {}): Promise<number> {
  const ext = extname(path).toLowerCase();
  return writeAtomically(path, async (tmp) => {
    const writer: RecordBatchWriter = ext === '.arrows' || ext === '.ipc' ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    const done = pipeline(writer.toNodeStream(), createWriteStream(tmp));
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
      // writer.abort() rejects an internal promise nobody can catch (an unhandled rejection
      // that kills the process); finishing the stream cleanly and dropping the temporary file
      // (writeAtomically does) loses nothing.
      writer.finish();
      await done.catch(() => undefined);
      throw e;
    }
    writer.finish();
    await done;
    return count;
  });
}
