import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { HARD_SOFT_MARGIN_F1, pairedEstimate, paperFindings, verdictOf, type Finding } from '../../src/report/findings.js';
import { collectInputs } from '../../src/report/collect.js';
import { writeReport } from '../../src/report/report.js';
import { writeFakeRun, type FakeRunOptions } from './fake-run.js';

const quiet = () => {};
const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-findings-'));
  made.push(dir);
  return dir;
}

const SEEDS = [7, 8, 9, 10, 11];

/**
 * A sweep directory of fake runs, one per (variant, seed), as `prmkit sweep --grid seed=...`
 * writes it. `make` gives each run's numbers.
 */
function fakeSweep(
  dir: string,
  variants: Record<string, (seed: number, i: number) => Omit<FakeRunOptions, 'name' | 'point' | 'seed'>>,
  grid: Record<string, number> = {},
): void {
  const points: { name: string; variant: string; params: Record<string, unknown> }[] = [];
  for (const [variant, make] of Object.entries(variants)) {
    SEEDS.forEach((seed, i) => {
      const name = [variant, ...Object.entries(grid).map(([k, v]) => `${k.split('.').pop()}-${v}`), `seed-${seed}`].join('_');
      const params = { ...grid, seed };
      points.push({ name, variant, params });
      writeFakeRun(join(dir, 'runs', name), { name, seed, point: { params, variant }, ...make(seed, i) });
    });
  }
  writeFileSync(join(dir, 'sweep.json'), JSON.stringify({ recipe: '/x/paper.yaml', recipe_name: 'paper', set: [], variants: [], grid: [{ key: 'seed', values: SEEDS }], random: null, total: points.length, points, updated_at: '' }));
}

const base = { bonProd: 60, labelPrecision: 0.8, retention: 1 };

describe('report/findings: paired differences over seeds', () => {
  it('gives the t interval of paired differences (t(0.975, 4) = 2.776 from the table)', () => {
    const e = pairedEstimate([1, 2, 3, 4, 5]);
    expect(e.n).to.equal(5);
    expect(e.mean).to.equal(3);
    expect(e.sd).to.be.closeTo(Math.sqrt(2.5), 1e-12);
    const half = (2.776 * Math.sqrt(2.5)) / Math.sqrt(5);
    expect(e.interval![0]).to.be.closeTo(3 - half, 1e-3);
    expect(e.interval![1]).to.be.closeTo(3 + half, 1e-3);
    // Two seeds: t(0.975, 1) = 12.706.
    const two = pairedEstimate([1, 3]);
    expect(two.interval![1] - two.mean).to.be.closeTo(12.706, 1e-3);
    expect(pairedEstimate([4]).interval).to.equal(null);
  });

  it('calls a finding shown, reversed or not shown by which side of 0 its interval lies on', () => {
    expect(verdictOf(pairedEstimate([2, 3, 4]), 1)).to.equal('shown');
    expect(verdictOf(pairedEstimate([2, 3, 4]), -1)).to.equal('reversed');
    expect(verdictOf(pairedEstimate([-2, -3, -4]), -1)).to.equal('shown');
    expect(verdictOf(pairedEstimate([-1, 2, 0.5]), 1)).to.equal('not shown');
    expect(verdictOf(pairedEstimate([5]), 1)).to.equal('too few seeds');
  });

  it('tests "at least as good" against a margin: shown when the interval stays above -margin', () => {
    // Mean -0.24, interval about [-0.97, 0.49]: covers 0, so a plain claim is not shown ...
    const small = pairedEstimate([-1, 0, -0.5, 0.5, -0.2]);
    expect(verdictOf(small, 1)).to.equal('not shown');
    // ... but it lies above -2: no worse by more than 2 points.
    expect(verdictOf(small, 1, 2)).to.equal('shown');
    expect(verdictOf(pairedEstimate([-5, -4, -6]), 1, 2)).to.equal('reversed');
    expect(verdictOf(pairedEstimate([-3, 1, -2.5, 0.5]), 1, 2)).to.equal('not shown');
  });
});

