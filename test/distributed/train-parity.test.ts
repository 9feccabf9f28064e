import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { maxSafetensorsDifference as maxDifference } from '../support/safetensors-diff.js';
import { collectiveSkipReason } from './native-binding.js';

/**
 * Data-parallel training end to end through the CLI (`prmkit run --workers 2`, TensorFlow's
 * collectives on loopback) on the quickstart recipe, cut to 20 optimizer steps:
 * - 2 workers end with the weights of one process on the same global batches (only the order
 *   of the gradient sums differs);
 * - a worker killed with SIGKILL stops the other with an error naming its rank, and the run
 *   resumed with --resume --workers 2 ends with the weights of the uninterrupted one;
 * - rank 0 failing to write a checkpoint stops the other worker at once, not at the collective
 *   timeout.
 */

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const STEPS = 20;
const RECIPE = [
  'run', 'recipes/quickstart.yaml',
  '--set', 'data.problems=600', '--set', `train.max_steps=${STEPS}`, '--set', 'train.save_every=5',
  '--set', 'train.final=last', '--set', 'eval.sim.samples=40', '--backend', 'tensorflow', '--no-progress',
];
const COLLECTIVE_TIMEOUT_S = 60;

interface Ran { code: number | null; stdout: string; stderr: string; ms: number }

/** Runs the CLI; `watch` is called every 20 ms with the stderr so far while it runs. */
function prmkit(args: string[], watch?: (stderr: string) => void): Promise<Ran> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, PRMKIT_NO_PROGRESS: '1', TF_CPP_MIN_LOG_LEVEL: '2', PRMKIT_COLLECTIVE_TIMEOUT: String(COLLECTIVE_TIMEOUT_S) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = watch ? setInterval(() => watch(stderr), 20) : null;
  return new Promise((resolve) =>
    child.on('close', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    }),
  );
}

const finalWeights = (dir: string) => join(dir, 'checkpoints', 'final', 'model.safetensors');

