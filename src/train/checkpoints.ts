import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_READ_CHUNK_BYTES, readDeviceTensor } from '../model/build.js';
import { SafetensorsReader, writeSafetensorsStreaming } from '../model/safetensors.js';
import { fsyncPath, fsyncTree, replaceDirectory, writeFileSynced } from '../util/durable-fs.js';
import type { DataCursor } from './batches.js';
import type { AdamW, CheckpointableOptimizer } from './optimizer.js';
import { optimizerStepOf, ShardedAdamW } from './zero.js';

/**
 * Training checkpoints: RUN/checkpoints/checkpoint-<step>/ holds the HF-layout model files
 * (written by the model module) plus optimizer.safetensors and trainer_state.json. Each one is
 * written into a temporary directory, every file and the directory fsynced, then renamed into
 * place, so a checkpoint-<step> directory that exists is complete; leftovers of a killed write
 * are temporary directories, removed on the next start.
 */
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Size and sha256 of every other file of the checkpoint, written last; resume verifies them. */
export const CHECKSUMS_FILE = 'checksums.json';
const CHECKPOINT_RE = /^checkpoint-(\d+)$/;
const TEMP_PREFIX = '.tmp-';

export interface BestMetric {
  metric: string;
  value: number;
  step: number;
}

export interface TrainerState {
  format: 1;
  /** Optimizer steps completed. */
  global_step: number;
  total_steps: number;
  /** The next micro-batch to run. */
  cursor: DataCursor;
  /**
   * The data-order RNG: epoch e is shuffled by Rng(seed).fork('epoch:e'), so (seed, cursor)
   * restores the stream exactly; the state words of that RNG at the epoch start are recorded too.
   */
  rng: { seed: string; epoch: number; state: number[] };
  /** Fingerprint of the training items and batch settings; resume refuses a different plan. */
  plan_fingerprint: string;
  best: BestMetric | null;
  evals_without_improvement: number;
  optimizer: { file: string; step: number };
  /** Wall time spent training before this checkpoint (seconds). */
  elapsed_s: number;
  /** Tokens seen so far (for throughput across resumes). */
  tokens_seen: number;
}

export interface CheckpointInfo {
  step: number;
  dir: string;
}

