import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/durable-fs.js';

/**
 * A TensorBoard event file holding a run's hyperparameters (the HParams dashboard) and its final
 * metrics (scalars), written by prmkit itself: tfjs-node's summary writer only writes scalars
 * during training, and only on the native backend. The file goes beside the training event files
 * (RUN/tensorboard), so TensorBoard shows one run with its curves, its hparams and its results.
 *
 * Format: TFRecord framing (length, masked CRC-32C of the length, data, masked CRC-32C of the
 * data) around tensorflow.Event protos, encoded here by hand (few fields, no protobuf library).
 */

// --- CRC-32C (Castagnoli), as TFRecord frames use it ---
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function maskedCrc(data: Uint8Array): number {
  const crc = crc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc(data), 0);
  return Buffer.concat([header, data, footer]);
}

// --- protobuf wire format: the few field kinds these messages use ---
function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}
const key = (field: number, wire: number): Buffer => varint((field << 3) | wire);
const lengthDelimited = (field: number, data: Uint8Array): Buffer => Buffer.concat([key(field, 2), varint(data.length), data]);
const stringField = (field: number, text: string): Buffer => lengthDelimited(field, Buffer.from(text, 'utf8'));
const varintField = (field: number, value: number | bigint): Buffer => Buffer.concat([key(field, 0), varint(value)]);
function doubleField(field: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return Buffer.concat([key(field, 1), b]);
}
function floatField(field: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  return Buffer.concat([key(field, 5), b]);
}

/** google.protobuf.Value: number_value = 2, string_value = 3, bool_value = 4. */
function protoValue(value: string | number | boolean): Buffer {
  if (typeof value === 'number') return doubleField(2, value);
  if (typeof value === 'boolean') return varintField(4, value ? 1 : 0);
  return stringField(3, value);
}

/** tensorflow.Event: wall_time = 1, step = 2, file_version = 3, summary = 5. */
function event(wallTime: number, step: number, body: { fileVersion?: string; summaryValues?: Buffer[] }): Buffer {
  const parts = [doubleField(1, wallTime), varintField(2, step)];
  if (body.fileVersion) parts.push(stringField(3, body.fileVersion));
  // Summary: value = 1 (repeated).
  if (body.summaryValues) parts.push(lengthDelimited(5, Buffer.concat(body.summaryValues.map((v) => lengthDelimited(1, v)))));
  return Buffer.concat(parts);
}

/** Summary.Value with plugin metadata and no tensor, as the hparams plugin writes its records. */
function pluginValue(tag: string, pluginName: string, content: Buffer): Buffer {
  // SummaryMetadata: plugin_data = 1 -> PluginData: plugin_name = 1, content = 2.
  const metadata = lengthDelimited(1, Buffer.concat([stringField(1, pluginName), lengthDelimited(2, content)]));
  return Buffer.concat([stringField(1, tag), lengthDelimited(9, metadata)]);
}

/** Summary.Value: tag = 1, simple_value = 2 (a float scalar). */
const scalarValue = (tag: string, value: number): Buffer => Buffer.concat([stringField(1, tag), floatField(2, value)]);

export interface TensorBoardSummary {
  hparams: Record<string, string | number | boolean>;
  /** Final metrics; nulls and non-finite values are left out. */
  metrics: Record<string, number | null | undefined>;
  step: number;
  startTime: number;
  endTime: number;
}

/** The bytes of the event file (exported for tests). */
export function hparamsEventFile(s: TensorBoardSummary): Buffer {
  const start = s.startTime / 1000;
  const end = s.endTime / 1000;
  // HParamsPluginData: version = 1, session_start_info = 3 (hparams = 1 as map entries, start_time_secs = 5),
  // session_end_info = 4 (status = 1: STATUS_SUCCESS = 1, end_time_secs = 2).
  const entries = Object.entries(s.hparams).map(([k, v]) => lengthDelimited(1, Buffer.concat([stringField(1, k), lengthDelimited(2, protoValue(v))])));
  const startInfo = Buffer.concat([varintField(1, 0), lengthDelimited(3, Buffer.concat([...entries, doubleField(5, start)]))]);
  const endInfo = Buffer.concat([varintField(1, 0), lengthDelimited(4, Buffer.concat([varintField(1, 1), doubleField(2, end)]))]);
  const scalars = Object.entries(s.metrics).flatMap(([k, v]) => (typeof v === 'number' && Number.isFinite(v) ? [scalarValue(k, v)] : []));
  const events = [
    event(start, 0, { fileVersion: 'brain.Event:2' }),
    event(start, 0, { summaryValues: [pluginValue('_hparams_/session_start_info', 'hparams', startInfo)] }),
    ...(scalars.length > 0 ? [event(end, s.step, { summaryValues: scalars })] : []),
    event(end, s.step, { summaryValues: [pluginValue('_hparams_/session_end_info', 'hparams', endInfo)] }),
  ];
  return Buffer.concat(events.map(tfRecord));
}

/** HParams take scalars: the flattened recipe's numbers and booleans as they are, the rest as text. */
export function hparamsOf(flat: Record<string, string>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, text] of Object.entries(flat)) {
    if (text === 'true' || text === 'false') out[k] = text === 'true';
    else if (text.trim() !== '' && Number.isFinite(Number(text)) && /^-?[\d.eE+-]+$/.test(text)) out[k] = Number(text);
    else out[k] = text;
  }
  return out;
}

/** Writes RUN/tensorboard/events.out.tfevents.<time>.prmkit-summary (replacing an earlier one of the run). */
export async function writeTensorBoardSummary(logDir: string, s: TensorBoardSummary): Promise<string> {
  await mkdir(logDir, { recursive: true });
  // A fixed name: a run reported again (--resume) replaces its summary instead of adding a second session.
  const path = join(logDir, 'events.out.tfevents.0000000000.prmkit-summary');
  await writeFileAtomic(path, hparamsEventFile(s));
  return path;
}
