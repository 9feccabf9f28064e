import { mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { markdownTable, pct } from '../eval/markdown.js';
import { collectInputs, type Collected } from './collect.js';
import { findingsMarkdown, paperFindings, type Finding } from './findings.js';
import { bonCurveSpec, bonRules, devCurvesSpec, groupedBarSpec, metricsVsParamSpec, renderSvg, trainingLossSpec } from './plots.js';
import type { BonCurve, RunRecord } from './run-data.js';
import { meanSd, seedGroups, seedOf } from './seeds.js';
import { coverage } from '../util/format.js';
import type { TopLevelSpec } from 'vega-lite';
import type { SummaryEntry } from '../sweep/summary.js';
import { percent } from '../util/format.js';
import { AtomicOutputSet } from '../util/durable-fs.js';

/**
 * `prmkit report`: one markdown report with SVG plots over any number of runs and sweeps
 * (shards merged): a summary table of the headline metrics, training and dev curves, Best-of-N
 * accuracy against N per aggregator, step-error F1 per subset, label precision and retention
 * per label source, and the metrics against a numeric sweep parameter.
 */

export interface ReportOptions {
  out: string;
  title?: string;
  log?: (line: string) => void;
}

export interface ReportResult {
  markdownPath: string;
  summaryPath: string;
  /** SVG files written, relative to the output directory. */
  plots: string[];
  runs: number;
  missing: number;
}

type Row = Record<string, string | number | null>;

const fraction = (x: number | null | undefined) => percent(x, { sign: false, missing: '-' });

function valueText(v: unknown): string {
  if (Array.isArray(v)) return v.map(valueText).join(', ');
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Parameter keys whose value differs between runs (the columns worth showing). */
function varyingKeys(runs: readonly RunRecord[]): string[] {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))];
  return keys.filter((k) => new Set(runs.map((r) => JSON.stringify(r.params[k] ?? null))).size > 1);
}

function simN(runs: readonly RunRecord[]): string {
  const n = runs.find((r) => r.evals?.sim)?.evals?.sim?.prm.bon.n;
  return n === undefined ? 'N' : String(n);
}

function summaryTable(runs: readonly RunRecord[], seconds: Record<string, number>): string {
  const keys = varyingKeys(runs);
  const hasSim = runs.some((r) => r.evals?.sim);
  const hasPb = runs.some((r) => r.evals?.processbench);
  const hasBon = runs.some((r) => r.evals?.bon);
  const n = simN(runs);
  const hasTruth = runs.some((r) => typeof r.metrics.label_first_error_precision === 'number');
  const header = [
    'run',
    ...keys,
    'train / dev samples',
    ...(hasTruth ? ['label precision %', 'label F1 %'] : []),
    'retained %',
    'dev F1',
    ...(hasSim ? ['sim step-error F1', `sim prm@${n} (prod)`, 'best baseline F1'] : []),
    ...(hasPb ? ['ProcessBench avg F1'] : []),
    ...(hasBon ? ['BoN prm@N avg (prod)'] : []),
    'time',
  ];
  const rows = runs.map((r) => {
    const m = r.metrics;
    const secs = seconds[r.name] ?? Object.values(r.stageSeconds).reduce((a, b) => a + (b ?? 0), 0);
    return [
      r.name,
      // A point that did not set the seed ran with the recipe's.
      ...keys.map((k) => (k in r.params ? valueText(r.params[k]) : k === 'seed' ? String(seedOf(r) ?? '-') : '-')),
      typeof m.train_samples === 'number' ? `${m.train_samples} / ${m.dev_samples ?? '-'}` : '-',
      ...(hasTruth ? [fraction(m.label_first_error_precision), fraction(m.label_first_error_f1)] : []),
      fraction(m.retained),
      pct(m.dev_first_error_f1),
      ...(hasSim ? [pct(m.sim_processbench_f1), pct(m.sim_bon_prm_at_n), pct(m.sim_baseline_best_f1)] : []),
      ...(hasPb ? [`${pct(m.processbench_avg_f1)}${partialCoverage(m.processbench_n, m.processbench_n_total)}`] : []),
      ...(hasBon ? [`${pct(m.bon_prm_at_n)}${typeof m.bon_random_pick === 'number' ? ` (random ${pct(m.bon_random_pick)})` : ''}`] : []),
      secs > 0 ? `${(secs / 60).toFixed(1)} min` : '-',
    ];
  });
  return markdownTable(header, rows);
}

