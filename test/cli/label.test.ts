import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { orderFields } from '../../src/data/prmkit.js';
import { writeJsonlRecords } from '../../src/data/write.js';
import { simProblems, simSolutions } from '../../src/sim/world.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: repoRoot, env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } });
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = start(args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('prmkit label mc | judge | consensus against prmkit sim serve', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prmkit-labelcli-'));
    await writeJsonlRecords(join(dir, 'solutions.jsonl'), simSolutions(simProblems(40, 8), 1, 9), orderFields);
    server = start(['sim', 'serve', '--port', '0', '--seed', '1']);
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]);
      });
      server.on('exit', (code) => reject(new Error(`sim serve exited with ${code}`)));
    });
  });
  after(async () => {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the three commands, printing and writing their stats', async () => {
    const input = join(dir, 'solutions.jsonl');
    const mc = await cli(['label', 'mc', '--input', input, '--endpoint', url, '--model', 'sim-policy', '--search', 'binary', '--cache', join(dir, 'cache'), '--out', join(dir, 'mc.jsonl')]);
    expect(mc.code, mc.stderr).to.equal(0);
    expect(mc.stdout).to.match(/label mc: 40\/40 samples labelled/);
    expect(mc.stdout).to.match(/saved \d+/);
    const mcStats = JSON.parse(await readFile(join(dir, 'mc.stats.json'), 'utf8'));
    expect(mcStats).to.include({ command: 'mc', input: 40, output: 40, search: 'binary' });
    expect(mcStats.client.requests).to.equal(mcStats.prefixesEvaluated);
    expect(mcStats.quality.truth.precision).to.be.a('number');

    const judge = await cli(['label', 'judge', '--input', input, '--endpoint', url, '--model', 'sim-judge', '--out', join(dir, 'judge.jsonl'), '--stats', join(dir, 'j.json')]);
    expect(judge.code, judge.stderr).to.equal(0);
    expect(JSON.parse(await readFile(join(dir, 'j.json'), 'utf8'))).to.include({ command: 'judge', input: 40 });

    const cons = await cli(['label', 'consensus', '--mc', join(dir, 'mc.jsonl'), '--judge', join(dir, 'judge.jsonl'), '--out', join(dir, 'kept.jsonl'), '--dropped', join(dir, 'dropped.jsonl')]);
    expect(cons.code, cons.stderr).to.equal(0);
    expect(cons.stdout).to.match(/label consensus: kept \d+\/40 \(retention [\d.]+%\)/);
    expect(cons.stdout).to.match(/consensus: \d+\/\d+ labelled; vs truth: precision/);
    const stats = JSON.parse(await readFile(join(dir, 'kept.stats.json'), 'utf8'));
    expect(stats.kept + stats.dropped).to.equal(40);
  });

  it('fails with the file, line and field when a sample has no gold answer', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, `${JSON.stringify({ id: 'a', problem: 'p', steps: ['s'], source: 'x', meta: {} })}\n`);
    const run = await cli(['label', 'mc', '--input', bad, '--endpoint', url, '--model', 'm', '--out', join(dir, 'bad-out.jsonl')]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain(`${bad}:1: field "answer"`);
  });

  it('says which endpoint failed when none answers, exiting 1', async () => {
    const port = await freePort();
    const run = await cli(['label', 'judge', '--input', join(dir, 'solutions.jsonl'), '--endpoint', `http://127.0.0.1:${port}`, '--model', 'm', '--retries', '0', '--max-failures', '0', '--out', join(dir, 'none.jsonl')]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain(`http://127.0.0.1:${port}/v1/chat/completions: fetch failed (ECONNREFUSED)`);
  });
});