/** Removes temporary directories left by a write that was killed. */
export async function removeStaleTemps(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of entries) {
    // Ours (.tmp-*) and the model writer's (.<name>.tmp-*, .<name>.old-*): hidden names only.
    if (name.startsWith('.') && /(^\.tmp-|\.tmp-|\.old-)/.test(name)) {
      await rm(join(root, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

export interface CheckpointWriteOptions {
  /** Largest host chunk of one tensor while writing (tests set it small). */
  chunkBytes?: number;
}

/**
 * Writes checkpoint-<step> atomically. `writeModel(dir)` must create `dir` with the model files
 * (the model module's savePrmCheckpoint does, atomically itself); the optimizer state is streamed
 * from the device moment by moment (in row chunks), the trainer state and the checksums of every
 * file are added, everything fsynced, and the directory renamed into place.
 */
export async function saveCheckpoint(
  root: string,
  state: TrainerState,
  optimizer: CheckpointableOptimizer,
  writeModel: (dir: string) => Promise<void>,
  opts: CheckpointWriteOptions = {},
): Promise<CheckpointInfo> {
  await mkdir(root, { recursive: true });
  const name = `checkpoint-${state.global_step}`;
  const finalDir = join(root, name);
  const tmp = join(root, `${TEMP_PREFIX}${name}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    await writeCheckpointFiles(tmp, state, optimizer, writeModel, opts);
  } catch (err) {
    // A full disk says only "ENOSPC: no space left on device, write": say which checkpoint, and
    // give the space of the half-written one back. Earlier checkpoints are untouched.
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    const e = err as NodeJS.ErrnoException;
    const failed = new Error(`cannot save checkpoint ${finalDir} (written in ${tmp}): ${e.message}; the earlier checkpoints in ${root} are kept`, { cause: err });
    (failed as NodeJS.ErrnoException).code = e.code;
    throw failed;
  }
  // The same step saved twice (best and periodic at one step) replaces the older copy.
  await rm(finalDir, { recursive: true, force: true });
  await rename(tmp, finalDir);
  await fsyncPath(root);
  return { step: state.global_step, dir: finalDir };
}

async function writeCheckpointFiles(
  tmp: string,
  state: TrainerState,
  optimizer: CheckpointableOptimizer,
  writeModel: (dir: string) => Promise<void>,
  opts: CheckpointWriteOptions,
): Promise<void> {
  await writeModel(tmp);
  const chunkBytes = opts.chunkBytes ?? DEFAULT_READ_CHUNK_BYTES;
  await writeSafetensorsStreaming(
    join(tmp, OPTIMIZER_FILE),
    optimizer.stateSpecs(),
    (_spec, i) => optimizer.stateChunks(i, chunkBytes),
    { fsync: true, metadata: { step: String(optimizer.step) } },
  );
  await writeFileSynced(join(tmp, TRAINER_STATE_FILE), JSON.stringify({ ...state, optimizer: { file: OPTIMIZER_FILE, step: optimizer.step } }, null, 2) + '\n');
  await writeFileSynced(join(tmp, CHECKSUMS_FILE), JSON.stringify({ format: 1, files: await checksumsOf(tmp) }, null, 2) + '\n');
  await fsyncTree(tmp);
}

/** checksums.json as the checkpoint writer makes it: plain file names of this directory -> size and sha256. */
const ChecksumsSchema = z.object({
  format: z.literal(1).optional(),
  files: z.record(
    z.string().regex(/^[^/\\]+$/).refine((name) => name !== '.' && name !== '..', 'not a file name of the checkpoint'),
    z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  ),
});

interface FileChecksum {
  bytes: number;
  sha256: string;
}

async function sha256File(path: string): Promise<FileChecksum> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Size and sha256 of every regular file directly in dir (the checksums file itself excluded). */
async function checksumsOf(dir: string): Promise<Record<string, FileChecksum>> {
  const out: Record<string, FileChecksum> = {};
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && e.name !== CHECKSUMS_FILE);
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) out[e.name] = await sha256File(join(dir, e.name));
  return out;
}

/**
 * Why a checkpoint cannot be resumed from, or null when every file its checksums list is there
 * with its recorded size and sha256 (checkpoints written before checksums existed pass on the
 * trainer state and optimizer file alone).
 */
export async function checkpointProblem(dir: string): Promise<string | null> {
  let listed: Record<string, FileChecksum>;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, CHECKSUMS_FILE), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return `${join(dir, CHECKSUMS_FILE)} is unreadable (${(e as Error).message})`;
    return null;
  }
  // Damaged metadata of the wrong shape ({}, [], {"files": null}, a name that leaves the
  // directory) is as unusable as invalid JSON: the checkpoint is skipped like one.
  const parsed = ChecksumsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `${join(dir, CHECKSUMS_FILE)} has the wrong shape (${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message})`;
  }
  listed = parsed.data.files;
  for (const [file, want] of Object.entries(listed)) {
    let got: FileChecksum;
    try {
      const size = (await stat(join(dir, file))).size;
      if (size !== want.bytes) return `${file} has ${size} bytes, ${want.bytes} were written`;
      got = await sha256File(join(dir, file));
    } catch (e) {
      return `${file} cannot be read (${(e as Error).message})`;
    }
    if (got.sha256 !== want.sha256) return `${file} does not match its sha256 (content changed after it was written)`;
  }
  return null;
}

/** The newest checkpoint whose files verify; each newer one that does not is skipped with a warning naming it. */
export async function latestValidCheckpoint(root: string, warn: (line: string) => void = () => {}): Promise<CheckpointInfo | null> {
  const all = await listCheckpoints(root);
  for (let i = all.length - 1; i >= 0; i--) {
    const problem = await checkpointProblem(all[i].dir);
    if (problem === null) return all[i];
    warn(`train: warning: skipping ${all[i].dir} (step ${all[i].step}): ${problem}`);
  }
  return null;
}

/** Complete checkpoints (a trainer_state.json that parses), oldest first. */
export async function listCheckpoints(root: string): Promise<CheckpointInfo[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return [];
  }
  const out: CheckpointInfo[] = [];
  for (const name of entries) {
    const m = CHECKPOINT_RE.exec(name);
    if (!m) continue;
    const dir = join(root, name);
    try {
      JSON.parse(await readFile(join(dir, TRAINER_STATE_FILE), 'utf8'));
      await stat(join(dir, OPTIMIZER_FILE));
    } catch {
      continue; // not complete (copied by hand, or damaged): never resumed from
    }
    out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** Whether `root` holds any checkpoint-<step> directory at all (complete, damaged or not). */
export async function hasCheckpointDirs(root: string): Promise<boolean> {
  try {
    return (await readdir(root)).some((name) => CHECKPOINT_RE.test(name));
  } catch {
    return false;
  }
}

export async function latestCheckpoint(root: string): Promise<CheckpointInfo | null> {
  const all = await listCheckpoints(root);
  return all.length === 0 ? null : all[all.length - 1];
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = join(dir, TRAINER_STATE_FILE);
  const state = JSON.parse(await readFile(file, 'utf8')) as TrainerState;
  if (state.format !== 1) throw new Error(`${file}: unsupported trainer_state format ${String(state.format)}`);
  return state;
}

/**
 * Loads the optimizer moments of a checkpoint into `optimizer`'s variables, one tensor at a time
 * (a sharded optimizer reads its own slices of them only: the file is the same for every worker count).
 */
export async function readOptimizerStateInto(dir: string, optimizer: AdamW | ShardedAdamW, opts: { chunkBytes?: number } = {}): Promise<void> {
  const file = join(dir, OPTIMIZER_FILE);
  if (optimizer instanceof ShardedAdamW) return optimizer.loadState(file);
  const reader = await SafetensorsReader.open(file);
  try {
    for (const { name, tensor } of optimizer.stateTensors()) {
      const entry = reader.entry(name);
      if (!entry) throw new Error(`${file}: optimizer state lacks ${name}`);
      if (entry.shape.join('x') !== tensor.shape.join('x')) {
        throw new Error(`${file}: optimizer state ${name} has shape [${entry.shape}], parameter has [${tensor.shape}]`);
      }
      const value = await readDeviceTensor(reader, name, opts.chunkBytes);
      tensor.assign(value);
      value.dispose();
    }
    optimizer.setStep(optimizerStepOf(reader, file));
  } finally {
    await reader.close();
  }
}

/** Deletes checkpoints beyond the newest `keepLast`, never the one of `keepStep` (the best). */
export async function pruneCheckpoints(root: string, keepLast: number, keepStep?: number): Promise<number[]> {
  const all = await listCheckpoints(root);
  const keep = new Set(all.slice(-keepLast).map((c) => c.step));
  if (keepStep !== undefined) keep.add(keepStep);
  const removed: number[] = [];
  for (const c of all) {
    if (!keep.has(c.step)) {
      await rm(c.dir, { recursive: true, force: true });
      removed.push(c.step);
    }
  }
  return removed;
}

/**
 * Publishes the model files of a checkpoint (everything but the optimizer and trainer state) as
 * `dest` (e.g. checkpoints/final), atomically: copy into a temporary directory, fsync, swap.
 */
export async function publishModel(checkpointDir: string, dest: string, note: Record<string, unknown>): Promise<void> {
  const parent = join(dest, '..');
  const base = dest.split(/[\\/]/).pop() as string;
  const tmp = join(parent, `${TEMP_PREFIX}${base}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const entry of await readdir(checkpointDir, { withFileTypes: true })) {
    // The checksums describe the checkpoint's files (optimizer state included), not the published model's.
    if (!entry.isFile() || entry.name === OPTIMIZER_FILE || entry.name === TRAINER_STATE_FILE || entry.name === CHECKSUMS_FILE) continue;
    await copyFile(join(checkpointDir, entry.name), join(tmp, entry.name));
  }
  await writeFile(join(tmp, 'training_source.json'), JSON.stringify(note, null, 2) + '\n');
  await fsyncTree(tmp);
  await replaceDirectory(tmp, dest, join(parent, `${TEMP_PREFIX}${base}-old-${process.pid}`), parent);
}
