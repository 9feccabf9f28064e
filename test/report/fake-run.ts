import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { BonCurvePoint } from '../../src/eval/bon-metrics.js';
import type { SimEvalSummary } from '../../src/eval/run-sim.js';
import type { StageMarker, StageName } from '../../src/run/context.js';
import type { EvalSummary } from '../../src/run/eval-stage.js';
import type { LabelsSummary } from '../../src/run/labels-stage.js';
import type { TrainSummary } from '../../src/run/train-stage.js';
import { POINT_FILE, type SweepPointRecord } from '../../src/report/run-data.js';

/**
 * A run directory in the layout `prmkit run` writes (stage markers, metrics.jsonl, eval files),
 * with chosen numbers, so report tests need no training. The summaries are typed by the run
 * stages' own types, so a change of that layout breaks the type check here.
 */
export interface FakeRunOptions {
  name: string;
  /** Sim step-error F1 of the trained PRM. */
  f1: number;
  bonProd: number;
  labelPrecision: number;
  retention: number;
  method?: LabelsSummary['method'];
  point?: { params: Record<string, unknown>; variant?: string | null };
  processbench?: Record<string, number>;
  bonSets?: string[];
  /** The recipe's seed (default 1). */
  seed?: number;
  /** labels.mc_labels and train.label_mode (default hard). */
  mcLabels?: 'hard' | 'soft';
  /** labels.threshold (default 0). */
  threshold?: number;
  /** Sim prm@8 with the last and min aggregators (default prod - 6 and prod - 3). */
  bonLast?: number;
  bonMin?: number;
  /** Recipe keys to set over the default recipe (a different configuration). */
  recipe?: Record<string, unknown>;
}

function marker<T>(dir: string, stage: StageName, summary: T): void {
  mkdirSync(join(dir, 'stages'), { recursive: true });
  const m: StageMarker<T> = { stage, completed_at: '2026-01-01T00:00:00.000Z', seconds: 12.5, summary };
  writeFileSync(join(dir, 'stages', `${stage}.json`), JSON.stringify(m));
}

function curve(top: number): BonCurvePoint[] {
  return [1, 2, 4, 8].map((n, i) => ({
    n,
    pass_at_n: 50 + 10 * i,
    maj_at_n: 50 + 3 * i,
    prm_at_n: { min: top - 6 + i, prod: top - 3 + i, last: top - 9 + 2 * i, mean: top - 4 + i },
    rm_at_n: null,
    weighted_vote: 50 + 4 * i,
    random_pick: 40 + i,
    constant_score: 41,
  }));
}

function simSummary(f1: number, prod: number, agg: { last?: number; min?: number } = {}): SimEvalSummary {
  return {
    seed: 1001,
    backend: 'cpu',
    processbench: {
      n: 100,
      f1,
      acc_error: f1 + 5,
      acc_correct: f1 - 5,
      threshold: 0.5,
      by_kind: {
        arithmetic: { n: 20, found: 18, recall: 90 },
        wrong_operand: { n: 15, found: 6, recall: 40 },
        skipped_step: { n: 10, found: 2, recall: 20 },
        repeated_step: { n: 5, found: 0, recall: 0 },
      },
      step_scores: { edges: [0, 0.25, 0.5, 0.75, 1], right: [1, 2, 10, 87], wrong: [30, 10, 6, 4], auroc: 91.5 },
    },
    bon: { n_problems: 100, n: 8, pass_at_n: 80, maj_at_n: 60, prm_at_n: { min: agg.min ?? prod - 3, prod, last: agg.last ?? prod - 6, mean: prod - 1 }, weighted_vote: 61, min_at_last_step: 30 },
  };
}

