import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStepScorer } from '../eval/model-scorer.js';
import { runBon } from '../eval/run-bon.js';
import { runProcessBench } from '../eval/run-processbench.js';
import { runPrmBench } from '../eval/run-prmbench.js';
import { runSimEval, type SimEvalSummary } from '../eval/run-sim.js';
import type { StepScorer } from '../eval/step-scorer.js';
import type { StepSample } from '../data/types.js';
import { chooseThreshold, type F1Intervals } from '../eval/processbench-metrics.js';
import type { EvalConfig } from '../recipes/schema.js';
import { firstNegative } from '../train/dev-metrics.js';
import { coverage } from '../util/format.js';
import { hashString, Rng } from '../util/rng.js';
import { recipePath, type RunContext } from './context.js';
import { simWorldOptions } from './data-stage.js';

/** Where a benchmark's threshold came from: a number in the recipe, the dev split, or the test itself. */
export type ThresholdSource = 'fixed' | 'dev' | 'auto';

export interface EvalSummary {
  /** How the sim step-error threshold was chosen, and its value. */
  threshold?: { source: ThresholdSource; value: number | 'auto'; dev_f1?: number; dev_samples?: number };
  sim?: { prm: SimEvalSummary; baselines: Record<string, SimEvalSummary> };
  processbench?: {
    avg_f1: number | null;
    threshold: number;
    threshold_source?: ThresholdSource;
    subsets: Record<string, number | null>;
    /** 95% bootstrap intervals of each subset's F1 and of the average. */
    ci?: F1Intervals;
    /** Samples the average is over, and the benchmark's samples (the rest did not fit the context). */
    n?: number;
    n_total?: number;
  };
  prmbench?: {
    prmscore: number | null;
    threshold: number;
    threshold_source?: ThresholdSource;
    n: number;
    n_total?: number;
    classes: Record<string, number | null>;
    groups: Record<string, number | null>;
  };
  bon?: {
    sets: Record<string, { pass_at_n: number; maj_at_n: number; prm_at_n: Record<string, number>; rm_at_n?: number | null; random_pick?: number; constant_score?: number; n?: number; n_problems?: number }>;
    average?: Record<string, unknown>;
  };
}

/**
 * Trivial scorers the trained PRM must beat: a constant score for every step (1: "never an
 * error"; 0: "the first step is wrong") and a uniform random score, seeded by the sample's text
 * so every run scores the same sample the same way.
 */
export function constantScorer(value: number): StepScorer {
  return {
    backend: 'none',
    async score(samples) {
      return { stepScores: samples.map((s) => s.steps.map(() => value)), tooLong: [] };
    },
    dispose() {},
  };
}

export function randomScorer(seed: number): StepScorer {
  return {
    backend: 'none',
    async score(samples) {
      const stepScores = samples.map((s) => {
        const rng = new Rng(hashString(`${seed}\u0000${s.problem}\u0000${s.steps.join('\u0000')}`));
        return s.steps.map(() => rng.next());
      });
      return { stepScores, tooLong: [] };
    },
    dispose() {},
  };
}

/**
 * The baselines of the report. A constant score predicts the same first error for every sample
 * whatever the threshold (none, or step 0), so one constant suffices; random scores are shown
 * at their best threshold on the test itself (an upper bound) and at the PRM convention 0.5.
 */
export const BASELINES: { name: string; make: (seed: number) => StepScorer; threshold: number | 'auto' }[] = [
  { name: 'constant score', make: () => constantScorer(1), threshold: 'auto' },
  { name: 'random uniform, best threshold', make: (seed) => randomScorer(seed), threshold: 'auto' },
  { name: 'random uniform, threshold 0.5', make: (seed) => randomScorer(seed), threshold: 0.5 },
];

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/**
 * The threshold that maximises first-error F1 on the dev split (labels: the first negative
 * label of each sample), scored by the model under evaluation.
 */
