import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { launchLocalWorkers } from '../../src/distributed/launch.js';
import { maxSafetensorsDifference as maxDifference } from '../support/safetensors-diff.js';
import { collectiveSkipReason } from './native-binding.js';

/**
 * train.shard_optimizer (ZeRO stages 1 and 2) end to end: the toy PRM of test/train/toy.ts
 * (2 layers, tied embedding used by the LM term, recomputation, 2 micro-batches a step, one
 * step a epoch whose second micro-batch has a single row, so one worker has none) trained 20
 * steps by test/distributed/shard-worker.ts, alone or as 2 workers on loopback with 4 KB
 * buckets (many buckets; rank slices cut through tensors).
 * - sharded runs end with the weights of one process on the same global batches (1e-5);
 * - checkpoints resume with another worker count (2 -> 1, 1 -> 2) to the uninterrupted runs'
 *   weights (a finished run cut back to its step-10 checkpoint stands for an interrupted one),
 *   and a sharded checkpoint holds the same optimizer.safetensors as one process's;
 * - no worker leaves tensors behind that one unsharded process does not.
 */

const workerScript = fileURLToPath(new URL('./shard-worker.ts', import.meta.url));

interface Outcome {
  rank: number;
  steps: number;
  leaked: number;
  sharding: string | null;
}

interface Ran {
  outcomes: Outcome[];
  stderr: string;
}

function sink(append: (s: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      append(chunk.toString());
      done();
    },
  });
}

const outcomesOf = (stdout: string): Outcome[] =>
  stdout
    .split('\n')
    .filter((l) => /^(\[rank \d\] )?\{/.test(l))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Outcome)
    .sort((a, b) => a.rank - b.rank);

/** One training run of the toy setup: `workers` 1 is a plain process, more go through the launcher. */
async function train(workers: number, env: Record<string, string>): Promise<Ran> {
  const fullEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', PRMKIT_NO_PROGRESS: '1', ...env };
  let stdout = '';
  let stderr = '';
  if (workers === 1) {
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).to.equal(0);
  } else {
    const result = await launchLocalWorkers({
      workers,
      args: ['--import', 'tsx', workerScript],
      env: fullEnv,
      stdout: sink((s) => (stdout += s)),
      stderr: sink((s) => (stderr += s)),
      log: (line) => (stderr += `[launcher] ${line}\n`),
    });
    expect(result.exitCode, stderr).to.equal(0);
  }
  const outcomes = outcomesOf(stdout);
  expect(outcomes, stderr).to.have.length(workers);
  return { outcomes, stderr };
}

const weights = (dir: string, ckpt = 'final') => join(dir, 'checkpoints', ckpt, 'model.safetensors');
const moments = (dir: string, step: number) => join(dir, 'checkpoints', `checkpoint-${step}`, 'optimizer.safetensors');