/** " (over 354 of 400)" when an average leaves samples out; nothing when it covers them all. */
function partialCoverage(n: number | null | undefined, total: number | null | undefined): string {
  return typeof n === 'number' && typeof total === 'number' && n < total ? ` (over ${coverage(n, total)})` : '';
}

/** Mean ± sd over seeds per configuration, when some configuration ran with several seeds. */
function seedTable(runs: readonly RunRecord[]): string | null {
  const groups = seedGroups(runs);
  if (groups.length === 0) return null;
  const hasSim = runs.some((r) => r.evals?.sim);
  const n = simN(runs);
  const cell = (values: (number | null | undefined)[], scale = 1) => {
    const s = meanSd(values.map((v) => (typeof v === 'number' ? v * scale : v)));
    if (s === null) return '-';
    // A figure only some replicates have has no spread worth a ± when one run has it.
    const partial = s.n < values.length ? ` (n=${s.n})` : '';
    return s.sd === null ? `${s.mean.toFixed(1)}${partial}` : `${s.mean.toFixed(1)} ± ${s.sd.toFixed(1)}${partial}`;
  };
  const metric = (g: (typeof groups)[number], key: string) => g.runs.map((r) => r.metrics[key]);
  const header = ['configuration', 'n', 'seeds', 'train samples', 'label precision %', 'retained %', ...(hasSim ? ['sim step-error F1', `sim prm@${n} (prod)`, `sim prm@${n} (min)`] : []), ...(runs.some((r) => r.evals?.processbench) ? ['ProcessBench avg F1'] : [])];
  const rows = groups.map((g) => [
    g.label,
    String(g.runs.length),
    g.seeds.join(', '),
    cell(metric(g, 'train_samples')).replace(/\.0 ± /, ' ± '),
    cell(metric(g, 'label_first_error_precision'), 100),
    cell(metric(g, 'retained'), 100),
    ...(hasSim ? [cell(metric(g, 'sim_processbench_f1')), cell(metric(g, 'sim_bon_prm_at_n')), cell(metric(g, 'sim_bon_prm_at_n_min'))] : []),
    ...(header.includes('ProcessBench avg F1') ? [cell(metric(g, 'processbench_avg_f1'))] : []),
  ]);
  return markdownTable(header, rows);
}

/** Label sources of every run; a source whose figures are the same in several runs is shown once. */
function labelRows(runs: readonly RunRecord[]): { source: string; runs: string[]; input: number; output: number; retention: number | null; precision: number | null; recall: number | null; f1: number | null }[] {
  const rows = new Map<string, { source: string; runs: string[]; input: number; output: number; retention: number | null; precision: number | null; recall: number | null; f1: number | null }>();
  for (const run of runs) {
    for (const [source, s] of Object.entries(run.labels?.sources ?? {})) {
      const key = JSON.stringify([source, s.input, s.output, s.precision, s.recall]);
      const row = rows.get(key);
      if (row) row.runs.push(run.name);
      else rows.set(key, { source, runs: [run.name], input: s.input, output: s.output, retention: s.retention, precision: s.precision, recall: s.recall, f1: s.f1 });
    }
  }
  // A source with several distinct figures (e.g. MC at several thresholds) is named by its runs.
  const counts = new Map<string, number>();
  for (const r of rows.values()) counts.set(r.source, (counts.get(r.source) ?? 0) + 1);
  return [...rows.values()].map((r) => ({ ...r, source: (counts.get(r.source) ?? 0) > 1 ? `${r.source} (${r.runs.length === 1 ? r.runs[0] : `${r.runs[0]} +${r.runs.length - 1}`})` : r.source }));
}

