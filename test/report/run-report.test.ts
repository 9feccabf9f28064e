import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import YAML from 'yaml';
import type { Recipe } from '../../src/recipes/schema.js';
import { devCurvesSpec, trainingLossSpec } from '../../src/report/plots.js';
import { runPlots } from '../../src/report/run-plots.js';
import { loadRun } from '../../src/report/run-data.js';
import { runReportStage } from '../../src/run/report-stage.js';
import { writeFakeRun } from './fake-run.js';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fakeRunDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'prmkit-run-report-'));
  made.push(root);
  const dir = join(root, 'run');
  writeFakeRun(dir, { name: 'r', f1: 44, bonProd: 66, labelPrecision: 0.9, retention: 0.55 });
  return dir;
}

type Layer = { mark: { type: string; interpolate?: string }; transform?: Record<string, unknown>[] };

describe('report: a run report with pictures', () => {
  it('draws logged losses as points with a LOESS line over them, never a line through the points', () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ run: 'a', step: 10 * (i + 1), loss: i % 3 === 0 ? 2 : 0.1 }));
    const spec = trainingLossSpec([...rows, { run: 'b', step: 10, loss: 1 }]) as unknown as { data: { values: unknown[] }; layer: Layer[] };
    // Every logged value is a point: the data are the rows themselves.
    expect(spec.data.values).to.have.length(13);
    const [points, line] = spec.layer;
    expect(points.mark.type).to.equal('point');
    expect(points.transform).to.equal(undefined);
    expect(line.mark.type).to.equal('line');
    expect(line.mark.interpolate).to.equal(undefined);
    const loess = line.transform!.find((t) => 'loess' in t)!;
    expect(loess).to.include({ loess: 'loss', on: 'step' });
    // Run b has one point: too few to smooth, so it is left out of the line layer.
    expect(line.transform![0]).to.deep.equal({ filter: { field: 'run', oneOf: ['a'] } });
    expect(spec.layer.some((l) => l.mark.type === 'line' && !l.transform)).to.equal(false);
  });

  it('smooths dev curves per metric panel', () => {
    const rows = [50, 100, 150, 200].flatMap((step) => [
      { run: 'a', step, metric: 'dev loss', value: 1 / step },
      { run: 'a', step, metric: 'step AUROC %', value: step / 4 },
    ]);
    const spec = devCurvesSpec(rows) as unknown as { spec: { layer: Layer[] } };
    const loess = spec.spec.layer[1].transform!.find((t) => 'loess' in t) as { groupby: string[] };
    expect(loess.groupby).to.include.members(['series', 'run', 'metric']);
  });

  it('draws a run with the auxiliary LM term as its step loss and its LM term', () => {
    const run = loadRun(fakeRunDir());
    const trainCurve = run.trainCurve.map((t) => ({ ...t, step_loss: 0.7 * t.loss, lm_loss: 0.3 * t.loss }));
    const plot = runPlots({ ...run, trainCurve }).find((p) => p.file === 'training-loss.svg')!;
    const values = (plot.spec as unknown as { data: { values: { run: string; step: number; loss: number }[] } }).data.values;
    expect(values).to.have.length(2 * trainCurve.length);
    const series = (name: string) => values.filter((v) => v.run === name).map((v) => [v.step, v.loss]);
    expect(series('step loss')).to.deep.equal(trainCurve.map((t) => [t.step, t.step_loss]));
    expect(series('LM loss (weighted)')).to.deep.equal(trainCurve.map((t) => [t.step, t.lm_loss]));
  });

  it('builds the plots from what the run has: curves, step scores, recall per kind, Best-of-N', () => {
    const plots = runPlots(loadRun(fakeRunDir()));
    expect(plots.map((p) => [p.file, p.section])).to.deep.equal([
      ['training-loss.svg', 'training'],
      ['dev-curves.svg', 'training'],
      ['step-scores.svg', 'sim-test'],
      ['recall-by-kind.svg', 'sim-test'],
      ['bon-vs-n.svg', 'sim-bon'],
    ]);
    const rows = (file: string) => (plots.find((p) => p.file === file)!.spec as unknown as { data: { values: Record<string, unknown>[] } }).data.values;
    // Step scores as shares of each class: right steps 1, 2, 10, 87 of 100.
    const right = rows('step-scores.svg').filter((r) => String(r.class).startsWith('right'));
    expect(right.map((r) => r.share)).to.deep.equal([1, 2, 10, 87]);
    expect(right[0].class).to.equal('right steps (100)');
    expect(rows('step-scores.svg').filter((r) => String(r.class).startsWith('first wrong')).map((r) => r.share)).to.deep.equal([60, 20, 12, 8]);
    // Recall per kind for the PRM and for random scores (the fake baseline has the same figures).
    const kinds = rows('recall-by-kind.svg');
    expect(kinds.filter((r) => r.run === 'trained PRM').map((r) => [r.kind, r.value])).to.deep.equal([
      ['arithmetic (20)', 90],
      ['wrong operand (15)', 40],
      ['skipped step (10)', 20],
      ['repeated step (5)', 0],
    ]);
  });

  it('writes the plots beside report.md and links each one from its section', async () => {
    const dir = fakeRunDir();
    const recipe = YAML.parse(readFileSync(join(dir, 'recipe.resolved.yaml'), 'utf8')) as Recipe;
    await runReportStage({ runDir: dir, recipe, baseDir: dir, resume: false, backend: 'cpu', log: () => {}, progress: false });
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    const links = [...md.matchAll(/!\[[^\]]*\]\((plots\/[^)]+\.svg)\)/g)].map((m) => m[1]);
    expect(links).to.deep.equal(['plots/training-loss.svg', 'plots/dev-curves.svg', 'plots/step-scores.svg', 'plots/recall-by-kind.svg', 'plots/bon-vs-n.svg']);
    for (const link of links) {
      expect(existsSync(join(dir, link)), link).to.equal(true);
      expect(XMLValidator.validate(readFileSync(join(dir, link), 'utf8')), link).to.equal(true);
    }
    // Each picture sits in the section it illustrates.
    const section = (link: string) => md.slice(0, md.indexOf(link)).match(/^## .*$/gm)!.pop();
    expect(section('plots/training-loss.svg')).to.equal('## Training');
    expect(section('plots/recall-by-kind.svg')).to.match(/^## Sim step-error test/);
    expect(section('plots/bon-vs-n.svg')).to.match(/^## Sim Best-of-8/);
    // The per-kind table: PRM and random recall per kind, the constant score left out.
    expect(md).to.contain('| error kind | erroneous samples | **trained PRM** recall % | random uniform, best threshold recall % |');
    expect(md).to.contain('| wrong operand | 15 | 40.0 | 40.0 |');
    expect(md).to.contain('Step AUROC of the trained PRM on this test (right steps against first wrong steps): 91.5.');
    const svg = readFileSync(join(dir, 'plots', 'recall-by-kind.svg'), 'utf8');
    for (const kind of ['arithmetic', 'wrong operand', 'skipped step', 'repeated step']) expect(svg).to.contain(kind);
  });
});