describe('optimizer sharding across 2 workers (train.shard_optimizer)', function () {
  this.timeout(300_000);
  let root: string;
  let singleLeak: number;
  before(async function () {
    const reason = collectiveSkipReason();
    if (reason) {
      console.warn(`      skipped: ${reason}`);
      this.skip();
    }
    root = mkdtempSync(join(tmpdir(), 'prmkit-zero-'));
    // The reference: one process, unsharded, uninterrupted.
    const single = await train(1, { OUT: join(root, 'single'), SHARD: 'states+gradients' });
    expect(single.outcomes[0].steps).to.equal(20);
    expect(single.stderr).to.match(/train\.shard_optimizer states\+gradients has no effect with one worker/);
    singleLeak = single.outcomes[0].leaked;
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** The uninterrupted 2-worker run of a mode (made once; the resume test reuses it). */
  const runs = new Map<string, Promise<Ran>>();
  const runOnce = (mode: string): Promise<Ran> => {
    if (!runs.has(mode)) runs.set(mode, train(2, { OUT: join(root, mode), SHARD: mode }));
    return runs.get(mode)!;
  };
  /** A copy of a finished run as an interruption after step 10 leaves it (checkpoint-10 newest; save_every 5, keep_last 4). */
  const cutAfter10 = (from: string, name: string): string => {
    const to = join(root, name);
    cpSync(from, to, { recursive: true });
    for (const later of ['checkpoint-15', 'checkpoint-20', 'final']) rmSync(join(to, 'checkpoints', later), { recursive: true, force: true });
    return to;
  };

  for (const mode of ['states+gradients', 'states'] as const) {
    it(`2 workers x 20 steps with ${mode} end with the weights of one process (1e-5), leaking nothing more`, async () => {
      const out = join(root, mode);
      const run = await runOnce(mode);
      const stage = mode === 'states' ? 1 : 2;
      run.outcomes.forEach((o) => {
        expect(o.steps).to.equal(20);
        expect(o.sharding).to.match(new RegExp(`ZeRO stage ${stage}\\): worker ${o.rank} of 2 holds the AdamW moments of \\d+ of \\d+ parameters`));
        // Rank 0 writes the run's files as one process does; rank 1 writes nothing.
        expect(o.leaked, `rank ${o.rank}`).to.equal(o.rank === 0 ? singleLeak : 0);
      });
      // The two slices together are the whole, split evenly.
      const owned = run.outcomes.map((o) => /moments of (\d+) of (\d+)/.exec(o.sharding!)!.slice(1).map(Number));
      expect(owned[0][0] + owned[1][0]).to.equal(owned[0][1]);
      expect(Math.abs(owned[0][0] - owned[1][0])).to.be.at.most(1);
      const diff = await maxDifference(weights(join(root, 'single')), weights(out));
      const stateDiff = await maxDifference(moments(join(root, 'single'), 20), moments(out, 20));
      console.log(`      ${mode}: largest weight difference to one process ${diff.toExponential(2)}, of the AdamW moments ${stateDiff.toExponential(2)}`);
      expect(diff).to.be.below(1e-5);
      expect(stateDiff).to.be.below(1e-6);
    });
  }

  it('a sharded checkpoint resumes with 1 worker, and an unsharded one with 2 sharded workers, to the uninterrupted weights', async () => {
    const single = join(root, 'single');
    const sharded = join(root, 'states+gradients');
    await runOnce('states+gradients');
    // The uninterrupted 2-worker run as it stood after step 10 resumes with one process.
    const to1 = cutAfter10(sharded, 'to1');
    const resumed1 = await train(1, { OUT: to1, SHARD: 'none', RESUME: '1' });
    expect(resumed1.stderr).to.match(/train: resuming from .*checkpoint-10 \(step 10\/20/);
    // One process's run as it stood after step 10 resumes with 2 sharded workers.
    const to2 = cutAfter10(single, 'to2');
    const resumed2 = await train(2, { OUT: to2, SHARD: 'states+gradients', RESUME: '1' });
    expect(resumed2.stderr).to.match(/\[rank 1\] train: resuming from .*checkpoint-10 \(step 10\/20/);
    resumed2.outcomes.forEach((o) => expect(o.leaked, `rank ${o.rank}`).to.equal(o.rank === 0 ? singleLeak : 0));

    // The checkpoints at step 10 hold the same state whoever wrote it (layout and values).
    const at10 = await maxDifference(moments(sharded, 10), moments(single, 10));
    const d21 = await maxDifference(weights(sharded), weights(to1));
    const d12 = await maxDifference(weights(single), weights(to2));
    const d21single = await maxDifference(weights(single), weights(to1));
    console.log(
      `      step-10 AdamW moments, 2 sharded workers vs 1 process: ${at10.toExponential(2)}; final weights: ` +
        `2->1 vs uninterrupted 2 workers ${d21.toExponential(2)} (vs 1 process ${d21single.toExponential(2)}), 1->2 vs uninterrupted 1 process ${d12.toExponential(2)}`,
    );
    expect(at10).to.be.below(1e-6);
    expect(d21).to.be.below(1e-6);
    expect(d12).to.be.below(1e-6);
  });
});