/** The mean curve over a run's real candidate sets (the paper averages its 7 sets). */
function averageRealCurve(curves: readonly BonCurve[]): { n: number; rule: string; accuracy: number }[] {
  const real = curves.filter((c) => c.set !== 'sim');
  if (real.length === 0) return [];
  const sums = new Map<string, { n: number; rule: string; total: number; count: number }>();
  for (const c of real) {
    for (const p of bonRules(c.curve)) {
      const key = `${p.n}\u0000${p.rule}`;
      const s = sums.get(key) ?? { n: p.n, rule: p.rule, total: 0, count: 0 };
      s.total += p.accuracy;
      s.count += 1;
      sums.set(key, s);
    }
  }
  // Only N values every set reached, so the mean is over the same sets at every point.
  return [...sums.values()].filter((s) => s.count === real.length).map((s) => ({ n: s.n, rule: s.rule, accuracy: s.total / s.count }));
}

function isNumeric(values: unknown[]): boolean {
  return values.length > 1 && values.every((v) => typeof v === 'number' && Number.isFinite(v));
}

const HEADLINE_PLOT_METRICS: [key: string, title: string, scale: number][] = [
  ['sim_processbench_f1', 'sim step-error F1 %', 1],
  ['sim_bon_prm_at_n', 'sim BoN prm@N (prod) %', 1],
  ['label_first_error_precision', 'label precision %', 100],
  ['label_first_error_f1', 'label F1 %', 100],
  ['retained', 'samples retained %', 100],
  ['processbench_avg_f1', 'ProcessBench avg F1 %', 1],
  ['bon_prm_at_n', 'BoN prm@N avg %', 1],
];

interface PlotJob {
  file: string;
  title: string;
  spec: TopLevelSpec;
}

