import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/backend/backend.js';
import { problems, tinyCheckpoint } from '../support/tiny-prm.js';
import { get, post, until } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const TOKEN = 'shutdown-test-token';

/** `prmkit serve` from source; resolves with the child and its URL once it listens. */
function spawnServe(args: string[]): { child: ChildProcess; stderr: () => string; exit: Promise<number | null>; url: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'serve', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      stderr += d;
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`prmkit serve exited with ${code} before listening:\n${stderr}`)));
  });
  return { child, stderr: () => stderr, exit, url };
}

describe('serve: CLI and graceful shutdown', function () {
  this.timeout(120_000);
  let dir: string;
  const children: ChildProcess[] = [];

  before(async () => {
    await selectBackend('wasm', { log: () => {} });
    dir = await tinyCheckpoint();
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('on SIGTERM answers every request in flight, refuses new connections and exits 0', async () => {
    // A long max wait keeps the requests queued until the signal: only the drain can release them.
    const serve = spawnServe(['--model', dir, '--port', '0', '--backend', 'wasm', '--token', TOKEN, '--max-wait-ms', '20000']);
    children.push(serve.child);
    const url = await serve.url;
    const n = 8;
    const started = Date.now();
    const pending = Array.from({ length: n }, (_, k) => post(`${url}/v1/score`, problems[k % problems.length], { token: TOKEN }));
    await until(async () => ((await get(`${url}/health`, { token: TOKEN })).body as { queue_depth: number }).queue_depth === n, 20_000, 'queued requests');
    serve.child.kill('SIGTERM');
    const replies = await Promise.all(pending);
    for (const res of replies) {
      expect(res.status).to.equal(200);
      expect((res.body as { step_scores: number[] }).step_scores.every((s) => s > 0 && s < 1)).to.equal(true);
    }
    expect(Date.now() - started, 'released by the drain, not by the 20 s wait').to.be.below(20_000);
    expect(await serve.exit).to.equal(0);
    expect(serve.stderr()).to.match(/SIGTERM: draining 8 queued requests/);
    expect(serve.stderr()).to.match(/stopped after \d+ responses/);
    let refused: unknown;
    try {
      await fetch(`${url}/health`);
    } catch (e) {
      refused = e;
    }
    expect(refused, 'connection after exit').to.be.instanceOf(Error);
  });

  it('exits 2 on a bad limit, before loading the model', async () => {
    const serve = spawnServe(['--model', dir, '--port', '0', '--max-queue', '0']);
    children.push(serve.child);
    serve.url.catch(() => {});
    expect(await serve.exit).to.equal(2);
    expect(serve.stderr()).to.include('--max-queue must be an integer >= 1, got 0');
  });
});