export async function devThreshold(scorer: StepScorer, dev: readonly StepSample[]): Promise<{ threshold: number; f1: number; n: number } | null> {
  const labelled = dev.filter((s) => s.labels && s.labels.length > 0);
  if (labelled.length === 0) return null;
  const shown = labelled.map((s) => ({ problem: s.problem, steps: s.steps.slice(0, s.labels!.length) }));
  const { stepScores } = await scorer.score(shown, 'score dev split');
  const items = labelled
    .map((s, i) => ({ subset: 'dev', label: firstNegative(s.labels!), stepScores: stepScores[i] }))
    .filter((it): it is { subset: string; label: number; stepScores: number[] } => it.stepScores !== null);
  const errors = items.filter((it) => it.label !== -1).length;
  if (errors === 0 || errors === items.length) return null;
  const choice = chooseThreshold(items, 'dev');
  return { threshold: choice.threshold, f1: choice.f1, n: items.length };
}

/** Evaluates the final model: sim benchmarks (with baselines), real ProcessBench, PRMBench and BoN when configured. */
export async function runEvalStage(ctx: RunContext, cfg: EvalConfig, modelDir: string, dev: readonly StepSample[] = []): Promise<EvalSummary> {
  const evalDir = join(ctx.runDir, 'eval');
  mkdirSync(evalDir, { recursive: true });
  const summary: EvalSummary = {};
  const scorer = await openStepScorer(modelDir, { backend: ctx.backend, batchTokens: cfg.max_tokens_per_batch });
  try {
    // The dev threshold is chosen once, by the model under evaluation, for every benchmark that asks for it.
    let devChoice: { threshold: number; f1: number; n: number } | null | undefined;
    const devThresholdOnce = async () => {
      if (devChoice === undefined) {
        devChoice = await devThreshold(scorer, dev);
        if (devChoice) ctx.log(`eval: threshold ${devChoice.threshold.toFixed(4)} chosen on the dev split (${devChoice.n} samples, dev first-error F1 ${devChoice.f1.toFixed(1)})`);
        else ctx.log('eval: no dev split with both erroneous and correct samples; the dev threshold falls back to 0.5');
      }
      return devChoice;
    };
    /** A benchmark's threshold option made concrete: a number, or `auto` for the benchmark to choose. */
    const resolveThreshold = async (option: number | 'auto' | 'dev'): Promise<{ value: number | 'auto'; source: ThresholdSource }> => {
      if (option === 'auto') return { value: 'auto', source: 'auto' };
      if (option !== 'dev') return { value: option, source: 'fixed' };
      const chosen = await devThresholdOnce();
      return chosen ? { value: chosen.threshold, source: 'dev' } : { value: 0.5, source: 'fixed' };
    };
    const simThreshold = await resolveThreshold(cfg.threshold);
    const threshold = simThreshold.value;
    summary.threshold =
      simThreshold.source === 'dev' && devChoice
        ? { source: 'dev', value: devChoice.threshold, dev_f1: devChoice.f1, dev_samples: devChoice.n }
        : { source: simThreshold.source, value: simThreshold.value };
    if (cfg.sim) {
      const sim = cfg.sim;
      // The test comes from the same world (difficulty knobs) the data stage generated.
      const world = ctx.recipe.data?.source === 'sim' ? simWorldOptions(ctx.recipe.data.world) : undefined;
      const common = { problems: sim.samples, n: sim.n, seed: sim.seed, world };
      const prm = await runSimEval({ ...common, threshold, scorer, out: join(evalDir, 'sim') });
      ctx.log(`eval: sim step-error F1 ${fmt(prm.summary.processbench.f1)}, sim BoN prm@${sim.n} (prod) ${fmt(prm.summary.bon.prm_at_n.prod)}`);
      const baselines: Record<string, SimEvalSummary> = {};
      if (sim.baselines) {
        for (const b of BASELINES) {
          const result = await runSimEval({ ...common, threshold: b.threshold, scorer: b.make(sim.seed), out: join(evalDir, 'baselines', slug(b.name)) });
          baselines[b.name] = result.summary;
          ctx.log(`eval: baseline ${b.name}: sim step-error F1 ${fmt(result.summary.processbench.f1)}`);
        }
      }
      summary.sim = { prm: prm.summary, baselines };
    }
    if (cfg.processbench) {
      const pb = cfg.processbench;
      const th = await resolveThreshold(pb.threshold ?? cfg.threshold);
      const result = await runProcessBench({
        data: recipePath(ctx, pb.path),
        subsets: pb.subsets,
        scorer,
        threshold: th.value,
        out: join(evalDir, 'processbench'),
      });
      const r = result.report;
      const subsets: Record<string, number | null> = {};
      for (const [name, m] of Object.entries(r.subsets)) subsets[name] = m.f1;
      summary.processbench = { avg_f1: r.avg_f1, threshold: r.threshold, threshold_source: th.source, subsets, ci: r.ci, n: r.n, n_total: r.n + r.n_too_long };
      ctx.log(`eval: ProcessBench avg F1 ${fmt(r.avg_f1)} over ${coverage(r.n, r.n + r.n_too_long)} samples (threshold ${thresholdText(r.threshold, th.source)})`);
    }
    if (cfg.prmbench) {
      // PRMBench has no threshold chosen on the test; `auto` there means the benchmark's own 0.5.
      const option = cfg.prmbench.threshold ?? (cfg.threshold === 'auto' ? 0.5 : cfg.threshold);
      const th = await resolveThreshold(option);
      const result = await runPrmBench({
        data: recipePath(ctx, cfg.prmbench.path),
        scorer,
        threshold: th.value === 'auto' ? 0.5 : th.value,
        out: join(evalDir, 'prmbench'),
      });
      const r = result.report;
      summary.prmbench = { prmscore: r.prmscore, threshold: r.threshold, threshold_source: th.source, n: r.n, n_total: r.n_items, classes: r.classes, groups: r.groups };
      ctx.log(`eval: PRMBench PRMScore ${fmt(r.prmscore)} over ${coverage(r.n, r.n_items)} items (threshold ${thresholdText(r.threshold, th.source)})`);
    }
    if (cfg.bon) {
      const result = await runBon({
        candidates: cfg.bon.candidates.map((c) => recipePath(ctx, c)),
        scorer,
        n: cfg.bon.n,
        aggregators: cfg.bon.aggregators,
        split: { mode: cfg.split.mode, separator: cfg.split.separator, minChars: cfg.split.min_chars, maxSteps: cfg.split.max_steps, think: cfg.split.think },
        out: join(evalDir, 'bon'),
      });
      const sets: NonNullable<EvalSummary['bon']>['sets'] = {};
      for (const s of result.sets) {
        const m = s.metrics;
        sets[s.name] = {
          pass_at_n: m.pass_at_n,
          maj_at_n: m.maj_at_n,
          prm_at_n: m.prm_at_n as Record<string, number>,
          rm_at_n: m.rm_at_n,
          random_pick: m.random_pick,
          constant_score: m.constant_score,
          n: m.n,
          n_problems: m.n_problems,
        };
      }
      summary.bon = { sets, average: result.summary?.average as Record<string, unknown> | undefined };
      ctx.log(`eval: BoN on ${result.sets.length} set(s) written to ${join(evalDir, 'bon')}`);
    }
  } finally {
    scorer.dispose();
  }
  return summary;
}

function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? 'n/a' : x.toFixed(1);
}

/** A threshold with where it came from, as every report states it beside its metric. */
export function thresholdText(value: number | 'auto', source: ThresholdSource): string {
  const v = value === 'auto' ? 'auto' : String(Number(value.toPrecision(4)));
  return source === 'dev' ? `${v}, chosen on the dev split` : source === 'auto' ? `${v}, chosen on the test` : v;
}