function plotJobs(c: Collected): PlotJob[] {
  const runs = c.runs;
  const jobs: PlotJob[] = [];
  const headlineRows = (run: RunRecord) =>
    HEADLINE_PLOT_METRICS.flatMap(([key, title, scale]) => {
      const v = run.metrics[key];
      return typeof v === 'number' ? [{ metric: title, value: v * scale }] : [];
    });

  // Metrics against a numeric sweep parameter when there is one; otherwise bars per run.
  const keys = varyingKeys(runs);
  // The seed is a replicate, not a setting: runs over seeds are read in the "Over seeds" table.
  const numericKey = keys.find((k) => k !== 'seed' && isNumeric(runs.map((r) => r.params[k])));
  if (numericKey) {
    const others = keys.filter((k) => k !== numericKey);
    // A variant names its series; other keys join the name only where they vary within a variant.
    const variesWithin = (k: string) =>
      runs.some((a) => runs.some((b) => a.variant === b.variant && JSON.stringify(a.params[k]) !== JSON.stringify(b.params[k])));
    const rows: Row[] = runs.flatMap((run) => {
      const extra = others.filter((k) => !run.variant || variesWithin(k)).map((k) => `${k.split('.').pop()}=${valueText(run.params[k])}`);
      const series = [run.variant, ...extra].filter(Boolean).join(' ') || 'all';
      return headlineRows(run).map((h) => ({ x: run.params[numericKey] as number, series, ...h }));
    });
    const xs = runs.map((r) => r.params[numericKey] as number);
    const logScale = Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) >= 16;
    if (rows.length > 0) jobs.push({ file: `metrics-vs-${numericKey.replace(/[^A-Za-z0-9_-]+/g, '_')}.svg`, title: `Headline metrics against ${numericKey}`, spec: metricsVsParamSpec(rows, { param: numericKey, logScale }) });
  } else {
    const rows: Row[] = runs.flatMap((run) => headlineRows(run).map((h) => ({ run: run.name, ...h })));
    if (rows.length > 0) jobs.push({ file: 'headline.svg', title: 'Headline metrics per run', spec: groupedBarSpec(rows, { title: 'Headline metrics', category: 'metric', categoryTitle: '', valueTitle: '%', facet: undefined }) });
  }

  // The step loss, so runs with and without an auxiliary LM term compare.
  const lossRows: Row[] = runs.flatMap((run) => run.trainCurve.map((t) => ({ run: run.name, step: t.step, loss: t.step_loss ?? t.loss })));
  if (lossRows.length > 0) jobs.push({ file: 'training-loss.svg', title: 'Training loss', spec: trainingLossSpec(lossRows) });

  const devRows: Row[] = runs.flatMap((run) =>
    run.devCurve.flatMap((d) =>
      (
        [
          ['first-error F1 %', d.first_error_f1],
          ['step AUROC %', d.step_auroc],
          ['dev loss', d.dev_loss],
        ] as const
      )
        .filter(([, v]) => typeof v === 'number')
        .map(([metric, value]) => ({ run: run.name, step: d.step, metric, value })),
    ),
  );
  if (devRows.length > 0) jobs.push({ file: 'dev-curves.svg', title: 'Dev evaluations during training', spec: devCurvesSpec(devRows) });

  const simBon: Row[] = runs.flatMap((run) => bonRules(run.bonCurves.find((b) => b.set === 'sim')?.curve ?? []).map((p) => ({ run: run.name, ...p })));
  if (simBon.length > 0) jobs.push({ file: 'bon-vs-n-sim.svg', title: 'Sim Best-of-N accuracy against N, per aggregator', spec: bonCurveSpec(simBon, 'Sim Best-of-N: accuracy against N') });
  const realBon: Row[] = runs.flatMap((run) => averageRealCurve(run.bonCurves).map((p) => ({ run: run.name, ...p })));
  if (realBon.length > 0) jobs.push({ file: 'bon-vs-n.svg', title: 'Best-of-N accuracy against N (mean over the candidate sets), per aggregator', spec: bonCurveSpec(realBon, 'Best-of-N: accuracy against N') });

  const f1Rows: Row[] = runs.flatMap((run) => {
    const rows: Row[] = [];
    const sim = run.evals?.sim?.prm.processbench.f1;
    if (typeof sim === 'number') rows.push({ run: run.name, subset: 'sim', value: sim });
    for (const [subset, f1] of Object.entries(run.evals?.processbench?.subsets ?? {})) if (typeof f1 === 'number') rows.push({ run: run.name, subset, value: f1 });
    return rows;
  });
  if (f1Rows.length > 0) jobs.push({ file: 'f1-by-subset.svg', title: 'Step-error F1 per subset', spec: groupedBarSpec(f1Rows, { title: 'Step-error F1 per subset', category: 'subset', categoryTitle: 'subset', valueTitle: 'F1 %' }) });

  const kindRows: Row[] = runs.flatMap((run) =>
    Object.entries(run.evals?.sim?.prm.processbench.by_kind ?? {})
      .filter(([, k]) => k.recall !== null)
      .map(([kind, k]) => ({ run: run.name, kind: kind.replace(/_/g, ' '), value: k.recall })),
  );
  if (kindRows.length > 0) {
    jobs.push({
      file: 'recall-by-kind.svg',
      title: 'Sim test: first errors found per error kind',
      spec: groupedBarSpec(kindRows, { title: 'Recall of the first error per error kind', category: 'kind', categoryTitle: 'error kind', valueTitle: 'recall %' }),
    });
  }

  const labelPlotRows: Row[] = labelRows(runs).flatMap((l) =>
    (
      [
        ['first-error precision %', l.precision],
        ['retention %', l.retention],
      ] as const
    )
      .filter(([, v]) => typeof v === 'number')
      .map(([metric, v]) => ({ run: l.source, source: l.source, metric, value: 100 * (v as number) })),
  );
  // Without a truth there is no precision to compare, and one retention bar says nothing a table does not.
  const labelSources = labelRows(runs);
  if (labelSources.some((l) => l.precision !== null) && labelSources.length > 1) {
    jobs.push({
      file: 'labels.svg',
      title: 'Label first-error precision (against the sim truth) and retention, per label source',
      spec: groupedBarSpec(labelPlotRows, { title: 'Labels: precision and retention per source', category: 'source', categoryTitle: 'label source', valueTitle: '%', facet: 'metric' }),
    });
  }
  return jobs;
}

