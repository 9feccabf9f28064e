import { expect } from 'chai';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { launchLocalWorkers, type LaunchResult } from '../../src/distributed/launch.js';
import { collectiveSkipReason } from './native-binding.js';

/**
 * TensorFlow's collective ops between 2 worker processes on loopback (test/distributed/worker.ts,
 * launched by the --workers launcher): sums of known tensors, and the fault paths — a worker
 * killed with SIGKILL, a worker that hangs — each making the other exit non-zero within the
 * timeout with an error naming the rank.
 */

const workerScript = fileURLToPath(new URL('./worker.ts', import.meta.url));

interface Run extends LaunchResult {
  records: Record<string, unknown>[];
  stderr: string[];
}

async function runWorkers(env: Record<string, string>, graceSeconds = 30): Promise<Run> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        append(chunk.toString());
        done();
      },
    });
  const result = await launchLocalWorkers({
    workers: 2,
    args: ['--import', 'tsx', workerScript],
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...env },
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
    graceSeconds,
    log: (line) => (err += `[launcher] ${line}\n`),
  });
  const records = out
    .split('\n')
    .filter((l) => /^\[rank \d\] \{/.test(l))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>);
  return { ...result, records, stderr: err.split('\n') };
}

describe('collective ops between 2 worker processes (native backend)', function () {
  this.timeout(180_000);
  before(function () {
    const reason = collectiveSkipReason();
    if (reason) {
      console.warn(`      skipped: ${reason}`);
      this.skip();
    }
  });

  it('sums known tensors of several shapes, packed into several buckets, and checks agreement', async () => {
    // 100-byte buckets (25 values) cut through the 12-, 5-, 12-, 1- and 40-element tensors: 3 collectives.
    const run = await runWorkers({ SCENARIO: 'allreduce', BUCKET_BYTES: '100' });
    expect(run.exitCode, run.stderr.join('\n')).to.equal(0);
    const shapes = [[3, 4], [5], [2, 3, 2], [1], [40]];
    // Worker r contributes (r+1)(k+1) + i/8 at position i of tensor k.
    const expected = shapes.map((shape, k) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return Array.from({ length: size }, (_, i) => [0, 1].reduce((sum, r) => sum + Math.fround((r + 1) * (k + 1) + i / 8), 0));
    });
    for (const rank of [0, 1]) {
      const sums = run.records.find((r) => r.rank === rank && 'values' in r) as { shapes: number[][]; values: number[][] };
      expect(sums.shapes).to.deep.equal(shapes);
      sums.values.forEach((v, k) => v.forEach((x, i) => expect(x).to.be.closeTo(expected[k][i], 1e-5)));
      expect(run.records.find((r) => r.rank === rank && 'consumedSame' in r)).to.deep.include({ consumedSame: true, inputsFreed: true });
      const agreement = run.records.find((r) => r.rank === rank && 'disagreement' in r) as { disagreement: string };
      expect(agreement.disagreement).to.match(/rank-value: the workers disagree \(value 0 ranges from 0 to 1/);
      expect(run.records.find((r) => r.rank === rank && 'leakedTensors' in r)).to.deep.include({ leakedTensors: 0 });
    }
  });

  it('waits for a worker that starts late, and names one that does not start within the startup timeout', async () => {
    const late = await runWorkers({ SCENARIO: 'allreduce', LATE_RANK: '1', LATE_MS: '4000' });
    expect(late.exitCode, late.stderr.join('\n')).to.equal(0);
    expect(late.records.filter((r) => 'values' in r)).to.have.length(2);
    const missing = await runWorkers({ SCENARIO: 'allreduce', LATE_RANK: '1', LATE_MS: '60000', STARTUP_TIMEOUT: '3' }, 1);
    expect(missing.workers[0].code).to.equal(1);
    const failure = missing.stderr.find((l) => l.startsWith('[rank 0] worker failed:'));
    expect(failure, missing.stderr.join('\n')).to.match(/startup: rank 1 did not start within 3 s \(\/job:worker\/replica:0\/task:1: /);
  });

  it('stops the other worker with an error naming the rank when one is killed with SIGKILL', async () => {
    const timeout = 60;
    const run = await runWorkers({ SCENARIO: 'steps', STEPS: '20', DIE_RANK: '1', DIE_AT: '3', TIMEOUT: String(timeout), HEALTH_INTERVAL_MS: '500' });
    const [w0, w1] = run.workers;
    expect(w1.signal).to.equal('SIGKILL');
    expect(w0.code).to.equal(1);
    expect(run.exitCode).to.equal(1);
    // Caught by the health checks, well before the collective timeout.
    expect(w0.ms - w1.ms).to.be.below(timeout * 1000);
    const steps0 = run.records.filter((r) => r.rank === 0 && 'step' in r);
    expect(steps0.map((r) => r.step)).to.deep.equal([0, 1, 2]);
    expect(steps0.every((r) => r.first === 3)).to.equal(true);
    const failure = run.stderr.find((l) => l.startsWith('[rank 0] worker failed:'));
    expect(failure, run.stderr.join('\n')).to.match(/WorkerFailedError: step 3 stopped on rank 0: worker rank 1 \(\/job:worker\/replica:0\/task:1\) is unreachable/);
    console.log(`      rank 0 stopped ${((w0.ms - w1.ms) / 1000).toFixed(1)} s after rank 1 was killed`);
  });

  it('stops the other worker within the collective timeout, naming the rank, when one hangs', async () => {
    const timeout = 5;
    const run = await runWorkers({ SCENARIO: 'steps', STEPS: '20', DIE_RANK: '1', DIE_AT: '3', HANG: '1', TIMEOUT: String(timeout) }, 1);
    const [w0, w1] = run.workers;
    expect(w0.code).to.equal(1);
    expect(w1.signal).to.equal('SIGTERM'); // the launcher stopped the hung worker after the grace period
    const failure = run.stderr.find((l) => l.startsWith('[rank 0] worker failed:'));
    expect(failure, run.stderr.join('\n')).to.match(/step 3: rank 1 did not join within 5 s; its TensorFlow server answers health checks/);
    expect(w1.ms - w0.ms).to.be.within(0, 15_000);
  });
});