export function writeFakeRun(dir: string, o: FakeRunOptions): void {
  mkdirSync(dir, { recursive: true });
  const method = o.method ?? 'consensus';
  const mcLabels = o.mcLabels ?? 'hard';
  const recipe = {
    name: o.name,
    seed: o.seed ?? 1,
    data: { source: 'sim', problems: 100 },
    labels: { method, mc_labels: mcLabels, threshold: o.threshold ?? 0 },
    train: { epochs: 1, label_mode: mcLabels },
    eval: { sim: { samples: 100, n: 8 } },
    ...o.recipe,
  };
  writeFileSync(join(dir, 'recipe.resolved.yaml'), YAML.stringify(recipe));
  marker(dir, 'data', { source: 'sim', path: 'data/samples.jsonl', samples: 100, problems: 100, with_error: 50 });
  const sources: LabelsSummary['sources'] = {
    mc: { file: 'labels/mc.jsonl', input: 100, output: 100, retention: 1, precision: 0.6, recall: 0.6, f1: 0.7 },
    [method]: { file: `labels/${method}.jsonl`, input: 100, output: Math.round(100 * o.retention), retention: o.retention, precision: o.labelPrecision, recall: 0.8, f1: 0.85 },
  };
  const labels: LabelsSummary = { method, train_file: `labels/${method}.jsonl`, sources, endpoint: 'sim' };
  marker(dir, 'labels', labels);
  const prep = { samples: 90, kept: 90, unlabelled: 0, cutAfterLastLabel: 0, droppedTooLong: 0, truncatedSamples: 0, droppedSteps: 0 };
  const train = {
    train_file: labels.train_file,
    items: { train: 90, dev: 10 },
    prepare: { train: prep, dev: { ...prep, samples: 10, kept: 10 } },
    tokenizer: { kind: 'word-level', vocab_size: 300, dir: 'tokenizer' },
    model: { init: 'scratch', parameters: 1000, config: {} },
    steps: 30,
    total_steps: 30,
    stopped_early: false,
    best: { metric: 'first_error_f1', value: 40, step: 20 },
    last_dev: { dev_loss: 0.5, step_accuracy: 80, step_auroc: 70, first_error_f1: 35, n_samples: 10, n_steps: 40 },
    final_dir: 'checkpoints/final',
    final_from: { step: 30, kind: 'last' },
    seconds: 10,
  } as unknown as TrainSummary;
  marker(dir, 'train', train);
  const evals: EvalSummary = {
    sim: { prm: simSummary(o.f1, o.bonProd, { last: o.bonLast, min: o.bonMin }), baselines: { 'random uniform, best threshold': simSummary(12, 40), 'constant score': simSummary(0, 40) } },
  };
  if (o.processbench) {
    const values = Object.values(o.processbench);
    evals.processbench = { avg_f1: values.reduce((a, b) => a + b, 0) / values.length, threshold: 0.5, subsets: o.processbench };
  }
  if (o.bonSets) {
    evals.bon = { sets: Object.fromEntries(o.bonSets.map((s, i) => [s, { pass_at_n: 70 + i, maj_at_n: 60 + i, prm_at_n: { min: 60, prod: 62 + i, last: 58, mean: 61 } }])) };
    for (const [i, s] of o.bonSets.entries()) {
      mkdirSync(join(dir, 'eval', 'bon', s), { recursive: true });
      writeFileSync(join(dir, 'eval', 'bon', s, 'metrics.json'), JSON.stringify({ set: s, curve: curve(60 + i) }));
    }
  }
  marker(dir, 'eval', evals);
  mkdirSync(join(dir, 'eval', 'sim', 'bon'), { recursive: true });
  writeFileSync(join(dir, 'eval', 'sim', 'bon', 'metrics.json'), JSON.stringify({ ...simSummary(o.f1, o.bonProd, { last: o.bonLast, min: o.bonMin }).bon, curve: curve(o.bonProd) }));
  const rows: object[] = [];
  for (let step = 1; step <= 30; step++) if (step % 5 === 0 || step === 1) rows.push({ kind: 'train', step, loss: 1 / step, lr: 0.001, grad_norm: 1 });
  for (const step of [10, 20, 30]) rows.push({ kind: 'dev', step, dev_loss: 0.6 - step / 100, step_accuracy: 70 + step / 3, step_auroc: 60 + step / 2, first_error_f1: step, n_samples: 10, n_steps: 40 });
  writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(dir, 'report.md'), `# ${o.name}\n`);
  if (o.point) {
    const record: SweepPointRecord = { name: o.name, variant: o.point.variant ?? null, params: o.point.params, status: 'done', finished_at: '2026-01-01T00:00:00.000Z', seconds: 60 };
    writeFileSync(join(dir, POINT_FILE), JSON.stringify(record));
  }
}
