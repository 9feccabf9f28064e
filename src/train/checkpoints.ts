import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncPath, fsyncTree, replaceDirectory, writeFileSynced } from '../util/durable-fs.js';
import { readSafetensors, writeSafetensors } from '../model/safetensors.js';
import type { DataCursor } from './batches.js';
import type { OptimizerState } from './optimizer.js';

/**
 * Training checkpoints: RUN/checkpoints/checkpoint-<step>/ holds the HF-layout model files
 * (written by the model module) plus optimizer.safetensors and trainer_state.json. Each one is
 * written into a temporary directory, every file and the directory fsynced, then renamed into
 * place, so a checkpoint-<step> directory that exists is complete; leftovers of a killed write
 * are temporary directories, removed on the next start.
 */
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
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

/**
 * Writes checkpoint-<step> atomically. `writeModel(dir)` must create `dir` with the model files
 * (the model module's savePrmCheckpoint does, atomically itself); the optimizer state and trainer
 * state are added, everything fsynced, and the directory renamed into place.
 */
export async function saveCheckpoint(
  root: string,
  state: TrainerState,
  optimizer: OptimizerState,
  writeModel: (dir: string) => Promise<void>,
): Promise<CheckpointInfo> {
  await mkdir(root, { recursive: true });
  const name = `checkpoint-${state.global_step}`;
  const finalDir = join(root, name);
  const tmp = join(root, `${TEMP_PREFIX}${name}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await writeModel(tmp);
  await writeSafetensors(join(tmp, OPTIMIZER_FILE), optimizer.tensors, { fsync: true, metadata: { step: String(optimizer.step) } });
  await writeFileSynced(join(tmp, TRAINER_STATE_FILE), JSON.stringify({ ...state, optimizer: { file: OPTIMIZER_FILE, step: optimizer.step } }, null, 2) + '\n');
  await fsyncTree(tmp);
  // The same step saved twice (best and periodic at one step) replaces the older copy.
  await rm(finalDir, { recursive: true, force: true });
  await rename(tmp, finalDir);
  await fsyncPath(root);
  return { step: state.global_step, dir: finalDir };
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

export async function readOptimizerState(dir: string, step: number): Promise<OptimizerState> {
  const tensors = await readSafetensors(join(dir, OPTIMIZER_FILE));
  return { step, tensors };
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
    if (!entry.isFile() || entry.name === OPTIMIZER_FILE || entry.name === TRAINER_STATE_FILE) continue;
    await copyFile(join(checkpointDir, entry.name), join(tmp, entry.name));
  }
  await writeFile(join(tmp, 'training_source.json'), JSON.stringify(note, null, 2) + '\n');
  await fsyncTree(tmp);
  await replaceDirectory(tmp, dest, join(parent, `${TEMP_PREFIX}${base}-old-${process.pid}`), parent);
}
