/**
 * One writer per output: `prmkit run`, `search`, `sweep` and `label` hold a lock on what they
 * write (a run directory, an output file) for as long as they run, and a second process exits
 * naming the holder. The lock is a file made with O_EXCL that names its holder (pid, process
 * start time, host); it counts only while that process lives: a holder that was SIGKILLed leaves
 * the file, and the next writer sees the pid gone (or reused by another process, told apart by
 * its start time) and takes the lock over. Node has no flock(2), and a lock that needs cleaning
 * by hand after a kill would be worse than none.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { processAlive } from './process-alive.js';

/** The lock file of a run, search or sweep directory (hidden: a run directory's listing stays the run's). */
export const DIR_LOCK_FILE = '.prmkit-write.lock';

export class WriteLockedError extends Error {
  override name = 'WriteLockedError';
  constructor(
    message: string,
    readonly holderPid: number,
  ) {
    super(message);
  }
}

interface Holder {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/PID/stat field 22); null off Linux. */
  start: number | null;
  host: string;
  command: string;
  since: string;
}

export interface WriteLock {
  path: string;
  release(): void;
}

/** Start time of process `pid`, or null where /proc does not say (then the pid alone counts). */
function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return null;
  }
}

function alive(holder: Holder): boolean {
  if (holder.host !== hostname()) return true; // a shared volume: another machine's process cannot be checked
  if (!processAlive(holder.pid)) return false;
  const start = processStart(holder.pid);
  return holder.start === null || start === null || start === holder.start;
}

function readHolder(path: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Holder;
    return typeof h.pid === 'number' ? h : null;
  } catch {
    return null; // unreadable or half-written: judged by its age below
  }
}

const held = new Set<string>();
let exitHook = false;

/**
 * Takes the lock file `path` for this process, or throws WriteLockedError naming the holder.
 * `what` names the output in the message ("run directory runs/x").
 */
export function acquireWriteLock(path: string, what: string): WriteLock {
  mkdirSync(dirname(path), { recursive: true });
  const me: Holder = { pid: process.pid, start: processStart(process.pid), host: hostname(), command: process.argv.slice(1).join(' '), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${JSON.stringify(me)}\n`);
      } finally {
        closeSync(fd);
      }
      held.add(path);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => [...held].forEach(releaseQuietly));
      }
      return { path, release: () => releaseQuietly(path) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(path);
    if (holder && holder.pid === process.pid && holder.host === me.host) {
      throw new WriteLockedError(`${what} is already being written by this process (${path})`, process.pid);
    }
    if (holder && alive(holder)) {
      throw new WriteLockedError(
        `${what} is being written by another process: pid ${holder.pid} on ${holder.host} since ${holder.since} (${holder.command}). ` +
          `Wait for it to finish or stop it; the lock (${path}) goes with that process`,
        holder.pid,
      );
    }
    if (!holder && attempt === 0) {
      // Made a moment ago and not yet written by its owner: look again.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      continue;
    }
    takeOverStale(path, holder);
  }
  throw new Error(`${path}: could not take the write lock (it keeps changing hands)`);
}

/**
 * Moves a dead holder's lock aside. Another process may have done the same and made a new lock
 * between our read and our rename: then what we moved is not the dead one and goes back.
 */
function takeOverStale(path: string, seen: Holder | null): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readHolder(aside);
  const same = seen === null ? moved === null : moved !== null && moved.pid === seen.pid && moved.since === seen.since;
  if (!same) {
    try {
      linkSync(aside, path);
    } catch {
      // Someone else holds `path` now: they keep it.
    }
  }
  unlinkSync(aside);
}

function releaseQuietly(path: string): void {
  if (!held.delete(path)) return;
  const holder = readHolder(path);
  if (holder && holder.pid !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/** Locks directory `dir` (creating it) for this process's writes. */
export function lockRunDirectory(dir: string, what = `run directory ${dir}`): WriteLock {
  return acquireWriteLock(join(dir, DIR_LOCK_FILE), what);
}
