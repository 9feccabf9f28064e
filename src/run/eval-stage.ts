import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStepScorer } from '../eval/model-scorer.js';
import { runBon } from '../eval/run-bon.js';
import { runProcessBench } from '../eval/run-processbench.js';
import { runSimEval, type SimEvalSummary } from '../eval/run-sim.js';
import type { StepScorer } from '../eval/step-scorer.js';
import type { EvalConfig } from '../recipes/schema.js';
import { hashString, Rng } from '../util/rng.js';
import { recipePath, type RunContext } from './context.js';

export interface EvalSummary {
  sim?: { prm: SimEvalSummary; baselines: Record<string, SimEvalSummary> };
  processbench?: { avg_f1: number | null; threshold: number; subsets: Record<string, number | null> };
  bon?: { sets: Record<string, { pass_at_n: number; maj_at_n: number; prm_at_n: Record<string, number> }>; average?: Record<string, unknown> };
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

export const BASELINES: Record<string, (seed: number) => StepScorer> = {
  'constant 1 (never an error)': () => constantScorer(1),
  'constant 0 (always step 0)': () => constantScorer(0),
  'random uniform': (seed) => randomScorer(seed),
};

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Evaluates the final model: sim benchmarks (with baselines), real ProcessBench and BoN when configured. */
export async function runEvalStage(ctx: RunContext, cfg: EvalConfig, modelDir: string): Promise<EvalSummary> {
  const evalDir = join(ctx.runDir, 'eval');
  mkdirSync(evalDir, { recursive: true });
  const summary: EvalSummary = {};
  const scorer = await openStepScorer(modelDir, { backend: ctx.backend, batchTokens: cfg.max_tokens_per_batch });
  try {
    if (cfg.sim) {
      const sim = cfg.sim;
      const common = { problems: sim.samples, n: sim.n, seed: sim.seed, threshold: cfg.threshold };
      const prm = await runSimEval({ ...common, scorer, out: join(evalDir, 'sim') });
      ctx.log(`eval: sim step-error F1 ${fmt(prm.summary.processbench.f1)}, sim BoN prm@${sim.n} (prod) ${fmt(prm.summary.bon.prm_at_n.prod)}`);
      const baselines: Record<string, SimEvalSummary> = {};
      if (sim.baselines) {
        for (const [name, make] of Object.entries(BASELINES)) {
          const result = await runSimEval({ ...common, scorer: make(sim.seed), out: join(evalDir, 'baselines', slug(name)) });
          baselines[name] = result.summary;
          ctx.log(`eval: baseline ${name}: sim step-error F1 ${fmt(result.summary.processbench.f1)}`);
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
    if (cfg.bon) {
      const result = await runBon({
        candidates: cfg.bon.candidates.map((c) => recipePath(ctx, c)),
        scorer,
        n: cfg.bon.n,
        aggregators: cfg.bon.aggregators,
        out: join(evalDir, 'bon'),
      });
      const sets: NonNullable<EvalSummary['bon']>['sets'] = {};
      for (const s of result.sets) {
        sets[s.name] = { pass_at_n: s.metrics.pass_at_n, maj_at_n: s.metrics.maj_at_n, prm_at_n: s.metrics.prm_at_n as Record<string, number> };
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
