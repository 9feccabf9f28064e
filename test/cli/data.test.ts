import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { computeFileStats, runConvert } from '../../src/cli/commands/data.js';
import { readAllStepSamples } from '../../src/data/read.js';
import { formatStats } from '../../src/data/stats.js';
import { REPO_ROOT, needSharedData, tempDir, writeJsonlFile } from '../data/support.js';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: REPO_ROOT, env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const readDefaults = { 'on-bad-record': 'fail' as const, neutral: 'positive' as const };

describe('prmkit data convert / stats', function () {
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  const progressSetting = process.env.PRMKIT_NO_PROGRESS;
  before(async () => {
    ({ dir, cleanup } = await tempDir('prmkit-cli-'));
    process.env.PRMKIT_NO_PROGRESS = '1';
  });
  after(async () => {
    if (progressSetting === undefined) delete process.env.PRMKIT_NO_PROGRESS;
    else process.env.PRMKIT_NO_PROGRESS = progressSetting;
    await cleanup();
  });

  it('convert: ProcessBench folder -> Arrow, read back as prmkit', async function () {
    const pb = needSharedData(this, 'processbench');
    const out = join(dir, 'pb.arrow');
    const stats = await runConvert({ ...readDefaults, from: 'processbench', to: 'arrow', in: pb, out });
    expect(stats).to.deep.include({ records: 3400, samples: 3400, rejected: 0, done: true });
    const { samples } = await readAllStepSamples(out, { format: 'prmkit' });
    expect(samples).to.have.length(3400);
    expect(samples[0].id).to.equal('gsm8k-0');
  });

  it('stats: counts, steps-per-sample histogram, label balance and first-error positions', async () => {
    const path = await writeJsonlFile(join(dir, 'trl.jsonl'), [
      { prompt: 'P', completions: ['a', 'b', 'c'], labels: [true, false, false] },
      { prompt: 'Q', completions: ['a'], labels: [true] },
      { prompt: 'R', completions: ['a', 'b'], labels: [1, 0.5] },
    ]);
    const { stats, read } = await computeFileStats(path, { ...readDefaults });
    expect(read.format).to.equal('trl'); // guessed from the first record
    expect(stats).to.deep.include({ samples: 3, steps: 6, stepsPerSample: { 1: 1, 2: 1, 3: 1 }, sources: { trl: 3 } });
    expect(stats.labels).to.deep.equal({ labelledSamples: 3, labelledSteps: 6, positive: 3, negative: 2, soft: 1, mean: 3.5 / 6 });
    expect(stats.firstError).to.deep.equal({ known: 2, none: 1, unknown: 1, positions: { 1: 1 } });
    const text = formatStats(stats, read);
    expect(text).to.include('samples 3  steps 6');
    expect(text).to.include('positive (1) 3 (50.0%)  negative (0) 2 (33.3%)  soft 1 (16.7%)');
    expect(text).to.match(/position \(0-based step\)\n\s+1\s+1\s+100\.0%/);
  });

  it('CLI: convert with a bad record exits 1 naming file:line and field; --on-bad-record skip writes rejects and exits 0', async () => {
    const path = await writeJsonlFile(join(dir, 'ms.jsonl'), [
      { input: 'Q? Step 1: a ки', label: 'Q? Step 1: a +' },
      { input: 'Q? Step 1: a ки', label: 'Q? Step 1: a *' },
    ]);
    const out = join(dir, 'ms.out.jsonl');
    const failed = await cli(['data', 'convert', '--from', 'math-shepherd', '--to', 'jsonl', path, out]);
    expect(failed.code).to.equal(1);
    expect(failed.stderr).to.include(`${path}:2: field "label": expected '+' or '-' at step tag 1, found "*"`);
    const skipped = await cli(['data', 'convert', '--from', 'math-shepherd', '--to', 'jsonl', '--on-bad-record', 'skip', path, out]);
    expect(skipped.code, skipped.stderr).to.equal(0);
    expect(skipped.stderr).to.include('2 records, 1 samples, 1 rejected');
    const rejects = join(dir, 'ms.out.jsonl.rejects.jsonl');
    expect(existsSync(rejects)).to.equal(true);
    expect(JSON.parse((await readFile(rejects, 'utf8')).trim())).to.deep.include({ line: 2, field: 'label' });
    expect((await readFile(out, 'utf8')).trim().split('\n')).to.have.length(1);
  });

  it('CLI: stats --json prints machine-readable stats; an unknown format is a usage error (exit 2)', async () => {
    const path = await writeJsonlFile(join(dir, 'pk.jsonl'), [{ id: 'a', problem: 'p', steps: ['x'], labels: [1], firstError: -1, source: 's', meta: {} }]);
    const ok = await cli(['data', 'stats', path, '--json']);
    expect(ok.code, ok.stderr).to.equal(0);
    const parsed = JSON.parse(ok.stdout);
    expect(parsed.samples).to.equal(1);
    expect(parsed.read).to.deep.include({ format: 'prmkit', records: 1, rejected: 0 });
    const bad = await cli(['data', 'stats', path, '--format', 'nope']);
    expect(bad.code).to.equal(2);
  });
});
