import { join } from 'node:path';
import { addJsonlOutput } from '../data/jsonl.js';
import { AtomicOutputSet } from '../util/durable-fs.js';
import { coverage } from '../util/format.js';
import { markdownTable, pct } from './markdown.js';
import { loadPrmBench, type PrmBenchItem } from './prmbench-data.js';
import { prmBenchMetrics, stepCounts, type PrmBenchMetrics } from './prmbench-metrics.js';
import { readStepScoresFile } from './step-scores-file.js';
import { scoreNamingSamples, type StepScorer } from './step-scorer.js';

export interface PrmBenchRunOptions {
  /** Folder of PRMBench *.jsonl files (or one file). */
  data: string;
  /** A JSONL step-score file ({"id", "step_scores"}) with the loader's ids ... */
  scores?: string;
  /** ... or a PRM that scores the steps. */
  scorer?: StepScorer;
  /** A step is valid when its score > threshold (default 0.5). */
  threshold?: number;
  out: string;
}

export interface PrmBenchReport extends PrmBenchMetrics {
  /** Items in the data, and those left out as longer than the model context (listed). */
  n_items: number;
  n_too_long: number;
  too_long_ids: string[];
  /** Lines skipped as repeats of an id already loaded (the official loader keeps the first). */
  n_duplicate_lines: number;
  /** Error-step numbers outside their process (they match no step, as officially). */
  n_error_steps_out_of_range: number;
}

export interface PrmBenchRunResult {
  report: PrmBenchReport;
  markdown: string;
  files: { metrics: string; predictions: string };
}

/** `prmkit eval prmbench`: scores (from a file or a model) -> metrics.json + predictions.jsonl. */
export async function runPrmBench(opts: PrmBenchRunOptions): Promise<PrmBenchRunResult> {
  if ((opts.scores === undefined) === (opts.scorer === undefined)) {
    throw new Error('runPrmBench: give exactly one of scores (a file) and scorer (a model)');
  }
  const threshold = opts.threshold ?? 0.5;
  const data = await loadPrmBench(opts.data);
  const items = data.items;
  let stepScores: (number[] | null)[];
  if (opts.scores !== undefined) {
    stepScores = await readStepScoresFile(opts.scores, items);
  } else {
    const samples = items.map((it) => ({ id: it.id, problem: it.problem, steps: it.steps }));
    stepScores = (await scoreNamingSamples(opts.scorer as StepScorer, samples, 'score prmbench')).stepScores;
  }
  const scored: { item: PrmBenchItem; scores: number[] }[] = [];
  const tooLong: string[] = [];
  items.forEach((item, i) => {
    const s = stepScores[i];
    if (s === null) tooLong.push(item.id);
    else scored.push({ item, scores: s });
  });
  const metrics = prmBenchMetrics(
    scored.map(({ item, scores }) => ({ classification: item.classification, errorSteps: item.errorSteps, stepScores: scores })),
    threshold,
  );
  const report: PrmBenchReport = {
    ...metrics,
    n_items: items.length,
    n_too_long: tooLong.length,
    too_long_ids: tooLong,
    n_duplicate_lines: data.duplicates.length,
    n_error_steps_out_of_range: data.errorStepsOutOfRange,
  };

  const files = { metrics: join(opts.out, 'metrics.json'), predictions: join(opts.out, 'predictions.jsonl') };
  // Both files are put in place together, and only once complete (durable-fs).
  const outputs = new AtomicOutputSet();
  try {
    await outputs.addFile(files.metrics, `${JSON.stringify(report, null, 2)}\n`);
    await addJsonlOutput(
      outputs,
      files.predictions,
      items.map((item, i) => {
        const s = stepScores[i];
        return {
          id: item.id,
          classification: item.classification,
          error_steps: item.errorSteps,
          step_scores: s,
          ...(s === null ? { too_long: true } : { valid: s.map((x) => x > threshold), counts: stepCounts(item.errorSteps, s.map((x) => x > threshold)) }),
        };
      }),
    );
    await outputs.commit();
  } catch (err) {
    await outputs.discard();
    throw err;
  }
  return { report, markdown: prmBenchMarkdown(report), files };
}

/** The per-class PRMScore table with the overall figures, as markdown. */
export function prmBenchMarkdown(report: PrmBenchReport): string {
  const rows = Object.entries(report.classes).map(([name, score]) => {
    const d = report.class_details[name];
    return [name, String(d.n), pct(d.f1), pct(d.negative_f1), pct(score)];
  });
  for (const [group, score] of Object.entries(report.groups)) rows.push([`*${group}* (mean)`, '', '', '', pct(score)]);
  const o = report.overall;
  rows.push([`**overall** (over ${coverage(report.n, report.n_items)} items)`, String(o.n), pct(o.f1), pct(o.negative_f1), pct(report.prmscore)]);
  const parts = [
    `PRMBench (a step is valid when its score > ${report.threshold}; PRMScore = 0.5 F1 + 0.5 negative F1, multi_solutions F1 only)`,
    '',
    markdownTable(['class', 'items', 'F1', 'negative F1', 'PRMScore'], rows),
  ];
  const correct = report.class_details.correct;
  if (correct) parts.push('', `Error-free originals ("correct", ${correct.n} items, not in the overall figures): F1 ${pct(correct.f1)}`);
  if (report.n_too_long > 0) parts.push('', `Left out as longer than the model context: ${report.n_too_long} of ${report.n_items} items; the figures above are over the rest only.`);
  return parts.join('\n');
}
