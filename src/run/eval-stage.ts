import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStepScorer } from '../eval/model-scorer.js';
import { runBon } from '../eval/run-bon.js';
import { runProcessBench } from '../eval/run-processbench.js';
import { runPrmBench } from '../eval/run-prmbench.js';
import { runSimEval, type SimEvalSummary } from '../eval/run-sim.js';
import type { StepScorer } from '../eval/step-scorer.js';
import type { StepSample } from '../data/types.js';
import { chooseThreshold } from '../eval/processbench-metrics.js';
import type { EvalConfig } from '../recipes/schema.js';
import { firstNegative } from '../train/dev-metrics.js';
import { hashString, Rng } from '../util/rng.js';
import { recipePath, type RunContext } from './context.js';
import { simWorldOptions } from './data-stage.js';

export interface EvalSummary {
  /** How the sim step-error threshold was chosen, and its value. */
  threshold?: { source: 'fixed' | 'dev' | 'auto'; value: number | 'auto'; dev_f1?: number; dev_samples?: number };
  sim?: { prm: SimEvalSummary; baselines: Record<string, SimEvalSummary> };
  processbench?: { avg_f1: number | null; threshold: number; subsets: Record<string, number | null> };
  prmbench?: { prmscore: number | null; threshold: number; n: number; classes: Record<string, number | null>; groups: Record<string, number | null> };
  bon?: { sets: Record<string, { pass_at_n: number; maj_at_n: number; prm_at_n: Record<string, number>; rm_at_n?: number | null }>; average?: Record<string, unknown> };
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
    let threshold: number | 'auto' = 0.5;
    if (cfg.threshold === 'dev') {
      const chosen = await devThreshold(scorer, dev);
      if (chosen) {
        threshold = chosen.threshold;
        summary.threshold = { source: 'dev', value: threshold, dev_f1: chosen.f1, dev_samples: chosen.n };
        ctx.log(`eval: threshold ${threshold.toFixed(4)} chosen on the dev split (${chosen.n} samples, dev first-error F1 ${chosen.f1.toFixed(1)})`);
      } else {
        summary.threshold = { source: 'fixed', value: 0.5 };
        ctx.log('eval: no dev split with both erroneous and correct samples; threshold 0.5');
      }
    } else {
      threshold = cfg.threshold;
      summary.threshold = { source: cfg.threshold === 'auto' ? 'auto' : 'fixed', value: cfg.threshold };
    }
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
      const result = await runProcessBench({
        data: recipePath(ctx, pb.path),
        subsets: pb.subsets,
        scorer,
        threshold: pb.threshold,
        out: join(evalDir, 'processbench'),
      });
      const subsets: Record<string, number | null> = {};
      for (const [name, m] of Object.entries(result.report.subsets)) subsets[name] = m.f1;
      summary.processbench = { avg_f1: result.report.avg_f1, threshold: result.report.threshold, subsets };
      ctx.log(`eval: ProcessBench avg F1 ${fmt(result.report.avg_f1)}`);
    }
    if (cfg.prmbench) {
      const result = await runPrmBench({
        data: recipePath(ctx, cfg.prmbench.path),
        scorer,
        threshold: cfg.prmbench.threshold,
        out: join(evalDir, 'prmbench'),
      });
      const r = result.report;
      summary.prmbench = { prmscore: r.prmscore, threshold: r.threshold, n: r.n, classes: r.classes, groups: r.groups };
      ctx.log(`eval: PRMBench PRMScore ${fmt(r.prmscore)}${r.n_too_long > 0 ? ` (${r.n_too_long} items longer than the context left out)` : ''}`);
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
        sets[s.name] = { pass_at_n: s.metrics.pass_at_n, maj_at_n: s.metrics.maj_at_n, prm_at_n: s.metrics.prm_at_n as Record<string, number>, rm_at_n: s.metrics.rm_at_n };
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
