import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { SimEvalSummary } from '../eval/run-sim.js';
import { writeFileAtomic } from '../util/durable-fs.js';
import { bonCurveSpec, bonRules, devCurvesSpec, groupedBarSpec, renderSvg, stepScoreHistogramSpec, trainingLossSpec } from './plots.js';
import type { RunRecord } from './run-data.js';

/**
 * The pictures of one run's report.md (the same plotting module as the sweep reports): training
 * loss and dev curves, the step-score distributions of right and wrong steps, recall per error
 * kind, and Best-of-N accuracy against N. Each is written to RUN/plots/ and linked from the
 * report section it illustrates.
 */

export type RunPlotSection = 'training' | 'sim-test' | 'sim-bon';

export interface RunPlot {
  /** File name under plots/. */
  file: string;
  title: string;
  section: RunPlotSection;
  spec: TopLevelSpec;
}

type Row = Record<string, string | number | null>;

/** The baseline shown beside the PRM per error kind: what chance alone finds at its best threshold. */
export const KIND_BASELINE = 'random uniform, best threshold';

function stepScoreRows(s: SimEvalSummary): Row[] {
  const dist = s.processbench.step_scores;
  if (!dist) return [];
  const rows: Row[] = [];
  for (const [cls, counts] of [
    ['right steps', dist.right],
    ['first wrong steps', dist.wrong],
  ] as const) {
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) continue;
    counts.forEach((c, b) => rows.push({ class: `${cls} (${total})`, lo: dist.edges[b], hi: dist.edges[b + 1], share: (100 * c) / total }));
  }
  return rows;
}

function kindRows(scorers: [string, SimEvalSummary | undefined][]): Row[] {
  return scorers.flatMap(([name, s]) =>
    Object.entries(s?.processbench.by_kind ?? {})
      .filter(([, k]) => k.recall !== null)
      .map(([kind, k]) => ({ run: name, kind: `${kind.replace(/_/g, ' ')} (${k.n})`, value: k.recall })),
  );
}

/** The plots a run's data supports (none for a stage that did not run). */
export function runPlots(run: Pick<RunRecord, 'trainCurve' | 'devCurve' | 'evals' | 'bonCurves'>): RunPlot[] {
  const plots: RunPlot[] = [];
  const name = 'trained PRM';
  // With an auxiliary LM term the objective is drawn as its two parts: the step loss (the one the
  // dev loss measures) and the LM term.
  const loss: Row[] = run.trainCurve.flatMap((t) =>
    t.step_loss === undefined || t.lm_loss === undefined
      ? [{ run: name, step: t.step, loss: t.loss }]
      : [
          { run: 'step loss', step: t.step, loss: t.step_loss },
          { run: 'LM loss (weighted)', step: t.step, loss: t.lm_loss },
        ],
  );
  if (loss.length > 0) plots.push({ file: 'training-loss.svg', title: 'Training loss', section: 'training', spec: trainingLossSpec(loss) });
  const dev: Row[] = run.devCurve.flatMap((d) =>
    (
      [
        ['first-error F1 %', d.first_error_f1],
        ['step AUROC %', d.step_auroc],
        ['dev loss', d.dev_loss],
      ] as const
    )
      .filter(([, v]) => typeof v === 'number' && Number.isFinite(v))
      .map(([metric, value]) => ({ run: name, step: d.step, metric, value })),
  );
  if (dev.length > 0) plots.push({ file: 'dev-curves.svg', title: 'Dev evaluations during training', section: 'training', spec: devCurvesSpec(dev) });

  const sim = run.evals?.sim;
  if (sim) {
    const scores = stepScoreRows(sim.prm);
    if (scores.length > 0) {
      const auroc = sim.prm.processbench.step_scores?.auroc;
      const title = `Step scores of right steps and of first wrong steps (sim test; step AUROC ${typeof auroc === 'number' ? auroc.toFixed(1) : 'n/a'})`;
      plots.push({ file: 'step-scores.svg', title, section: 'sim-test', spec: stepScoreHistogramSpec(scores, title) });
    }
    const kinds = kindRows([
      [name, sim.prm],
      [KIND_BASELINE, sim.baselines[KIND_BASELINE]],
    ]);
    if (kinds.length > 0) {
      plots.push({
        file: 'recall-by-kind.svg',
        title: 'First error found, per error kind (sim test)',
        section: 'sim-test',
        spec: groupedBarSpec(kinds, { title: 'Recall of the first error per error kind', category: 'kind', categoryTitle: 'error kind (erroneous samples)', valueTitle: 'recall %', seriesTitle: 'scorer', barWidth: 36 }),
      });
    }
  }
  const simCurve = run.bonCurves.find((c) => c.set === 'sim')?.curve ?? [];
  if (simCurve.length > 0) {
    plots.push({ file: 'bon-vs-n.svg', title: 'Sim Best-of-N accuracy against N', section: 'sim-bon', spec: bonCurveSpec(bonRules(simCurve).map((p) => ({ run: name, ...p })), 'Sim Best-of-N: accuracy against N') });
  }
  return plots;
}

/** Renders the plots to DIR/plots/*.svg; returns what was written. */
export async function writeRunPlots(dir: string, plots: readonly RunPlot[]): Promise<Omit<RunPlot, 'spec'>[]> {
  if (plots.length === 0) return [];
  mkdirSync(join(dir, 'plots'), { recursive: true });
  const written: Omit<RunPlot, 'spec'>[] = [];
  for (const p of plots) {
    await writeFileAtomic(join(dir, 'plots', p.file), await renderSvg(p.spec));
    written.push({ file: p.file, title: p.title, section: p.section });
  }
  return written;
}
