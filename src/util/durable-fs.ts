/**
 * Crash-safe file writes shared by every command that writes an output, the model checkpoint
 * writer and the trainer's checkpoints: write into a temporary sibling, fsync the files and
 * directories, then rename into place, so a failure or a kill at any moment leaves either the
 * old or the new copy whole, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { processAlive } from './process-alive.js';

/** fsyncs a file or a directory (a directory's fsync makes the names in it durable). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` and fsyncs it before returning. */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs every regular file directly in `dir`, then the directory itself. */
export async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await fsyncPath(join(dir, entry.name));
  }
  await fsyncPath(dir);
}

/**
 * Moves the finished directory `tmp` to `target`, replacing what is there. rename(2) cannot
 * replace a non-empty directory, so an existing target first steps aside to `aside` and is
 * removed only once the new one is in place (and put back if the rename fails); `parent` (the
 * directory holding both) is fsynced so the new name survives a crash.
 */
export async function replaceDirectory(tmp: string, target: string, aside: string, parent: string): Promise<void> {
  let hadOld = false;
  try {
    await rename(target, aside);
    hadOld = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await rename(tmp, target);
  } catch (err) {
    if (hadOld) await rename(aside, target);
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await fsyncPath(parent);
  if (hadOld) await rm(aside, { recursive: true, force: true });
}

/** The temporary name of an AtomicOutput: ".<target>.<pid>-<8 hex>.tmp". */
const TEMP_NAME = /^\..+\.(\d+)-[0-9a-f]{8}\.tmp$/;
const swept = new Set<string>();

/**
 * Removes the temporary files a killed writer (SIGKILL runs no exit hook) left in `dir`: those
 * whose writer's pid is no longer running. Once per directory and process; the next write into
 * a directory cleans what an earlier killed run left there.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  if (swept.has(dir)) return [];
  swept.add(dir);
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Temporary files not yet committed or discarded; removed if the process exits first. */
const pendingTemps = new Set<string>();
let exitHookInstalled = false;

function trackTemp(path: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // process.exit() (the CLI's error path) skips pending finally blocks; leave no temp behind.
    process.once('exit', () => {
      for (const p of pendingTemps) {
        try {
          unlinkSync(p);
        } catch {
          // already gone
        }
      }
    });
  }
  pendingTemps.add(path);
}

/**
 * One output file written atomically: writers fill `tempPath` (a hidden sibling of the target,
 * so the final rename never crosses a file system), then commit() fsyncs it, renames it over
 * the target and fsyncs the folder; discard() removes it and leaves the target as it was.
 */
export class AtomicOutput {
  private settled = false;

  private constructor(
    readonly target: string,
    readonly tempPath: string,
  ) {}

  /** Creates the target's folder if needed and reserves a temporary name next to the target. */
  static async create(target: string): Promise<AtomicOutput> {
    const dir = dirname(resolve(target));
    await mkdir(dir, { recursive: true });
    await removeStaleTemps(dir);
    const tempPath = join(dir, `.${basename(target)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    trackTemp(tempPath);
    return new AtomicOutput(target, tempPath);
  }

  async commit(): Promise<void> {
    if (this.settled) throw new Error(`${this.target}: output already committed or discarded`);
    this.settled = true;
    try {
      await fsyncPath(this.tempPath);
      await rename(this.tempPath, this.target);
    } catch (err) {
      await rm(this.tempPath, { force: true });
      pendingTemps.delete(this.tempPath);
      throw err;
    }
    pendingTemps.delete(this.tempPath);
    await fsyncPath(dirname(resolve(this.target)));
  }

  /** Removes the temporary file (safe to call after commit, or twice). */
  async discard(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await rm(this.tempPath, { force: true });
    pendingTemps.delete(this.tempPath);
  }
}

/**
 * Runs `write` against a temporary path and moves the result over `target` only when it
 * resolves; when it throws, the temporary file is removed and `target` is left untouched.
 */
export async function writeAtomically<T>(target: string, write: (tempPath: string) => Promise<T>): Promise<T> {
  const out = await AtomicOutput.create(target);
  let result: T;
  try {
    result = await write(out.tempPath);
  } catch (err) {
    await out.discard();
    throw err;
  }
  await out.commit();
  return result;
}

/** Writes a whole file atomically (metrics, summaries, stats). */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await writeAtomically(target, (tmp) => writeFileSynced(tmp, data));
}

/**
 * Several outputs of one command, committed together at the end: a command that fails midway
 * discards every temporary file, so none of its earlier outputs is replaced by a partial set.
 */
export class AtomicOutputSet {
  private readonly outputs: AtomicOutput[] = [];

  /** Reserves a temporary path for `target`; write it, then commit() the set. */
  async add(target: string): Promise<string> {
    const out = await AtomicOutput.create(target);
    this.outputs.push(out);
    return out.tempPath;
  }

  /** Writes a whole file into the set. */
  async addFile(target: string, data: string | Uint8Array): Promise<void> {
    await writeFileSynced(await this.add(target), data);
  }

  async commit(): Promise<void> {
    for (const out of this.outputs) await out.commit();
  }

  async discard(): Promise<void> {
    for (const out of this.outputs) await out.discard();
  }
}

/** dev+ino of a path (following symlinks), or undefined when it does not exist. */
async function fileIdentity(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    return `${info.dev}:${info.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * The first output that is the same file as one of the inputs, compared by device and inode,
 * so a symlink or a hard link to an input is caught as well as the same name.
 */
export async function findOutputOverInput(inputs: readonly string[], outputs: readonly string[]): Promise<{ input: string; output: string } | undefined> {
  const byIdentity = new Map<string, string>();
  for (const input of inputs) {
    const id = await fileIdentity(input);
    if (id !== undefined && !byIdentity.has(id)) byIdentity.set(id, input);
  }
  for (const output of outputs) {
    const id = await fileIdentity(output);
    const input = id === undefined ? undefined : byIdentity.get(id);
    if (input !== undefined) return { input, output };
  }
  return undefined;
}
