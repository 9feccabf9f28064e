import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { collectInputs } from '../../src/report/collect.js';
import { renderSvg, trainingLossSpec } from '../../src/report/plots.js';
import { writeReport } from '../../src/report/report.js';
import { meanSd } from '../../src/report/seeds.js';
import { loadRun, readMetricsJsonl } from '../../src/report/run-data.js';
import { writeFakeRun } from './fake-run.js';

const quiet = () => {};
const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-report-'));
  made.push(dir);
  return dir;
}

/** Every plot referenced from report.md, read and checked to be a well-formed SVG document. */
function referencedSvgs(outDir: string): { file: string; svg: string }[] {
  const md = readFileSync(join(outDir, 'report.md'), 'utf8');
  const links = [...md.matchAll(/!\[[^\]]*\]\((plots\/[^)]+\.svg)\)/g)].map((m) => m[1]);
  return links.map((file) => {
    expect(existsSync(join(outDir, file)), `${file} exists`).to.equal(true);
    const svg = readFileSync(join(outDir, file), 'utf8');
    const valid = XMLValidator.validate(svg);
    expect(valid, `${file} is well-formed XML: ${JSON.stringify(valid)}`).to.equal(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as Record<string, { '@_xmlns'?: string; '@_width'?: string }>;
    expect(doc.svg, `${file} has an <svg> root`).to.be.an('object');
    expect(doc.svg['@_xmlns']).to.equal('http://www.w3.org/2000/svg');
    expect(Number(doc.svg['@_width'])).to.be.greaterThan(50);
    return { file, svg };
  });
}

describe('report/run-data', () => {
  it('reads the headline metrics of a run directory, including each BoN aggregator', () => {
    const dir = join(tempDir(), 'run');
    writeFakeRun(dir, { name: 'r', f1: 44, bonProd: 66, labelPrecision: 0.9, retention: 0.55, processbench: { gsm8k: 50, math: 40 }, bonSets: ['gsm8k', 'math'] });
    const run = loadRun(dir);
    expect(run.finished).to.equal(true);
    expect(run.metrics.sim_processbench_f1).to.equal(44);
    expect(run.metrics.sim_bon_prm_at_n).to.equal(66);
    expect(run.metrics.sim_bon_prm_at_n_last).to.equal(60);
    expect(run.metrics.label_first_error_precision).to.equal(0.9);
    expect(run.metrics.retained).to.equal(0.55);
    expect(run.metrics.train_samples).to.equal(90);
    expect(run.metrics.dev_samples).to.equal(10);
    expect(run.metrics.labelled_samples).to.equal(55);
    expect(run.metrics.processbench_avg_f1).to.equal(45);
    expect(run.metrics.processbench_f1_math).to.equal(40);
    expect(run.metrics.bon_prm_at_n_prod).to.equal(62.5);
    expect(run.bonCurves.map((c) => c.set)).to.deep.equal(['sim', 'gsm8k', 'math']);
    expect(run.trainCurve).to.have.length(7);
    expect(run.devCurve.map((d) => d.step)).to.deep.equal([10, 20, 30]);
  });

  it('metrics.jsonl: keeps the last row of a step (resumed runs) and skips a torn last line', () => {
    const path = join(tempDir(), 'metrics.jsonl');
    writeFileSync(path, ['{"kind":"train","step":1,"loss":2,"lr":0}', '{"kind":"train","step":2,"loss":1.5,"lr":0}', '{"kind":"train","step":2,"loss":1.4,"lr":0}', '{"kind":"tr'].join('\n'));
    const { train } = readMetricsJsonl(path);
    expect(train.map((t) => [t.step, t.loss])).to.deep.equal([
      [1, 2],
      [2, 1.4],
    ]);
    writeFileSync(path, ['{"kind":"train","step":1,"loss":2,"lr":0}', 'not json', '{"kind":"train","step":2,"loss":1,"lr":0}', ''].join('\n'));
    expect(() => readMetricsJsonl(path)).to.throw(/metrics\.jsonl:2: not valid JSON/);
  });
});