describe('report/findings: the paper findings from sweep directories', () => {
  it('pairs runs by seed and states each finding with its interval, in report.md and findings.json', async () => {
    const root = tempDir();
    // Consensus-hard beats MC-hard by 4..8 points in every seed; soft beats hard by about as
    // much as it loses (no difference); MC-hard has "last" 5 above min, consensus 1 below.
    const mcF1 = [40, 50, 45, 38, 47];
    const gains = [4, 6, 5, 8, 5];
    const softDiff = [3, -2, 1, -3, 0.5];
    fakeSweep(join(root, 'labels'), {
      'mc-hard': (_s, i) => ({ ...base, f1: mcF1[i], method: 'mc', bonLast: 65, bonMin: 60 }),
      'consensus-hard': (_s, i) => ({ ...base, f1: mcF1[i] + gains[i], method: 'consensus', bonLast: 59 + (i % 2), bonMin: 60 + (i % 2) }),
      'consensus-soft': (_s, i) => ({ ...base, f1: mcF1[i] + gains[i] + softDiff[i], method: 'consensus', mcLabels: 'soft' }),
    });
    const collected = collectInputs([join(root, 'labels')]);
    const findings = paperFindings(collected.runs);
    const byId = (id: Finding['id']) => findings.filter((f) => f.id === id);

    const [filtered] = byId('filter-beats-mc');
    expect(filtered.seeds).to.deep.equal(SEEDS);
    expect(filtered.values).to.deep.equal(gains);
    expect(filtered.estimate.mean).to.be.closeTo(5.6, 1e-9);
    expect(filtered.verdict).to.equal('shown');
    expect(filtered.context).to.equal('');

    const [hardSoft] = byId('hard-ge-soft-after-filtering');
    expect(hardSoft.values.map((v) => +v.toFixed(6))).to.deep.equal(softDiff.map((d) => -d));
    expect(hardSoft.verdict).to.equal('not shown');
    expect(hardSoft.margin).to.equal(HARD_SOFT_MARGIN_F1);
    expect(hardSoft.claim).to.contain(`margin ${HARD_SOFT_MARGIN_F1} points`);

    const [agg] = byId('aggregator-by-source');
    expect(agg.claim).to.contain('consensus hard');
    // (65 - 60) - (-1) = 6 in every seed: sd 0, the interval is the point.
    expect(agg.values).to.deep.equal([6, 6, 6, 6, 6]);
    expect(agg.verdict).to.equal('shown');
    expect(byId('f1-falls-with-threshold')).to.have.length(0);

    const out = join(root, 'report');
    await writeReport([join(root, 'labels')], { out, log: quiet });
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).to.contain("## The paper's findings");
    const row = md.split('\n').find((l) => l.startsWith('| consensus-filtered hard labels > MC hard labels'))!;
    expect(row).to.contain('| 7, 8, 9, 10, 11 |');
    expect(row).to.contain('| 5.6 ± 1.5 |');
    // 5.6 ± 2.776 * 1.517 / sqrt(5) = [3.7, 7.5]
    expect(row).to.contain('[3.7, 7.5]');
    expect(row).to.contain('**shown**');
    // Seeds are replicates: no "metrics against seed" plot, the headline bars instead.
    expect(existsSync(join(out, 'plots', 'metrics-vs-seed.svg'))).to.equal(false);
    expect(existsSync(join(out, 'plots', 'headline.svg'))).to.equal(true);
    const json = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as Finding[];
    expect(json.map((f) => f.id)).to.include.members(['filter-beats-mc', 'hard-ge-soft-after-filtering', 'aggregator-by-source']);
  });

  it('fits the F1 trend over MC thresholds per seed and calls a rise "reversed"', () => {
    const root = tempDir();
    const thresholds = [0, 0.25, 0.5, 0.75];
    const make = (sign: 1 | -1) =>
      Object.fromEntries(
        thresholds.map((t) => [`t${t}`, (_s: number, i: number) => ({ ...base, f1: 50 + sign * 20 * t + (i % 2), method: 'mc' as const, threshold: t })]),
      );
    fakeSweep(join(root, 'falls'), make(-1));
    const falls = paperFindings(collectInputs([join(root, 'falls')]).runs).filter((f) => f.id === 'f1-falls-with-threshold');
    expect(falls).to.have.length(1);
    // Slope -20 per unit threshold over a span of 0.75: -15 in every seed.
    for (const v of falls[0].values) expect(v).to.be.closeTo(-15, 1e-9);
    expect(falls[0].verdict).to.equal('shown');
    expect(falls[0].difference).to.contain('from threshold 0 to 6/8');

    fakeSweep(join(root, 'rises'), make(1));
    const rises = paperFindings(collectInputs([join(root, 'rises')]).runs).find((f) => f.id === 'f1-falls-with-threshold')!;
    expect(rises.verdict).to.equal('reversed');
  });

  it('states the threshold finding from two thresholds as their paired difference', () => {
    const root = tempDir();
    fakeSweep(join(root, 'two'), {
      t0: (_s, i) => ({ ...base, f1: 50 + i, method: 'mc' as const, threshold: 0 }),
      't0.75': (_s, i) => ({ ...base, f1: 58 + i + (i % 2), method: 'mc' as const, threshold: 0.75 }),
    });
    const [f] = paperFindings(collectInputs([join(root, 'two')]).runs).filter((x) => x.id === 'f1-falls-with-threshold');
    expect(f.values).to.deep.equal([8, 9, 8, 9, 8]);
    expect(f.verdict).to.equal('reversed');
    expect(f.difference).to.contain('over 2 thresholds');
  });

  it('keeps runs on different data apart: one finding per source size, named by it', () => {
    const root = tempDir();
    for (const problems of [2000, 8000]) {
      const dir = join(root, `p${problems}`);
      fakeSweep(
        dir,
        {
          'mc-hard': (_s, i) => ({ ...base, f1: 40 + i, method: 'mc' }),
          'consensus-hard': (_s, i) => ({ ...base, f1: 40 + i + (problems === 8000 ? 5 : -5), method: 'consensus' }),
        },
        { 'data.problems': problems },
      );
      // The source size is part of the recipe: rewrite it in each run's resolved recipe.
      for (const r of collectInputs([dir]).runs) {
        const path = join(r.dir, 'recipe.resolved.yaml');
        writeFileSync(path, readFileSync(path, 'utf8').replace('problems: 100', `problems: ${problems}`));
      }
    }
    const findings = paperFindings(collectInputs([join(root, 'p2000'), join(root, 'p8000')]).runs).filter((f) => f.id === 'filter-beats-mc');
    expect(findings.map((f) => [f.context, f.verdict])).to.deep.equal([
      ['data.problems=2000', 'reversed'],
      ['data.problems=8000', 'shown'],
    ]);
  });

  it('gives no interval for a single seed', () => {
    const dir = tempDir();
    writeFakeRun(join(dir, 'a'), { ...base, name: 'a', f1: 40, method: 'mc' });
    writeFakeRun(join(dir, 'b'), { ...base, name: 'b', f1: 45, method: 'consensus' });
    const [f] = paperFindings(collectInputs([join(dir, 'a'), join(dir, 'b')]).runs).filter((x) => x.id === 'filter-beats-mc');
    expect(f.values).to.deep.equal([5]);
    expect(f.verdict).to.equal('too few seeds');
  });
});

