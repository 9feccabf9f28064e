import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FenceUnavailableError } from '../../src/distributed/fence.js';
import { freeLoopbackPorts, launchLocalWorkers, workerArgs, workerGpus } from '../../src/distributed/launch.js';
import { parseTfConfig } from '../../src/distributed/tf-config.js';

/** The local launcher with plain Node workers (no TensorFlow): TF_CONFIG, prefixes, exit status, stopping. */

function sink(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

/** A worker program: `node -e SCRIPT`. */
function launch(workers: number, script: string, graceSeconds = 30, network: 'fenced' | 'host' = 'fenced') {
  const out = sink();
  const err = sink();
  const log: string[] = [];
  const result = launchLocalWorkers({
    workers,
    network,
    args: ['-e', script],
    stdout: out.stream,
    stderr: err.stream,
    graceSeconds,
    log: (line) => log.push(line),
  });
  return { result, out, err, log };
}

describe('local worker launcher (--workers N)', function () {
  this.timeout(60_000);

  it('hands each worker its own TF_CONFIG on distinct loopback ports and prefixes its lines by rank', async () => {
    const { result, out, err } = launch(3, 'console.log(process.env.TF_CONFIG); console.error("to stderr"); console.log("second line")');
    const { exitCode, workers, addresses } = await result;
    expect(exitCode).to.equal(0);
    expect(workers.map((w) => [w.rank, w.code])).to.deep.equal([[0, 0], [1, 0], [2, 0]]);
    expect(new Set(addresses).size).to.equal(3);
    for (const a of addresses) expect(a).to.match(/^127\.0\.0\.1:\d+$/);
    for (let rank = 0; rank < 3; rank++) {
      const mine = out.lines().filter((l) => l.startsWith(`[rank ${rank}] `)).map((l) => l.slice(`[rank ${rank}] `.length));
      expect(mine).to.have.length(2);
      expect(mine[1]).to.equal('second line');
      const cluster = parseTfConfig(mine[0])!;
      expect(cluster.rank).to.equal(rank);
      expect(cluster.worldSize).to.equal(3);
      expect([...cluster.jobs.get('worker')!.values()]).to.deep.equal(addresses);
      expect(err.lines()).to.include(`[rank ${rank}] to stderr`);
    }
  });

  it('exits with the status of the first worker to fail, after the others stop', async () => {
    const script = 'const r = JSON.parse(process.env.TF_CONFIG).task.index; setTimeout(() => process.exit(r === 1 ? 3 : 0), r === 1 ? 100 : 600)';
    const { result, log } = launch(2, script);
    const { exitCode, workers } = await result;
    expect(exitCode).to.equal(3);
    expect(workers.map((w) => w.code)).to.deep.equal([0, 3]);
    expect(log.join('\n')).to.match(/rank 1 exited with code 3/);
  });

  it('stops workers that outlive a failed one by more than the grace period', async () => {
    const script = 'const r = JSON.parse(process.env.TF_CONFIG).task.index; if (r === 0) process.kill(process.pid, "SIGKILL"); else setInterval(() => {}, 1000)';
    const t0 = Date.now();
    const { result, log } = launch(2, script, 1);
    const { exitCode, workers } = await result;
    expect(exitCode).to.equal(1);
    expect(workers[0].signal).to.equal('SIGKILL');
    expect(workers[1].signal).to.equal('SIGTERM');
    expect(Date.now() - t0).to.be.below(20_000);
    expect(log.join('\n')).to.match(/rank 0 was killed by SIGKILL[\s\S]*stopping 1 worker\(s\) still running/);
  });

  it('rebuilds the command line without --workers', () => {
    const argv = ['/usr/bin/node', '/x/prmkit.js', 'run', 'r.yaml', '--workers', '2', '--out', 'o', '--workers=4', '--resume'];
    expect(workerArgs(argv, ['--import', 'tsx'])).to.deep.equal(['--import', 'tsx', '/x/prmkit.js', 'run', 'r.yaml', '--out', 'o', '--resume']);
  });

  it('gives each worker its own GPU when CUDA_VISIBLE_DEVICES lists enough of them', () => {
    expect([0, 1].map((r) => workerGpus({ CUDA_VISIBLE_DEVICES: '2, 5,7' }, r, 2))).to.deep.equal([{ CUDA_VISIBLE_DEVICES: '2' }, { CUDA_VISIBLE_DEVICES: '5' }]);
    expect(workerGpus({ CUDA_VISIBLE_DEVICES: '0' }, 1, 2)).to.deep.equal({});
    expect(workerGpus({}, 0, 2)).to.deep.equal({});
  });

  it('finds distinct free ports', async () => {
    const ports = await freeLoopbackPorts(5);
    expect(new Set(ports).size).to.equal(5);
  });

  describe('network fence', () => {
    /** A worker that listens on its TF_CONFIG port on every interface (as TensorFlow's server does), reaches its peer on loopback, then waits for DONE. */
    const listener = `
      const net = require('node:net'), fs = require('node:fs');
      const c = JSON.parse(process.env.TF_CONFIG), me = c.task.index, addrs = c.cluster.worker;
      const port = Number(addrs[me].split(':')[1]), peer = Number(addrs[1 - me].split(':')[1]);
      net.createServer((s) => s.end()).listen(port, '::', () => {
        const tryPeer = () => net.connect(peer, '127.0.0.1').on('connect', function () { this.destroy(); console.log('ready ' + port); })
          .on('error', () => setTimeout(tryPeer, 50));
        tryPeer();
      });
      setInterval(() => { if (fs.existsSync(process.env.DONE)) process.exit(0); }, 50);`;

    function externalIPv4(): string | null {
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
      return null;
    }

    function reach(host: string, port: number): Promise<string> {
      return new Promise((resolve) => {
        const socket = connect({ host, port, timeout: 3000 });
        socket.on('connect', () => (socket.destroy(), resolve('connected')));
        socket.on('timeout', () => (socket.destroy(), resolve('timeout')));
        socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
    }

    async function probeWorkers(network: 'fenced' | 'host'): Promise<{ results: string[]; log: string[] }> {
      const done = join(mkdtempSync(join(tmpdir(), 'fence-')), 'done');
      const external = externalIPv4() as string;
      const out = sink();
      const log: string[] = [];
      const run = launchLocalWorkers({ workers: 2, network, args: ['-e', listener], env: { ...process.env, DONE: done }, stdout: out.stream, stderr: sink().stream, log: (l) => log.push(l) });
      const deadline = Date.now() + 20_000;
      while (out.lines().filter((l) => / ready \d+$/.test(l)).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const ports = out.lines().filter((l) => / ready \d+$/.test(l)).map((l) => Number(l.split(' ').pop()));
      expect(ports, 'both workers listening and reaching each other on loopback').to.have.length(2);
      const results = [];
      for (const port of ports) results.push(await reach(external, port), await reach('127.0.0.1', port));
      writeFileSync(done, '');
      expect((await run).exitCode).to.equal(0);
      return { results, log };
    }

    it("refuses connections from this machine's non-loopback address (and its loopback) to the workers' ports", async function () {
      if (!externalIPv4()) {
        console.warn('      skipped: this machine has no non-loopback IPv4 address to connect from');
        return this.skip();
      }
      const { results, log } = await probeWorkers('fenced');
      expect(results).to.deep.equal(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
      expect(log.join('\n')).to.match(/network namespace with only loopback/);
    });

    it('with network host (--expose-workers) the ports are reachable, and the launcher names the open interfaces', async function () {
      const external = externalIPv4();
      if (!external) return this.skip();
      const { results, log } = await probeWorkers('host');
      expect(results).to.deep.equal(['connected', 'connected', 'connected', 'connected']);
      expect(log.join('\n')).to.include(external).and.match(/listen on every interface, unauthenticated/);
    });

    it('refuses to launch, saying why and naming the opt-in, when no namespace can be made', async () => {
      const path = process.env.PATH;
      process.env.PATH = '/nonexistent';
      try {
        const err = await launch(2, 'process.exit(0)').result.then(() => null, (e: Error) => e);
        expect(err).to.be.instanceOf(FenceUnavailableError);
        expect(err!.message).to.match(/'unshare' command is not installed[\s\S]*listen on every interface[\s\S]*--expose-workers/);
      } finally {
        process.env.PATH = path;
      }
    });
  });
});