function renderMarkdown(c: Collected, plots: { file: string; title: string }[], title: string, findings: readonly Finding[]): string {
  const runs = c.runs;
  const parts: string[] = [`# ${title}`, ''];
  for (const s of c.sweeps) {
    const grid = s.grid.map((a) => `\`${a.key}\` ∈ {${a.values.map(valueText).join(', ')}}`).join(', ');
    const variants = s.variants.map((v) => `\`${v.name}\``).join(', ');
    parts.push(`Sweep \`${s.recipeName}\` (${s.recipe}) in ${s.dir}: ${s.points.length} point(s)${variants ? `; variants ${variants}` : ''}${grid ? `; grid ${grid}` : ''}.`);
  }
  if (c.sweeps.length > 0) parts.push('');
  const total = Object.values(c.seconds).reduce((a, b) => a + b, 0);
  parts.push(
    `${runs.length} finished run(s)${c.plan.length > 0 ? ` of ${c.plan.length} planned` : ''}${total > 0 ? `; their runs took ${(total / 60).toFixed(1)} min in all` : ''}.`,
    '',
  );
  if (c.missing.length > 0) {
    parts.push(
      `Not finished yet (${c.missing.length}): ${c.missing.map((p) => `\`${p.name}\``).join(', ')}. Run the remaining shards, or \`prmkit sweep\` again on the same --out (finished points are not redone).`,
      '',
    );
  }
  for (const w of c.warnings) parts.push(`> warning: ${w}`, '');
  if (runs.length === 0) return parts.join('\n');

  parts.push('## Summary', '', summaryTable(runs, c.seconds), '');
  const simWords = runs.some((r) => r.evals?.sim);
  parts.push(
    'Train / dev samples = samples trained on and held out for dev evaluation; retained = share of labelled samples kept for training; ' +
      'dev F1 = first-error F1 on the dev split at the threshold that maximises it there. ' +
      (simWords
        ? 'Label precision = share of flagged first errors at the true step (sim truth); label F1 = the labels\' own step-error F1 against the truth ' +
          '(harmonic mean of their accuracy on erroneous and on correct samples). ' +
          'Sim step-error F1: the trained PRM on the truth-labelled sim test (ProcessBench metric); the best baseline is the best of constant and random scores.'
        : ''),
    '',
  );

  const seeds = seedTable(runs);
  if (seeds) {
    parts.push(
      '## Over seeds',
      '',
      'Runs whose resolved recipes are equal but for the seed are replicates of one configuration (the seed sets the sim data, the train/dev split, the initial weights and the batch order; the test sets stay fixed): mean ± sample standard deviation over the n runs; a figure that only one of them has is shown alone with (n=1).',
      '',
      seeds,
      '',
    );
  }

  if (findings.length > 0) {
    parts.push(
      "## The paper's findings",
      '',
      'Each finding is a difference between runs that share the seed (so the same source data, split, initial weights and batch order) and differ only in ' +
        'their labels; one difference per seed. The interval is the 95% t interval over seeds (mean ± t(0.975, n−1)·sd/√n): the seed is the unit of ' +
        'replication, and its spread is the noise a finding must beat. **shown**: the interval lies on the paper\'s side of 0; **reversed**: on the other ' +
        'side; **not shown**: it covers 0. A claim of "at least as good" is a non-inferiority test against a margin fixed in advance (stated in the ' +
        'claim): shown when the interval lies above −margin, reversed when below it. Also in findings.json.',
      '',
      findingsMarkdown(findings),
      '',
    );
  }

  const plotMap = new Map(plots.map((p) => [p.file, p]));
  const embed = (file: string) => {
    const p = plotMap.get(file);
    if (p) parts.push(`### ${p.title}`, '', `![${p.title}](plots/${p.file})`, '');
  };
  parts.push('## Plots', '');
  for (const p of plots) embed(p.file);

  const labels = labelRows(runs);
  if (labels.length > 0) {
    const withTruth = labels.some((l) => l.precision !== null || l.recall !== null);
    parts.push(
      '## Label sources',
      '',
      markdownTable(
        ['source', 'runs', 'samples in', 'samples out', 'retention %', ...(withTruth ? ['precision %', 'recall %', 'F1 %'] : [])],
        labels.map((l) => [l.source, l.runs.join(', '), String(l.input), String(l.output), fraction(l.retention), ...(withTruth ? [fraction(l.precision), fraction(l.recall), fraction(l.f1)] : [])]),
      ),
      '',
    );
  }

  const simRuns = runs.filter((r) => r.evals?.sim);
  if (simRuns.length > 0) {
    const aggs = [...new Set(simRuns.flatMap((r) => Object.keys(r.evals!.sim!.prm.bon.prm_at_n)))];
    const n = simN(runs);
    parts.push(
      `## Sim Best-of-${n} per aggregator`,
      '',
      markdownTable(
        ['run', `pass@${n}`, `maj@${n}`, ...aggs.map((a) => `prm@${n} ${a}`), 'min on last step %'],
        simRuns.map((r) => {
          const b = r.evals!.sim!.prm.bon;
          return [r.name, pct(b.pass_at_n), pct(b.maj_at_n), ...aggs.map((a) => pct((b.prm_at_n as Record<string, number | undefined>)[a])), pct(b.min_at_last_step)];
        }),
      ),
      '',
    );
    parts.push(
      "### The paper's §3.2 analyses",
      '',
      'Do the PRMs grade the process or the answer? **Extracted step-error accuracy**: the share of erroneous sim test samples whose final answer is ' +
        'nevertheless right that the PRM flags at the true first wrong step (a PRM that grades answers misses them). **Picks with the minimum on the ' +
        `last step**: the share of prm@${n} picks whose lowest step score is their last step (a PRM that grades answers puts its doubt there).`,
      '',
      markdownTable(
        ['run', 'sim step-error F1', 'extracted step-error acc. % (n)', ...aggs.map((a) => `picks with min on last step % (${a})`), 'all responses with min on last step %'],
        simRuns.map((r) => {
          const pb = r.evals!.sim!.prm.processbench;
          const b = r.evals!.sim!.prm.bon;
          return [
            r.name,
            pct(pb.f1),
            pb.extracted_accuracy === undefined ? '-' : `${pct(pb.extracted_accuracy)} (${pb.n_extracted})`,
            ...aggs.map((a) => pct(b.picked_min_at_last_step?.[a as keyof typeof b.picked_min_at_last_step])),
            pct(b.min_at_last_step),
          ];
        }),
      ),
      '',
    );
    const baselines = simRuns[0].evals!.sim!.baselines;
    if (Object.keys(baselines).length > 0) {
      parts.push(
        'Trivial baselines on the same sim sets (the same in every run):',
        '',
        markdownTable(
          ['scorer', 'step-error F1', `prm@${n} (prod)`],
          Object.entries(baselines).map(([name, b]) => [name, pct(b.processbench.f1), pct(b.bon.prm_at_n.prod)]),
        ),
        '',
      );
    }
  }
  const pbRuns = runs.filter((r) => r.evals?.processbench);
  if (pbRuns.length > 0) {
    const subsets = [...new Set(pbRuns.flatMap((r) => Object.keys(r.evals!.processbench!.subsets)))];
    parts.push(
      '## ProcessBench F1 per subset',
      '',
      markdownTable(['run', ...subsets, 'average'], pbRuns.map((r) => [r.name, ...subsets.map((s) => pct(r.evals!.processbench!.subsets[s])), pct(r.evals!.processbench!.avg_f1)])),
      '',
    );
  }
  const bonRuns = runs.filter((r) => r.evals?.bon);
  if (bonRuns.length > 0) {
    const aggs = [...new Set(bonRuns.flatMap((r) => Object.values(r.evals!.bon!.sets).flatMap((s) => Object.keys(s.prm_at_n))))];
    parts.push(
      '## Best-of-N per set and aggregator',
      '',
      markdownTable(
        ['run', 'set', 'pass@N', 'maj@N', ...aggs.map((a) => `prm@N ${a}`)],
        bonRuns.flatMap((r) => Object.entries(r.evals!.bon!.sets).map(([set, s]) => [r.name, set, pct(s.pass_at_n), pct(s.maj_at_n), ...aggs.map((a) => pct(s.prm_at_n[a]))])),
      ),
      '',
    );
  }
  parts.push('## Runs', '', markdownTable(['run', 'directory', 'backend', 'parameters'], runs.map((r) => [r.name, r.dir, r.manifest?.backend.name ?? '-', Object.entries(r.params).map(([k, v]) => `${k}=${valueText(v)}`).join(' ') || '-'])), '');
  return parts.join('\n');
}

