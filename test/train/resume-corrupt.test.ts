import { expect } from 'chai';
import { mkdtempSync, readFileSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../src/backend/backend.js';
import { checkpointProblem, CHECKSUMS_FILE, listCheckpoints } from '../../src/train/checkpoints.js';
import { ResumeError } from '../../src/train/trainer.js';
import { testBackend } from '../support/backend.js';
import { toySetup, toyTrainConfig, trainToy } from './toy.js';

/**
 * Every checkpoint records the size and sha256 of its files; --resume verifies the newest one,
 * skips it with a warning naming it when a file is damaged, and continues from the newest valid
 * one, ending with the weights of a run that was never interrupted.
 */
/** A toy run killed after step 5: checkpoints at steps 2 and 4. */
async function killedWithTwoCheckpoints(prefix: string) {
  const cfg = toyTrainConfig({ epochs: 1, save_every: 2, eval_every: 0, keep_last: 5, final: 'last', batch_size: 4 });
  const out = mkdtempSync(join(tmpdir(), prefix));
  const setup = await toySetup({ nTrain: 24, nDev: 4 });
  expect(await trainToy(setup, cfg, out, { stopAfter: 5 })).to.equal(null);
  setup.model.dispose();
  return { cfg, out };
}

describe('train/resume past a corrupt checkpoint', function () {
  this.timeout(120000);
  before(async () => {
    await selectBackend(testBackend(), { log: () => {} });
  });

  it('records checksums, detects a truncated or altered file, and resumes from the previous checkpoint to the uninterrupted weights', async () => {
    const cfg = toyTrainConfig({ epochs: 2, save_every: 2, eval_every: 0, keep_last: 5, final: 'last', batch_size: 4 });
    const straight = await toySetup({ nTrain: 24, nDev: 4 });
    const outA = mkdtempSync(join(tmpdir(), 'prmkit-corrupt-a-'));
    await trainToy(straight, cfg, outA);

    const outB = mkdtempSync(join(tmpdir(), 'prmkit-corrupt-b-'));
    const first = await toySetup({ nTrain: 24, nDev: 4 });
    expect(await trainToy(first, cfg, outB, { stopAfter: 5 })).to.equal(null);
    first.model.dispose();
    const ckpts = await listCheckpoints(join(outB, 'checkpoints'));
    expect(ckpts.map((c) => c.step)).to.deep.equal([2, 4]);
    const newest = ckpts[1].dir;
    const listed = JSON.parse(readFileSync(join(newest, CHECKSUMS_FILE), 'utf8')).files;
    expect(Object.keys(listed)).to.include.members(['model.safetensors', 'optimizer.safetensors', 'trainer_state.json', 'config.json']);
    expect(await checkpointProblem(newest)).to.equal(null);

    // Same size, one byte changed: the sha256 catches it.
    const weights = join(newest, 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(weights, bytes);
    expect(await checkpointProblem(newest)).to.match(/model\.safetensors does not match its sha256/);
    // Truncated: the size catches it.
    truncateSync(weights, statSync(weights).size - 100);
    expect(await checkpointProblem(newest)).to.match(/model\.safetensors has \d+ bytes, \d+ were written/);

    const lines: string[] = [];
    const second = await toySetup({ nTrain: 24, nDev: 4, seed: 99 });
    const result = (await trainToy(second, cfg, outB, { resume: true, log: (l) => lines.push(l) }))!;
    expect(result.resumedFrom).to.equal(2);
    expect(lines.some((l) => /warning: skipping .*checkpoint-4 \(step 4\): model\.safetensors has/.test(l)), lines.join('\n')).to.equal(true);
    const a = readFileSync(join(outA, 'checkpoints', 'final', 'model.safetensors'));
    const b = readFileSync(join(outB, 'checkpoints', 'final', 'model.safetensors'));
    expect(Buffer.compare(a, b)).to.equal(0);
    straight.model.dispose();
    second.model.dispose();
  });

  it('a checksums.json of the wrong shape ({}, [], {"files": null}, a path out of the directory) is named and skipped like invalid JSON', async () => {
    const { cfg, out } = await killedWithTwoCheckpoints('prmkit-shape-');
    const [older, newest] = (await listCheckpoints(join(out, 'checkpoints'))).map((c) => c.dir);
    const file = join(newest, CHECKSUMS_FILE);
    const good = readFileSync(file, 'utf8');
    const sha = 'a'.repeat(64);
    for (const bad of ['{}', '[]', '{"files": null}', '{"files": {"x": {"bytes": -1, "sha256": "' + sha + '"}}}', '{"files": {"../../etc/passwd": {"bytes": 1, "sha256": "' + sha + '"}}}', 'null']) {
      writeFileSync(file, bad);
      expect(await checkpointProblem(newest), bad).to.match(new RegExp(`${CHECKSUMS_FILE.replace('.', '\\.')} has the wrong shape`)).and.include(newest);
    }
    writeFileSync(file, '{"files": null}');
    const lines: string[] = [];
    const again = await toySetup({ nTrain: 24, nDev: 4 });
    const result = (await trainToy(again, cfg, out, { resume: true, log: (l) => lines.push(l) }))!;
    again.model.dispose();
    expect(result.resumedFrom).to.equal(2);
    expect(lines.join('\n')).to.match(/skipping .*checkpoint-4 \(step 4\): .*checksums\.json has the wrong shape/);
    expect(older).to.match(/checkpoint-2$/);
    expect(good).to.include('sha256');
  });

  it('--resume with checkpoints of which none verifies is an error (metrics.jsonl and checkpoints kept) unless --restart', async () => {
    const { cfg, out } = await killedWithTwoCheckpoints('prmkit-restart-');
    for (const c of await listCheckpoints(join(out, 'checkpoints'))) writeFileSync(join(c.dir, CHECKSUMS_FILE), '{not json');
    const metricsBefore = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
    const again = await toySetup({ nTrain: 24, nDev: 4 });
    try {
      const err = await trainToy(again, cfg, out, { resume: true }).then(() => null, (e: Error) => e);
      expect(err).to.be.instanceOf(ResumeError);
      expect(err!.message).to.match(/no checkpoint under .*checkpoints verifies.*--restart/);
      expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).to.equal(metricsBefore);
      expect((await listCheckpoints(join(out, 'checkpoints'))).map((c) => c.step)).to.deep.equal([2, 4]);
      const lines: string[] = [];
      const result = (await trainToy(again, cfg, out, { resume: true, restart: true, log: (l) => lines.push(l) }))!;
      expect(result.resumedFrom).to.equal(null);
      expect(lines.join('\n')).to.match(/--restart: training from step 0/);
    } finally {
      again.model.dispose();
    }
  });

  it('a checkpoint save that fails (a full disk) names the checkpoint, removes its half-written files and keeps the earlier ones', async () => {
    const { saveCheckpoint } = await import('../../src/train/checkpoints.js');
    const { readdirSync, mkdirSync } = await import('node:fs');
    const root = join(mkdtempSync(join(tmpdir(), 'prmkit-enospc-')), 'checkpoints');
    mkdirSync(join(root, 'checkpoint-2'), { recursive: true });
    const full = async (dir: string) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'model.safetensors'), 'part of it');
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    const state = { global_step: 4 } as Parameters<typeof saveCheckpoint>[1];
    const err = await saveCheckpoint(root, state, {} as Parameters<typeof saveCheckpoint>[2], full).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).to.equal('ENOSPC');
    expect(err?.message).to.include(join(root, 'checkpoint-4')).and.match(/ENOSPC: no space left on device.*earlier checkpoints .* are kept/);
    expect(readdirSync(root)).to.deep.equal(['checkpoint-2']);
  });
});