describe('data-parallel training through `prmkit run --workers 2`', function () {
  this.timeout(900_000);
  let root: string;
  before(function () {
    const reason = collectiveSkipReason();
    if (reason) {
      console.warn(`      skipped: ${reason}`);
      this.skip();
    }
    root = mkdtempSync(join(tmpdir(), 'prmkit-dp-'));
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it(`2 workers x ${STEPS} steps end with the weights of a single process (1e-5)`, async () => {
    const single = await prmkit([...RECIPE, '--out', join(root, 'single')]);
    expect(single.code, single.stderr).to.equal(0);
    const dp = await prmkit([...RECIPE, '--out', join(root, 'dp'), '--workers', '2']);
    expect(dp.code, dp.stderr).to.equal(0);
    expect(dp.stderr).to.match(/\[rank 1\] worker 1: trained 20 steps with the others/);
    expect(dp.stderr).to.match(/\[rank 0\] train: .* 20 optimizer steps .*worker 0 of 2/);
    const diff = await maxDifference(finalWeights(join(root, 'single')), finalWeights(join(root, 'dp')));
    console.log(`      largest weight difference, 2 workers vs 1 process: ${diff.toExponential(2)}`);
    expect(diff).to.be.below(1e-5);
    // Rank 0 alone writes the metrics: one train record per logged step, none twice.
    type TrainRecord = { kind: string; step: number; loss: number; step_loss?: number; lm_loss?: number };
    const trainRecords = (dir: string) =>
      readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TrainRecord).filter((r) => r.kind === 'train');
    const steps = trainRecords(join(root, 'dp')).map((r) => r.step);
    expect(new Set(steps).size).to.equal(steps.length);
    expect(steps.at(-1)).to.equal(STEPS);
    // The loss and its parts (the recipe keeps the LM term) are summed over the workers: the
    // logged values are the single process's.
    const [one, two] = [trainRecords(join(root, 'single')), trainRecords(join(root, 'dp'))];
    expect(two.map((r) => r.step)).to.deep.equal(one.map((r) => r.step));
    one.forEach((r, i) => {
      expect(r.lm_loss, `lm_loss at step ${r.step}`).to.be.a('number').above(0);
      expect(r.step_loss! + r.lm_loss!).to.be.closeTo(r.loss, 1e-6 * r.loss);
      for (const key of ['loss', 'step_loss', 'lm_loss'] as const) expect(two[i][key], `${key} at step ${r.step}`).to.be.closeTo(r[key]!, 1e-4 * r.loss);
    });
  });

  it('a worker killed with SIGKILL stops the other, naming its rank; --resume then ends with the uninterrupted weights', async () => {
    const out = join(root, 'killed');
    let killedAt = 0;
    const killed = await prmkit([...RECIPE, '--out', out, '--workers', '2'], (stderr) => {
      const pid = /\[launcher\] rank 1: pid (\d+)/.exec(stderr)?.[1];
      if (!killedAt && pid && existsSync(join(out, 'checkpoints', 'checkpoint-10'))) {
        killedAt = Date.now();
        process.kill(Number(pid), 'SIGKILL');
      }
    });
    expect(killedAt, 'rank 1 was never killed').to.be.above(0);
    expect(killed.code).to.equal(1);
    expect(killed.stderr).to.match(/\[launcher\] rank 1 was killed by SIGKILL/);
    expect(killed.stderr).to.match(/\[rank 0\] prmkit: .*worker rank 1 \(\/job:worker\/replica:0\/task:1\) is unreachable/);
    expect(existsSync(join(out, 'stages', 'train.json')), 'training finished before the kill').to.equal(false);
    console.log(`      rank 0 and the launcher exited ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (timeout ${COLLECTIVE_TIMEOUT_S} s)`);

    const resumed = await prmkit([...RECIPE, '--out', out, '--workers', '2', '--resume']);
    expect(resumed.code, resumed.stderr).to.equal(0);
    const from = Number(/\[rank 1\] train: resuming from .* \(step (\d+)\/20/.exec(resumed.stderr)?.[1]);
    expect(from).to.be.within(10, STEPS - 1);
    expect(resumed.stderr).to.match(new RegExp(`\\[rank 0\\] train: resuming from .* \\(step ${from}/20`));
    const diff = await maxDifference(finalWeights(join(root, 'dp')), finalWeights(out));
    console.log(`      resumed at step ${from}; largest weight difference to the uninterrupted 2-worker run: ${diff.toExponential(2)}`);
    expect(diff).to.be.below(1e-5);
  });

  for (const shard of ['none', 'states+gradients'] as const) {
  it(`rank 0 failing to write a checkpoint stops the run within seconds, not at the collective timeout (shard_optimizer ${shard})`, async function () {
    const out = join(root, `unwritable-${shard}`);
    const ckpt = join(out, 'checkpoints');
    // An immutable directory refuses new entries even to root (ext4 and most Linux filesystems).
    const chattr = (flag: '+i' | '-i') => spawnSync('chattr', [flag, ckpt], { encoding: 'utf8' });
    let lockedAt = 0;
    let lockError = '';
    try {
      const failed = await prmkit([...RECIPE, '--set', `train.shard_optimizer=${shard}`, '--out', out, '--workers', '2'], () => {
        if (lockedAt || lockError || !existsSync(join(ckpt, 'checkpoint-5'))) return;
        const r = chattr('+i');
        if (r.status === 0) lockedAt = Date.now();
        else lockError = `${r.error?.message ?? ''}${r.stderr}`.trim() || `chattr exited ${r.status}`;
      });
      if (lockError) {
        console.warn(`      skipped: cannot make the checkpoint directory read-only here (chattr +i: ${lockError})`);
        this.skip();
      }
      expect(lockedAt, 'the checkpoint directory was never locked').to.be.above(0);
      expect(failed.code).to.equal(1);
      expect(failed.stderr).to.match(/\[rank 0\] prmkit: cannot save checkpoint .*checkpoint-10/);
      expect(existsSync(join(out, 'stages', 'train.json')), 'training finished despite the failed save').to.equal(false);
      const seconds = (Date.now() - lockedAt) / 1000;
      console.log(`      the run stopped ${seconds.toFixed(1)} s after the checkpoint directory was locked (collective timeout ${COLLECTIVE_TIMEOUT_S} s)`);
      expect(seconds).to.be.below(COLLECTIVE_TIMEOUT_S / 2);
      expect(failed.stderr).to.match(/\[rank 1\] prmkit: .* stopped on rank 1: worker rank 0 \(\/job:worker\/replica:0\/task:0\) is unreachable/);
    } finally {
      if (existsSync(ckpt)) chattr('-i');
    }
  });
  }
});