/**
 * Writes OUT/report.md, OUT/plots/*.svg, OUT/findings.json and OUT/summary.json (the merged
 * `{name, params, metrics}` list), all committed together: a report that fails or is killed
 * midway leaves the previous report whole.
 */
export async function writeReport(inputs: readonly string[], opts: ReportOptions): Promise<ReportResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = resolve(opts.out);
  const collected = collectInputs(inputs);
  mkdirSync(join(out, 'plots'), { recursive: true });
  const outputs = new AtomicOutputSet();
  const written: { file: string; title: string }[] = [];
  const markdownPath = join(out, 'report.md');
  const summaryPath = join(out, 'summary.json');
  try {
    for (const job of plotJobs(collected)) {
      await outputs.addFile(join(out, 'plots', job.file), await renderSvg(job.spec));
      written.push({ file: job.file, title: job.title });
    }
    const title = opts.title ?? (collected.sweeps.length > 0 ? `prmkit sweep report: ${[...new Set(collected.sweeps.map((s) => s.recipeName))].join(', ')}` : 'prmkit report');
    const findings = paperFindings(collected.runs);
    await outputs.addFile(markdownPath, renderMarkdown(collected, written, title, findings));
    await outputs.addFile(join(out, 'findings.json'), `${JSON.stringify(findings, null, 2)}\n`);
    const summary: SummaryEntry[] = collected.runs.map((r) => ({
      name: r.name,
      variant: r.variant,
      params: r.params,
      metrics: r.metrics,
      run_dir: relative(out, r.dir),
      seconds: collected.seconds[r.name] ?? null,
    }));
    await outputs.addFile(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  } catch (err) {
    await outputs.discard();
    throw err;
  }
  await outputs.commit();
  for (const w of collected.warnings) log(`report: warning: ${w}`);
  log(`report: ${collected.runs.length} run(s), ${written.length} plot(s) -> ${markdownPath}`);
  return { markdownPath, summaryPath, plots: written.map((p) => join('plots', p.file)), runs: collected.runs.length, missing: collected.missing.length };
}
