import { join } from 'node:path';
import { AtomicOutputSet } from '../util/durable-fs.js';
import { simBonCandidates, simProcessBench, type SimWorldOptions } from '../sim/world.js';
import type { Aggregator } from './aggregate.js';
import { bonCurveMarkdown, bonMarkdown, evaluateBonSet } from './bon.js';
import type { BonMetrics } from './bon-metrics.js';
import { evaluateProcessBench, processBenchMarkdown, type ProcessBenchReport, type ThresholdOption } from './processbench.js';
import { scoreCandidates, writeBonOutputs } from './run-bon.js';
import { writeProcessBenchOutputs } from './run-processbench.js';
import { markdownTable, pct } from './markdown.js';
import { recallByKind, stepScoreDistribution, type KindRecall, type StepScoreDistribution } from './sim-diagnostics.js';
import { scoreNamingSamples, type StepScorer } from './step-scorer.js';

export interface SimEvalOptions {
  scorer: StepScorer;
  /** Sim world knobs (problem difficulty, policy); default the sim defaults. */
  world?: SimWorldOptions;
  /** Samples of the step-error set and problems of the Best-of-N set. */
  problems: number;
  /** Policy samples per Best-of-N problem. */
  n: number;
  seed: number;
  threshold?: ThresholdOption;
  aggregators?: Aggregator[];
  bootstrap?: { resamples?: number; seed?: number };
  out: string;
}

export interface SimEvalSummary {
  seed: number;
  backend: string;
  processbench: {
    n: number;
    f1: number | null;
    acc_error: number | null;
    acc_correct: number | null;
    threshold: number;
    /** Accuracy on erroneous samples whose final answer is right ("extracted ProcessBench", §3.2), and their count. */
    extracted_accuracy?: number | null;
    n_extracted?: number;
    /** 95% bootstrap interval of f1 (runs before it was added lack it). */
    f1_ci?: [number, number] | null;
    /** Recall of the first error per error kind (runs before these were added lack it). */
    by_kind?: Record<string, KindRecall>;
    /** Scores of right steps against first wrong steps (histogram and AUROC). */
    step_scores?: StepScoreDistribution;
  };
  bon: Pick<BonMetrics, 'n_problems' | 'n' | 'pass_at_n' | 'maj_at_n' | 'prm_at_n' | 'weighted_vote' | 'min_at_last_step'> &
    Partial<Pick<BonMetrics, 'random_pick' | 'constant_score' | 'picked_min_at_last_step'>>;
}

/**
 * Both benchmarks on the synthetic world, where every label is the truth: a balanced
 * step-error set (simProcessBench, subset "sim") and N policy samples per problem
 * (simBonCandidates). Writes DIR/processbench/, DIR/bon/ and DIR/summary.json.
 */
export async function runSimEval(opts: SimEvalOptions): Promise<SimEvalResult> {
  // Both benchmarks' files and the summary are put in place together, once all are done.
  const outputs = new AtomicOutputSet();
  try {
    const result = await evaluateSim(opts, outputs);
    await outputs.commit();
    return result;
  } catch (err) {
    await outputs.discard();
    throw err;
  }
}

type SimEvalResult = { summary: SimEvalSummary; processbench: ProcessBenchReport; bon: BonMetrics; markdown: string };

async function evaluateSim(opts: SimEvalOptions, outputs: AtomicOutputSet): Promise<SimEvalResult> {
  const pbSamples = simProcessBench(opts.problems, opts.seed, opts.world);
  const pbScores = await scoreNamingSamples(opts.scorer, pbSamples, 'score sim step-error set');
  const { report, predictions } = evaluateProcessBench(pbSamples, pbScores.stepScores, {
    threshold: opts.threshold ?? 0.5,
    thresholdSubset: 'sim',
  });
  await writeProcessBenchOutputs(join(opts.out, 'processbench'), report, predictions, outputs);

  const candidates = simBonCandidates(opts.problems, opts.n, opts.seed, opts.world);
  const scores = await scoreCandidates(candidates, opts.scorer, { n: opts.n, label: 'score sim Best-of-N' });
  const aggregators = opts.aggregators ?? ['min', 'prod', 'last', 'mean', 'geomean'];
  const { metrics, graded } = evaluateBonSet(candidates, scores, {
    n: opts.n,
    aggregators,
    bootstrap: opts.bootstrap,
    label: 'grade sim Best-of-N',
  });
  await writeBonOutputs(join(opts.out, 'bon'), metrics, graded, outputs);

  const sim = report.subsets.sim;
  const summary: SimEvalSummary = {
    seed: opts.seed,
    backend: opts.scorer.backend,
    processbench: {
      n: sim.n,
      f1: sim.f1,
      acc_error: sim.acc_error,
      acc_correct: sim.acc_correct,
      threshold: report.threshold,
      f1_ci: report.ci?.subsets.sim ?? null,
      extracted_accuracy: report.extracted_accuracy,
      n_extracted: report.n_extracted,
      by_kind: recallByKind(pbSamples, predictions),
      step_scores: stepScoreDistribution(pbSamples, pbScores.stepScores),
    },
    bon: {
      n_problems: metrics.n_problems,
      n: metrics.n,
      pass_at_n: metrics.pass_at_n,
      maj_at_n: metrics.maj_at_n,
      prm_at_n: metrics.prm_at_n,
      weighted_vote: metrics.weighted_vote,
      random_pick: metrics.random_pick,
      constant_score: metrics.constant_score,
      min_at_last_step: metrics.min_at_last_step,
      picked_min_at_last_step: metrics.picked_min_at_last_step,
    },
  };
  await outputs.addFile(join(opts.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const markdown = [
    processBenchMarkdown(report),
    '',
    kindRecallMarkdown(summary.processbench.by_kind ?? {}, summary.processbench.step_scores?.auroc ?? null),
    '',
    `Best-of-${opts.n} on the sim world`,
    '',
    bonMarkdown([{ name: 'sim', row: metrics }], aggregators),
    '',
    bonCurveMarkdown(metrics),
  ].join('\n');
  return { summary, processbench: report, bon: metrics, markdown };
}

/** The per-kind recall as a markdown table, with the step AUROC of right against first wrong steps. */
export function kindRecallMarkdown(byKind: Record<string, KindRecall>, stepAuroc: number | null): string {
  const rows = Object.entries(byKind).map(([kind, k]) => [kind, String(k.n), pct(k.recall)]);
  return [`First error found, by its kind (step AUROC, right vs first wrong steps: ${pct(stepAuroc)})`, '', markdownTable(['error kind', 'erroneous samples', 'recall %'], rows)].join('\n');
}
