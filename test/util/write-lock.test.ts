import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIR_LOCK_FILE, lockRunDirectory, WriteLockedError } from '../../src/util/write-lock.js';

/** The one-writer lock of run/search/sweep/label outputs: held while the holder lives, gone with it. */

const lockModule = fileURLToPath(new URL('../../src/util/write-lock.ts', import.meta.url));

/** A process that takes the lock of `dir` and waits; resolves once it holds it. */
async function holder(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `import(${JSON.stringify(lockModule)}).then((m) => { m.lockRunDirectory(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000); })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('locked') && resolve());
    child.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return child;
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.on('exit', () => resolve())));

describe('write lock of a run directory', function () {
  this.timeout(30_000);

  it("refuses a second writer while the first lives, naming the holder's pid; after a SIGKILL the next writer takes over", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const first = await holder(dir);
    try {
      const err = (() => {
        try {
          lockRunDirectory(dir);
          return null;
        } catch (e) {
          return e as WriteLockedError;
        }
      })();
      expect(err).to.be.instanceOf(WriteLockedError);
      expect(err!.holderPid).to.equal(first.pid);
      expect(err!.message).to.include(`pid ${first.pid}`);
    } finally {
      first.kill('SIGKILL');
      await exited(first);
    }
    // The killed holder's file is still there, and counts for nothing.
    expect(existsSync(join(dir, DIR_LOCK_FILE))).to.equal(true);
    const lock = lockRunDirectory(dir);
    expect(JSON.parse(readFileSync(join(dir, DIR_LOCK_FILE), 'utf8')).pid).to.equal(process.pid);
    lock.release();
    expect(existsSync(join(dir, DIR_LOCK_FILE))).to.equal(false);
  });

  it('takes over a lock whose pid now belongs to another process (different start time)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    writeFileSync(join(dir, DIR_LOCK_FILE), JSON.stringify({ pid: process.ppid, start: 1, host: hostname(), command: 'old', since: 'then' }));
    lockRunDirectory(dir).release();
  });

  it('refuses a lock held by this same process (two writers in one process)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const lock = lockRunDirectory(dir);
    try {
      expect(() => lockRunDirectory(dir)).to.throw(WriteLockedError, /already being written by this process/);
    } finally {
      lock.release();
    }
  });
});