describe('report/plots', () => {
  it('renders a Vega-Lite spec to a standalone SVG headless', async () => {
    const svg = await renderSvg(trainingLossSpec([
      { run: 'a', step: 1, loss: 1 },
      { run: 'a', step: 2, loss: 0.5 },
      { run: 'b', step: 1, loss: 0.9 },
    ]));
    expect(XMLValidator.validate(svg)).to.equal(true);
    expect(svg).to.match(/<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).to.contain('Training loss');
    expect(svg).to.match(/<path[^>]+d="M/);
  });
});

describe('report/report', () => {
  it('writes report.md with valid SVG plots for a sweep directory, params as columns and a numeric-param plot', async () => {
    const sweep = tempDir();
    const thresholds = [0, 0.25, 0.5];
    const points = thresholds.map((t) => ({ name: `threshold-${t}`, variant: null, params: { 'labels.threshold': t } }));
    writeFileSync(join(sweep, 'sweep.json'), JSON.stringify({ recipe: '/x/threshold.yaml', recipe_name: 'thr', set: [], variants: [], grid: [{ key: 'labels.threshold', values: thresholds }], random: null, total: 3, points, updated_at: '' }));
    thresholds.forEach((t, i) => writeFakeRun(join(sweep, 'runs', `threshold-${t}`), { name: `threshold-${t}`, f1: 40 - 10 * i, bonProd: 60 - i, labelPrecision: 0.6 + 0.1 * i, retention: 1, method: 'mc', point: { params: { 'labels.threshold': t } } }));
    const result = await writeReport([sweep], { out: sweep, log: quiet });
    const md = readFileSync(result.markdownPath, 'utf8');
    expect(md).to.contain('3 finished run(s) of 3 planned');
    expect(md).to.match(/\| run \| labels\.threshold \|/);
    expect(md).to.match(/\| threshold-0\.25 \| 0\.25 \| 90 \/ 10 \| 70\.0 \| 85\.0 \| 100\.0 \| 35\.0 \| 30\.0 \| 59\.0 \|/);
    const svgs = referencedSvgs(sweep);
    expect(svgs.map((s) => s.file)).to.include.members(['plots/metrics-vs-labels_threshold.svg', 'plots/training-loss.svg', 'plots/dev-curves.svg', 'plots/bon-vs-n-sim.svg', 'plots/f1-by-subset.svg', 'plots/labels.svg']);
    expect(result.plots).to.have.length(svgs.length);
    // The MC source differs per run, so the label plot names each by its run.
    expect(svgs.find((s) => s.file === 'plots/labels.svg')!.svg).to.contain('mc (threshold-0.25)');
    const summary = JSON.parse(readFileSync(result.summaryPath, 'utf8')) as { name: string; params: Record<string, unknown>; metrics: Record<string, number> }[];
    expect(summary.map((s) => s.name)).to.deep.equal(points.map((p) => p.name));
    expect(summary[2].params).to.deep.equal({ 'labels.threshold': 0.5 });
    expect(summary[2].metrics.sim_processbench_f1).to.equal(20);
  });

  it('merges the shards of a sweep kept in separate directories and lists the missing points', async () => {
    const root = tempDir();
    const points = ['a', 'b', 'c', 'd'].map((name) => ({ name, variant: name, params: { 'labels.method': name === 'a' ? 'mc' : 'consensus' } }));
    const sweepJson = JSON.stringify({ recipe: '/x/r.yaml', recipe_name: 'r', set: [], variants: [], grid: [], random: null, total: 4, points, updated_at: '' });
    for (const shard of [0, 1]) {
      const dir = join(root, `shard${shard}`);
      writeFakeRun(join(dir, 'runs', points[shard].name), { name: points[shard].name, f1: 30 + shard, bonProd: 50, labelPrecision: 0.7, retention: 0.5, point: { params: points[shard].params, variant: points[shard].name } });
      writeFileSync(join(dir, 'sweep.json'), sweepJson);
    }
    // Shard 2 has a run that did not finish (no report.md, no eval marker).
    writeFakeRun(join(root, 'shard2', 'runs', 'c'), { name: 'c', f1: 1, bonProd: 1, labelPrecision: 0.7, retention: 0.5, point: { params: points[2].params, variant: 'c' } });
    writeFileSync(join(root, 'shard2', 'sweep.json'), sweepJson);
    rmSync(join(root, 'shard2', 'runs', 'c', 'report.md'));
    const collected = collectInputs([join(root, 'shard0'), join(root, 'shard1'), join(root, 'shard2')]);
    expect(collected.runs.map((r) => r.name)).to.deep.equal(['a', 'b']);
    expect(collected.unfinished.map((r) => r.name)).to.deep.equal(['c']);
    expect(collected.missing.map((p) => p.name)).to.deep.equal(['c', 'd']);
    const out = join(root, 'merged');
    const result = await writeReport([join(root, 'shard0'), join(root, 'shard1'), join(root, 'shard2')], { out, log: quiet });
    const md = readFileSync(result.markdownPath, 'utf8');
    expect(md).to.contain('2 finished run(s) of 4 planned');
    expect(md).to.contain('Not finished yet (2): `c`, `d`');
    expect(result.missing).to.equal(2);
    referencedSvgs(out);
    // Without a numeric parameter the headline plot is a bar chart per run.
    expect(existsSync(join(out, 'plots', 'headline.svg'))).to.equal(true);
  });

  it('tables mean ± sd over seeds when a sweep is repeated with --grid seed=...', async () => {
    const root = tempDir();
    // The plain sweep (recipe seed 1) and its repeat with seeds 8 and 9: three replicates each.
    const f1 = { mc: [30, 40, 50], consensus: [60, 62, 64] } as const;
    for (const method of ['mc', 'consensus'] as const) {
      const params = { 'labels.method': method };
      writeFakeRun(join(root, 'plain', 'runs', method), { name: method, f1: f1[method][0], bonProd: 50, labelPrecision: 0.7, retention: 1, method, point: { params, variant: method } });
      [8, 9].forEach((seed, i) => {
        const name = `${method}_seed-${seed}`;
        writeFakeRun(join(root, 'seeds', 'runs', name), { name, f1: f1[method][i + 1], bonProd: 50 + 2 * i, labelPrecision: 0.7, retention: 1, method, point: { params: { ...params, seed }, variant: method } });
      });
    }
    // A lone run is not a replicate of anything.
    writeFakeRun(join(root, 'plain', 'runs', 'judge'), { name: 'judge', f1: 10, bonProd: 50, labelPrecision: 0.7, retention: 1, method: 'judge', point: { params: { 'labels.method': 'judge' }, variant: 'judge' } });
    const out = join(root, 'merged');
    const result = await writeReport([join(root, 'plain'), join(root, 'seeds')], { out, log: quiet });
    const md = readFileSync(result.markdownPath, 'utf8');
    expect(md).to.contain('## Over seeds');
    // mc: mean 40, sd 10; consensus: mean 62, sd 2; prm@8 (prod) 50, 50, 52 -> 50.7 ± 1.2.
    expect(md).to.match(/\| mc \| 3 \| 1, 8, 9 \| [^|]+ \| 70\.0 ± 0\.0 \| 100\.0 ± 0\.0 \| 40\.0 ± 10\.0 \| 50\.7 ± 1\.2 \|/);
    expect(md).to.match(/\| consensus \| 3 \| 1, 8, 9 \| [^|]+ \| 70\.0 ± 0\.0 \| 100\.0 ± 0\.0 \| 62\.0 ± 2\.0 \|/);
    const seedSection = md.slice(md.indexOf('## Over seeds'), md.indexOf('## Plots'));
    expect(seedSection).to.contain('| mc | 3 | 1, 8, 9 |');
    expect(seedSection).to.not.contain('| judge |');
  });

  it('pools runs as replicates only when their resolved recipes are equal but for the seed', async () => {
    const root = tempDir();
    // Two unrelated plain runs (no sweep: no variant, no parameters) with different seeds.
    writeFakeRun(join(root, 'real'), { name: 'real-data', f1: 20, bonProd: 50, labelPrecision: 0.954, retention: 1, seed: 0, recipe: { data: { source: 'file', path: 'gsm8k.jsonl' } } });
    writeFakeRun(join(root, 'quick'), { name: 'quickstart', f1: 60, bonProd: 70, labelPrecision: 0.7, retention: 0.5, seed: 1 });
    let md = readFileSync((await writeReport([join(root, 'real'), join(root, 'quick')], { out: join(root, 'r1'), log: quiet })).markdownPath, 'utf8');
    expect(md).to.not.contain('## Over seeds');
    // The same recipe with another seed and another name is a replicate.
    writeFakeRun(join(root, 'quick2'), { name: 'quickstart-again', f1: 64, bonProd: 72, labelPrecision: 0.7, retention: 0.5, seed: 2 });
    md = readFileSync((await writeReport([join(root, 'real'), join(root, 'quick'), join(root, 'quick2')], { out: join(root, 'r2'), log: quiet })).markdownPath, 'utf8');
    const start = md.indexOf('## Over seeds');
    const section = md.slice(start, md.indexOf('\n## ', start + 1));
    expect(section).to.match(/\| quickstart \| 2 \| 1, 2 \|/);
    expect(section).to.contain('62.0 ± 2.8');
    expect(section).to.not.contain('real-data');
  });

  it('shows no spread for a figure only one replicate has', () => {
    const one = meanSd([95.4, null]);
    expect(one).to.deep.equal({ mean: 95.4, sd: null, n: 1 });
    expect(meanSd([1, 3])?.sd).to.be.closeTo(Math.SQRT2, 1e-12);
  });

  it('has no seed table when no configuration ran with two seeds', async () => {
    const dir = join(tempDir(), 'one');
    writeFakeRun(dir, { name: 'one', f1: 50, bonProd: 60, labelPrecision: 0.9, retention: 0.4 });
    const result = await writeReport([dir], { out: join(dir, 'report'), log: quiet });
    expect(readFileSync(result.markdownPath, 'utf8')).to.not.contain('## Over seeds');
  });

  it('reports real ProcessBench subsets and Best-of-N sets when a run has them', async () => {
    const dir = join(tempDir(), 'real');
    writeFakeRun(dir, { name: 'real', f1: 50, bonProd: 60, labelPrecision: 0.9, retention: 0.4, processbench: { gsm8k: 70, math: 60, olympiadbench: 50, omnimath: 40 }, bonSets: ['gsm8k', 'math'] });
    const out = join(dir, 'report');
    await writeReport([dir], { out, log: quiet });
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).to.contain('## ProcessBench F1 per subset');
    expect(md).to.match(/\| real \| 70\.0 \| 60\.0 \| 50\.0 \| 40\.0 \| 55\.0 \|/);
    expect(md).to.contain('## Best-of-N per set and aggregator');
    const files = referencedSvgs(out).map((s) => s.file);
    expect(files).to.include('plots/bon-vs-n.svg');
    const f1 = readFileSync(join(out, 'plots', 'f1-by-subset.svg'), 'utf8');
    for (const subset of ['sim', 'gsm8k', 'omnimath']) expect(f1).to.contain(subset);
  });
});
