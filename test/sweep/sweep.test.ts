import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runRecipe, type RunOptions } from '../../src/run/run.js';
import { runSweep, SweepSetupError } from '../../src/sweep/run.js';
import type { SummaryEntry } from '../../src/sweep/summary.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const quiet = () => {};
const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * A recipe of the data and labels stages only (no training), so each point runs in about a
 * second: MC labels through the in-process sim server over HTTP, or the sim truth.
 */
const RECIPE = `
name: tiny
seed: 5
data: { source: sim, problems: 24 }
labels: { method: mc, endpoint: sim, rollouts: 2, concurrency: 8 }
sweep:
  variants:
    mc: { labels.method: mc }
    truth: { labels.method: truth }
  grid:
    labels.rollouts: [2, 3]
`;

function setup(): { dir: string; recipe: string } {
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-sweep-'));
  made.push(dir);
  const recipe = join(dir, 'tiny.yaml');
  writeFileSync(recipe, RECIPE);
  return { dir, recipe };
}

/** runRecipe, counting the points it was asked to run. */
function countingRunner(calls: string[]) {
  return async (opts: RunOptions) => {
    calls.push(opts.out as string);
    return runRecipe({ ...opts, progress: false });
  };
}

describe('sweep/run', function () {
  this.timeout(120_000);

  it('runs one run per point, writes summary.json, and never redoes a finished point', async () => {
    const { dir, recipe } = setup();
    const out = join(dir, 'sweep');
    const calls: string[] = [];
    const first = await runSweep({ recipePath: recipe, out, log: quiet, progress: false, report: false, runPoint: countingRunner(calls) });
    expect(first.ran).to.deep.equal(['mc_rollouts-2', 'mc_rollouts-3', 'truth_rollouts-2', 'truth_rollouts-3']);
    expect(calls).to.have.length(4);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as SummaryEntry[];
    expect(summary.map((s) => s.name)).to.deep.equal(first.ran);
    for (const entry of summary) {
      expect(entry).to.have.all.keys('name', 'variant', 'params', 'metrics', 'run_dir', 'seconds');
      expect(entry.metrics.label_first_error_precision).to.be.a('number').within(0, 1);
      expect(entry.metrics.retained).to.equal(1);
      expect(existsSync(join(out, entry.run_dir, 'manifest.json'))).to.equal(true);
    }
    expect(summary[1].params).to.deep.equal({ 'labels.method': 'mc', 'labels.rollouts': 3 });
    expect(summary[3].metrics.label_first_error_precision).to.equal(1);
    // Each point is a normal run directory whose resolved recipe carries the point's values.
    const resolved = readFileSync(join(out, 'runs', 'mc_rollouts-3', 'recipe.resolved.yaml'), 'utf8');
    expect(resolved).to.match(/rollouts: 3/);
    expect(resolved).to.match(/^name: tiny-mc_rollouts-3$/m);
    expect(resolved).to.not.match(/^sweep:/m);

    const marker = readFileSync(join(out, 'runs', 'mc_rollouts-2', 'stages', 'labels.json'), 'utf8');
    const second = await runSweep({ recipePath: recipe, out, log: quiet, progress: false, report: false, runPoint: countingRunner(calls) });
    expect(second.ran).to.deep.equal([]);
    expect(second.skipped).to.have.length(4);
    expect(calls).to.have.length(4);
    expect(readFileSync(join(out, 'runs', 'mc_rollouts-2', 'stages', 'labels.json'), 'utf8')).to.equal(marker);
    expect(second.summary).to.have.length(4);

    // Adding a grid value runs only the new points.
    const third = await runSweep({ recipePath: recipe, grid: ['labels.rollouts=2,3,4'], out, log: quiet, progress: false, report: false, runPoint: countingRunner(calls) });
    expect(third.ran).to.deep.equal(['mc_rollouts-4', 'truth_rollouts-4']);
    expect(third.summary).to.have.length(6);

    // A finished point whose recipe changed is an error, not a silent mix of two sweeps.
    let error: unknown;
    try {
      await runSweep({ recipePath: recipe, set: ['data.problems=25'], out, log: quiet, progress: false, report: false });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(SweepSetupError);
    expect((error as Error).message).to.match(/finished with a different recipe than point mc_rollouts-2/);
  });

  it('shards split the points; two shards into one directory make the whole summary and report', async () => {
    const { dir, recipe } = setup();
    const out = join(dir, 'sharded');
    const s0 = await runSweep({ recipePath: recipe, out, shard: { index: 0, count: 2 }, log: quiet, progress: false, report: false });
    const s1 = await runSweep({ recipePath: recipe, out, shard: { index: 1, count: 2 }, log: quiet, progress: false });
    expect(s0.ran).to.deep.equal(['mc_rollouts-2', 'truth_rollouts-2']);
    expect(s1.ran).to.deep.equal(['mc_rollouts-3', 'truth_rollouts-3']);
    expect(s1.summary.map((e) => e.name)).to.deep.equal(['mc_rollouts-2', 'mc_rollouts-3', 'truth_rollouts-2', 'truth_rollouts-3']);
    expect(existsSync(join(out, 'shards', '0-of-2.json'))).to.equal(true);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).to.contain('4 finished run(s) of 4 planned');
    expect(md).to.match(/!\[[^\]]+\]\(plots\/labels\.svg\)/);
    expect(readFileSync(join(out, 'plots', 'labels.svg'), 'utf8')).to.match(/^<\?xml[^>]*>\s*<svg/);
  });

  it('the CLI validates every point before running any (exit 2) and runs a dry run', () => {
    const { dir, recipe } = setup();
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: repoRoot, encoding: 'utf8' });
    const bad = cli('sweep', recipe, '--grid', 'labels.rollouts=2,many', '--out', join(dir, 'bad'));
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/labels\.rollouts=many: expected a number/);
    expect(existsSync(join(dir, 'bad'))).to.equal(false);
    const dry = cli('sweep', recipe, '--random', '3', '--seed', '4', '--out', join(dir, 'dry'), '--dry-run');
    expect(dry.status, dry.stderr).to.equal(0);
    const plan = JSON.parse(readFileSync(join(dir, 'dry', 'sweep.json'), 'utf8')) as { total: number; points: unknown[] };
    expect(plan.total).to.equal(4);
    expect(plan.points).to.have.length(3);
    expect(JSON.parse(dry.stdout.trim())).to.include({ points: 3, ran: 0 });
  });
});
