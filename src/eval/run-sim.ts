import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { simBonCandidates, simProcessBench, type SimWorldOptions } from '../sim/world.js';
import type { Aggregator } from './aggregate.js';
import { bonCurveMarkdown, bonMarkdown, evaluateBonSet } from './bon.js';
import type { BonMetrics } from './bon-metrics.js';
import { evaluateProcessBench, processBenchMarkdown, type ProcessBenchReport, type ThresholdOption } from './processbench.js';
import { scoreCandidates, writeBonOutputs } from './run-bon.js';
import { writeProcessBenchOutputs } from './run-processbench.js';
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
  processbench: { n: number; f1: number | null; acc_error: number | null; acc_correct: number | null; threshold: number };
  bon: Pick<BonMetrics, 'n_problems' | 'n' | 'pass_at_n' | 'maj_at_n' | 'prm_at_n' | 'weighted_vote' | 'min_at_last_step'>;
}

/**
 * Both benchmarks on the synthetic world, where every label is the truth: a balanced
 * step-error set (simProcessBench, subset "sim") and N policy samples per problem
 * (simBonCandidates). Writes DIR/processbench/, DIR/bon/ and DIR/summary.json.
 */
export async function runSimEval(opts: SimEvalOptions): Promise<{ summary: SimEvalSummary; processbench: ProcessBenchReport; bon: BonMetrics; markdown: string }> {
  const pbSamples = simProcessBench(opts.problems, opts.seed, opts.world);
  const pbScores = await scoreNamingSamples(opts.scorer, pbSamples, 'score sim step-error set');
  const { report, predictions } = evaluateProcessBench(pbSamples, pbScores.stepScores, {
    threshold: opts.threshold ?? 0.5,
    thresholdSubset: 'sim',
  });
  await writeProcessBenchOutputs(join(opts.out, 'processbench'), report, predictions);

  const candidates = simBonCandidates(opts.problems, opts.n, opts.seed, opts.world);
  const scores = await scoreCandidates(candidates, opts.scorer, { n: opts.n, label: 'score sim Best-of-N' });
  const aggregators = opts.aggregators ?? ['min', 'prod', 'last', 'mean', 'geomean'];
  const { metrics, graded } = evaluateBonSet(candidates, scores, {
    n: opts.n,
    aggregators,
    bootstrap: opts.bootstrap,
    label: 'grade sim Best-of-N',
  });
  await writeBonOutputs(join(opts.out, 'bon'), metrics, graded);

  const sim = report.subsets.sim;
  const summary: SimEvalSummary = {
    seed: opts.seed,
    backend: opts.scorer.backend,
    processbench: { n: sim.n, f1: sim.f1, acc_error: sim.acc_error, acc_correct: sim.acc_correct, threshold: report.threshold },
    bon: {
      n_problems: metrics.n_problems,
      n: metrics.n,
      pass_at_n: metrics.pass_at_n,
      maj_at_n: metrics.maj_at_n,
      prm_at_n: metrics.prm_at_n,
      weighted_vote: metrics.weighted_vote,
      min_at_last_step: metrics.min_at_last_step,
    },
  };
  await mkdir(opts.out, { recursive: true });
  await writeFile(join(opts.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const markdown = [
    processBenchMarkdown(report),
    '',
    `Best-of-${opts.n} on the sim world`,
    '',
    bonMarkdown([{ name: 'sim', row: metrics }], aggregators),
    '',
    bonCurveMarkdown(metrics),
  ].join('\n');
  return { summary, processbench: report, bon: metrics, markdown };
}
