/**
 * Crash-safe file writes shared by the model checkpoint writer and the trainer's checkpoints:
 * write into a temporary sibling, fsync the files and directories, then rename into place, so a
 * kill at any moment leaves either the old or the new copy whole, never a torn one.
 */
import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

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