describe('report/findings: runs from before a schema key existed', () => {
  it('pairs a run without a newer key with runs that hold it at its default', () => {
    const root = tempDir();
    fakeSweep(root, {
      'mc-hard': (_s, i) => ({ ...base, f1: 40 + i, method: 'mc' }),
      'consensus-hard': (_s, i) => ({ ...base, f1: 45 + i, method: 'consensus' }),
    });
    // One run written by a newer prmkit: its resolved recipe names a key the others predate.
    const newer = collectInputs([root]).runs.find((r) => r.name.startsWith('consensus-hard') && r.name.endsWith('seed-11'))!;
    const path = join(newer.dir, 'recipe.resolved.yaml');
    writeFileSync(path, readFileSync(path, 'utf8').replace('train:\n', 'train:\n  group_by_length: true\n'));
    expect(readFileSync(path, 'utf8')).to.contain('group_by_length: true');
    const [f] = paperFindings(collectInputs([root]).runs).filter((x) => x.id === 'filter-beats-mc');
    expect(f.values).to.deep.equal([5, 5, 5, 5, 5]);

    // A key set away from its default still splits the runs.
    writeFileSync(path, readFileSync(path, 'utf8').replace('group_by_length: true', 'group_by_length: false'));
    const split = paperFindings(collectInputs([root]).runs).filter((x) => x.id === 'filter-beats-mc');
    expect(split.map((x) => x.values.length)).to.deep.equal([4]);
  });
});

describe('report/findings: runs started from recipes in different folders', () => {
  /** Names the run's model by a path relative to the recipe it was started with, as run.ts records it. */
  function startedFrom(runDir: string, recipeFile: string, modelPath: string): void {
    const path = join(runDir, 'recipe.resolved.yaml');
    const recipe = YAML.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, YAML.stringify({ ...recipe, model: { init: 'pretrained', path: modelPath } }));
    const manifest = { recipe: { name: 'x', files: [{ path: recipeFile, sha256: '' }] } };
    writeFileSync(join(runDir, 'manifest.json'), JSON.stringify(manifest));
  }

  it('pairs runs whose recipes name one model by different relative paths, and no others', () => {
    const root = tempDir();
    fakeSweep(root, {
      'mc-hard': (_s, i) => ({ ...base, f1: 40 + i, method: 'mc' }),
      'consensus-hard': (_s, i) => ({ ...base, f1: 46 + i, method: 'consensus' }),
    });
    const runs = collectInputs([root]).runs;
    for (const run of runs) {
      // MC runs started from ROOT/recipes/paper/x.yaml, consensus runs from ROOT/elsewhere/deep/y.yaml:
      // both name ROOT/checkpoints/base.
      if (run.name.startsWith('mc-hard')) startedFrom(run.dir, join(root, 'recipes', 'paper', 'x.yaml'), '../../checkpoints/base');
      else startedFrom(run.dir, join(root, 'elsewhere', 'deep', 'y.yaml'), '../../checkpoints/base/');
    }
    const [paired] = paperFindings(collectInputs([root]).runs).filter((x) => x.id === 'filter-beats-mc');
    expect(paired.values).to.deep.equal([6, 6, 6, 6, 6]);
    expect(paired.context).to.equal('');

    // The same relative text from another folder names another model: those runs stay apart.
    const moved = collectInputs([root]).runs.find((r) => r.name === 'consensus-hard_seed-11')!;
    startedFrom(moved.dir, join(root, 'elsewhere', 'y.yaml'), '../../checkpoints/base');
    const split = paperFindings(collectInputs([root]).runs).filter((x) => x.id === 'filter-beats-mc');
    expect(split.map((x) => x.values.length)).to.deep.equal([4]);
  });
});
