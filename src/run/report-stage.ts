import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimEvalSummary } from '../eval/run-sim.js';
import { loadRun } from '../report/run-data.js';
import { KIND_BASELINE, runPlots, writeRunPlots, type RunPlotSection } from '../report/run-plots.js';
import { TrainSchema, type Recipe } from '../recipes/schema.js';
import { readStageMarker, type RunContext } from './context.js';
import { writeFileAtomic } from '../util/durable-fs.js';
import type { DataSummary } from './data-stage.js';
import { thresholdText, type EvalSummary } from './eval-stage.js';
import type { LabelsSummary } from './labels-stage.js';
import type { RunManifest } from './manifest.js';
import type { TrainSummary } from './train-stage.js';
import { coverage, percent } from '../util/format.js';
import type { Aggregator } from '../eval/aggregate.js';
import { belowBaselineLines } from '../eval/bon.js';

/**
 * RUN/report.md (tables of what each stage did and the metrics against the trivial baselines)
 * and RUN/summary.json (the headline metrics a sweep compares across runs).
 */
export interface HeadlineMetrics {
  sim_processbench_f1?: number | null;
  sim_bon_prm_at_n?: number | null;
  sim_baseline_best_f1?: number | null;
  label_first_error_precision?: number | null;
  retained?: number | null;
  dev_first_error_f1?: number | null;
  processbench_avg_f1?: number | null;
  /** The samples processbench_avg_f1 is over, of the benchmark's (the rest did not fit the context), and its threshold. */
  processbench_n?: number | null;
  processbench_n_total?: number | null;
  processbench_threshold?: number | null;
  prmbench_prmscore?: number | null;
  prmbench_n?: number | null;
  prmbench_n_total?: number | null;
  prmbench_threshold?: number | null;
  bon_prm_at_n?: number | null;
  /** Expected accuracy of a random pick over the same sets, the baseline of bon_prm_at_n. */
  bon_random_pick?: number | null;
  train_steps?: number;
  /** Samples trained on and held out as dev. */
  train_samples?: number;
  dev_samples?: number;
}

const f1 = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits));
// Cells of a table whose header says %.
const percentCell = (x: number | null | undefined) => percent(x, { sign: false });

function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function devCurve(runDir: string): { step: number; dev_loss: number; step_accuracy: number; step_auroc: number | null; first_error_f1: number | null; first_error_threshold?: number }[] {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.kind === 'dev') as unknown as ReturnType<typeof devCurve>;
}

function bonCells(s: SimEvalSummary, aggs: string[]): string[] {
  return [f1(s.bon.pass_at_n), f1(s.bon.maj_at_n), ...aggs.map((a) => f1((s.bon.prm_at_n as Record<string, number | undefined>)[a])), f1(s.bon.weighted_vote)];
}

export function headlineMetrics(labels: LabelsSummary | null, train: TrainSummary | null, evals: EvalSummary | null): HeadlineMetrics {
  const out: HeadlineMetrics = {};
  if (labels) {
    const used = labels.sources[labels.method];
    out.label_first_error_precision = used?.precision ?? null;
    out.retained = used?.retention ?? null;
  }
  if (train) {
    out.dev_first_error_f1 = train.last_dev?.first_error_f1 ?? null;
    out.train_steps = train.steps;
    out.train_samples = train.items.train;
    out.dev_samples = train.items.dev;
  }
  if (evals?.sim) {
    out.sim_processbench_f1 = evals.sim.prm.processbench.f1;
    out.sim_bon_prm_at_n = evals.sim.prm.bon.prm_at_n.prod ?? null;
    const baseF1 = Object.values(evals.sim.baselines).map((b) => b.processbench.f1 ?? 0);
    out.sim_baseline_best_f1 = baseF1.length ? Math.max(...baseF1) : null;
  }
  if (evals?.processbench) {
    const pb = evals.processbench;
    out.processbench_avg_f1 = pb.avg_f1;
    out.processbench_n = pb.n ?? null;
    out.processbench_n_total = pb.n_total ?? null;
    out.processbench_threshold = pb.threshold;
  }
  if (evals?.prmbench) {
    const pm = evals.prmbench;
    out.prmbench_prmscore = pm.prmscore;
    out.prmbench_n = pm.n;
    out.prmbench_n_total = pm.n_total ?? null;
    out.prmbench_threshold = pm.threshold;
  }
  if (evals?.bon) {
    const sets = Object.values(evals.bon.sets);
    out.bon_prm_at_n = sets.length ? sets.reduce((a, s) => a + (s.prm_at_n.prod ?? 0), 0) / sets.length : null;
    const random = sets.map((s) => s.random_pick).filter((v): v is number => typeof v === 'number');
    out.bon_random_pick = random.length === sets.length && sets.length > 0 ? random.reduce((a, b) => a + b, 0) / random.length : null;
  }
  return out;
}

function intervalCell(ci: [number, number] | null | undefined): string {
  return ci ? `[${f1(ci[0])}, ${f1(ci[1])}]` : '-';
}

/** The settings that decide what training did, with the batch as it was trained (rows and tokens per optimizer step). */
function hyperparameterRows(recipe: Recipe, train: TrainSummary): (string | number)[][] | null {
  // Filled with the current defaults, so a run written before a setting existed still reads.
  const parsed = TrainSchema.safeParse(recipe.train ?? {});
  if (!parsed.success) return null;
  const t = parsed.data;
  const rows: (string | number)[][] = [
    ['optimizer', `AdamW (beta1 ${t.beta1}, beta2 ${t.beta2}, eps ${t.eps}, weight decay ${t.weight_decay})`],
    ['learning rate', `${t.lr}, ${t.schedule} schedule, ${t.warmup_steps !== undefined ? `${t.warmup_steps} warmup steps` : `warmup ratio ${t.warmup_ratio}`}`],
    ['rows per optimizer step', `${t.batch_size * t.grad_accumulation} (batch_size ${t.batch_size} x grad_accumulation ${t.grad_accumulation})`],
    ['tokens per micro-batch (cap)', t.max_tokens_per_batch],
    ['epochs / optimizer steps', `${t.epochs} / ${train.steps} of ${train.total_steps}${t.max_steps !== undefined ? ` (max_steps ${t.max_steps})` : ''}`],
    ['gradient clipping', t.max_grad_norm > 0 ? `global norm ${t.max_grad_norm}` : 'off'],
    ['loss', `${t.loss.kind}, ${t.label_mode} labels${t.lm_loss_weight > 0 ? `, + ${t.lm_loss_weight} x next-token loss` : ''}`],
    ['max length', `${t.max_length} tokens (${t.truncation})`],
    ['checkpoint choice', `${t.final === 'best' ? `best ${t.metric} on the dev split` : 'last step'}, dev every ${t.eval_every} steps${t.patience > 0 ? `, patience ${t.patience}` : ''}`],
    ['seed', t.seed ?? recipe.seed],
  ];
  if (t.recompute) rows.push(['activation recomputation', 'on']);
  if (t.freeze.head_only || t.freeze.train_last_layers !== undefined) rows.push(['frozen', t.freeze.head_only ? 'all but the head' : `all but the last ${t.freeze.train_last_layers} layers`]);
  return rows;
}

/** A plot file under RUN/plots/, linked from the report section it illustrates. */
export interface ReportPlotLink {
  file: string;
  title: string;
  section: RunPlotSection;
}

/** Recall of the first error per error kind: the PRM beside each baseline that names errors at all. */
function kindRecallTable(all: [string, SimEvalSummary][]): string | null {
  const withKinds = all.filter(([, s]) => s.processbench.by_kind);
  if (withKinds.length === 0) return null;
  const kinds = [...new Set(withKinds.flatMap(([, s]) => Object.keys(s.processbench.by_kind!)))];
  const n = (kind: string) => withKinds.map(([, s]) => s.processbench.by_kind![kind]?.n).find((x) => x !== undefined) ?? 0;
  return table(
    ['error kind', 'erroneous samples', ...withKinds.map(([name]) => `${name} recall %`)],
    kinds.map((kind) => [kind.replace(/_/g, ' '), n(kind), ...withKinds.map(([, s]) => f1(s.processbench.by_kind![kind]?.recall))]),
  );
}

export function renderReport(runDir: string, recipe: Recipe, plots: readonly ReportPlotLink[] = []): { markdown: string; headline: HeadlineMetrics } {
  const data = readStageMarker<DataSummary>(runDir, 'data')?.summary ?? null;
  const labels = readStageMarker<LabelsSummary>(runDir, 'labels')?.summary ?? null;
  const train = readStageMarker<TrainSummary>(runDir, 'train')?.summary ?? null;
  const evals = readStageMarker<EvalSummary>(runDir, 'eval')?.summary ?? null;
  const manifestPath = join(runDir, 'manifest.json');
  const manifest = existsSync(manifestPath) ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as RunManifest) : null;
  const parts: string[] = [`# ${recipe.report?.title ?? `prmkit run: ${recipe.name}`}`, ''];
  const embed = (section: RunPlotSection) => {
    for (const p of plots.filter((x) => x.section === section)) parts.push(`![${p.title}](plots/${p.file})`, '');
  };
  if (recipe.description) parts.push(recipe.description.trim(), '');
  const stageRows = (['data', 'labels', 'train', 'eval'] as const)
    .map((s) => [s, readStageMarker<unknown>(runDir, s)] as const)
    .filter(([, m]) => m !== null)
    .map(([s, m]) => [s, `${m!.seconds.toFixed(1)} s`]);
  parts.push(
    `prmkit ${manifest?.prmkit_version ?? '?'}${manifest?.git_commit ? ` (commit ${manifest.git_commit.slice(0, 10)})` : ''}, ` +
      `backend ${manifest?.backend.name ?? '?'}, seed ${recipe.seed}, ${manifest?.machine.cpus ?? '?'} CPUs (${manifest?.machine.cpu ?? '?'}).`,
    '',
    table(['stage', 'wall time'], stageRows),
    '',
  );

  if (data) {
    parts.push('## Data', '');
    parts.push(
      data.source === 'sim'
        ? `${data.samples} sim policy solutions of ${data.problems} generated problems; ${data.with_error} have a process error (truth).`
        : `${data.samples} samples from ${data.read?.path} (${data.read?.format}; ${data.read?.rejected} records rejected).`,
      '',
    );
  }
  if (labels) {
    // Label quality is known only where there is a truth to hold the labels against (the sim).
    const sources = Object.entries(labels.sources);
    const withTruth = sources.some(([, s]) => s.precision !== null || s.recall !== null);
    const endpoint = labels.endpoint && labels.endpoint !== 'none' ? `, endpoint: ${labels.endpoint}` : '';
    parts.push(
      '## Labels',
      '',
      `Method: **${labels.method}**${endpoint}.` + (withTruth ? ' First-error precision, recall and F1 are measured against the sim truth.' : ''),
      '',
    );
    parts.push(
      table(
        ['labels', 'samples in', 'samples out', 'retention %', ...(withTruth ? ['precision %', 'recall %', 'F1 %'] : [])],
        sources.map(([name, s]) => [name, s.input, s.output, percentCell(s.retention), ...(withTruth ? [percentCell(s.precision), percentCell(s.recall), percentCell(s.f1)] : [])]),
      ),
      '',
    );
  }
  if (train) {
    parts.push('## Training', '');
    const p = train.prepare.train;
    const cfg = train.model.config as { hiddenSize?: number; numHiddenLayers?: number; numAttentionHeads?: number };
    parts.push(
      `${train.items.train} training and ${train.items.dev} dev samples (split by problem) from ${train.train_file}; ` +
        `${p.droppedTooLong} dropped and ${p.truncatedSamples} cut for length, ${p.unlabelled} without labels. ` +
        `Model: ${train.model.init}, ${train.model.parameters.toLocaleString('en-US')} parameters (hidden ${cfg.hiddenSize}, ${cfg.numHiddenLayers} layers, ${cfg.numAttentionHeads} heads), ` +
        `${train.tokenizer.kind} tokenizer with ${train.tokenizer.vocab_size} tokens. ` +
        `${train.steps}/${train.total_steps} optimizer steps in ${train.seconds.toFixed(0)} s${train.stopped_early ? ' (early stop)' : ''}; ` +
        `final model = ${train.final_from.kind === 'best' ? `best ${train.best?.metric} at step ${train.final_from.step}` : `step ${train.final_from.step}`} (${train.final_dir}).`,
      '',
    );
    const hyper = hyperparameterRows(recipe, train);
    if (hyper) parts.push('Hyperparameters:', '', table(['setting', 'value'], hyper), '');
    const curve = devCurve(runDir);
    if (curve.length > 0) {
      parts.push(
        'Dev evaluations (step accuracy at 0.5; first-error F1 at the threshold that maximises it on the dev split):',
        '',
        table(
          ['step', 'dev loss', 'step acc %', 'step AUROC %', 'first-error F1 %', 'F1 threshold'],
          curve.map((d) => [d.step, f1(d.dev_loss, 4), f1(d.step_accuracy), f1(d.step_auroc), f1(d.first_error_f1), f1(d.first_error_threshold, 3)]),
        ),
        '',
      );
    }
    embed('training');
  }
  if (evals?.sim) {
    const sim = evals.sim;
    const all: [string, SimEvalSummary][] = [['**trained PRM**', sim.prm], ...Object.entries(sim.baselines)];
    const th = evals.threshold;
    const how =
      th?.source === 'dev'
        ? `chosen on the dev split (${th.dev_samples} samples, dev F1 ${f1(th.dev_f1)})`
        : th?.source === 'auto'
          ? 'chosen on the test itself'
          : 'fixed';
    parts.push(
      '## Sim step-error test (truth-labelled, ProcessBench metric)',
      '',
      `${sim.prm.processbench.n} samples, half with a process error. A scorer predicts the first step scored below its threshold: ` +
        `the trained PRM's is ${how}. A constant score predicts "no error" (or "step 0") for every sample.`,
      '',
      table(
        ['scorer', 'F1 %', 'F1 95% interval', 'acc. on erroneous %', 'acc. on correct %', 'threshold'],
        all.map(([name, s]) => [name, f1(s.processbench.f1), intervalCell(s.processbench.f1_ci), f1(s.processbench.acc_error), f1(s.processbench.acc_correct), f1(s.processbench.threshold, 3)]),
      ),
      '',
    );
    const kinds = kindRecallTable(all.filter(([name]) => name === all[0][0] || name === KIND_BASELINE));
    if (kinds) {
      const auroc = sim.prm.processbench.step_scores?.auroc;
      parts.push(
        '### What the PRM finds, per error kind',
        '',
        'Recall = share of the erroneous samples of each kind whose first error the scorer names exactly. An arithmetic slip shows in one equation; a wrong operand, ' +
          'a skipped or a repeated step only against the problem\'s chain of operations.' +
          (typeof auroc === 'number' ? ` Step AUROC of the trained PRM on this test (right steps against first wrong steps): ${f1(auroc)}.` : ''),
        '',
        kinds,
        '',
      );
    }
    embed('sim-test');
    const aggs = Object.keys(sim.prm.bon.prm_at_n);
    parts.push(
      `## Sim Best-of-${sim.prm.bon.n}`,
      '',
      `${sim.prm.bon.n_problems} problems, ${sim.prm.bon.n} policy samples each; prm@N picks the response with the best aggregated step score.`,
      '',
      table(['scorer', `pass@${sim.prm.bon.n}`, `maj@${sim.prm.bon.n}`, ...aggs.map((a) => `prm@${sim.prm.bon.n} ${a}`), 'weighted vote'], all.map(([name, s]) => [name, ...bonCells(s, aggs)])),
      '',
    );
    const picked = sim.prm.bon.picked_min_at_last_step;
    const pb = sim.prm.processbench;
    if (picked || pb.extracted_accuracy !== undefined) {
      // The paper's §3.2: a PRM that grades the answer rather than the process shows it here.
      parts.push(
        [
          picked ? `Of the trained PRM's picks, ${aggs.filter((a) => a in picked).map((a) => `${f1(picked[a as keyof typeof picked])}% (${a})`).join(', ')} have their lowest step score on the last step.` : '',
          pb.extracted_accuracy !== undefined ? `On erroneous test samples whose final answer is right (n=${pb.n_extracted}) it names the first wrong step ${f1(pb.extracted_accuracy)}% of the time.` : '',
        ]
          .filter(Boolean)
          .join(' '),
        '',
      );
    }
    embed('sim-bon');
  }
  if (evals?.processbench) {
    const pb = evals.processbench;
    const ci = pb.ci;
    const covered = pb.n !== undefined && pb.n_total !== undefined ? ` over ${coverage(pb.n, pb.n_total)} samples` : '';
    parts.push(
      '## ProcessBench',
      '',
      `Threshold ${thresholdText(pb.threshold, pb.threshold_source ?? 'fixed')}.` +
        (pb.n !== undefined && pb.n_total !== undefined && pb.n < pb.n_total ? ` ${pb.n_total - pb.n} samples longer than the model context are left out of every figure.` : ''),
      '',
      table(
        ['subset', 'F1 %', 'F1 95% interval'],
        [...Object.entries(pb.subsets).map(([k, v]) => [k, f1(v), intervalCell(ci?.subsets[k])]), [`**average**${covered}`, f1(pb.avg_f1), intervalCell(ci?.avg)]],
      ),
      '',
    );
  }
  if (evals?.prmbench) {
    const pm = evals.prmbench;
    parts.push(
      '## PRMBench',
      '',
      `${pm.n_total !== undefined ? coverage(pm.n, pm.n_total) : pm.n} items (the rest are longer than the model context); a step is valid when its score > the threshold ` +
        `(${thresholdText(pm.threshold, pm.threshold_source ?? 'fixed')}). PRMScore = 0.5 F1 + 0.5 negative F1 over steps (multi_solutions: F1 alone).`,
      '',
      table(
        ['class', 'PRMScore %'],
        [
          ...Object.entries(pm.classes).map(([k, v]) => [k, f1(v)]),
          ...Object.entries(pm.groups).map(([k, v]) => [`*${k}* (mean)`, f1(v)]),
          ['**overall**', f1(pm.prmscore)],
        ],
      ),
      '',
    );
  }
  if (evals?.bon) {
    const aggs = Object.keys(Object.values(evals.bon.sets)[0]?.prm_at_n ?? {}) as Aggregator[];
    const sets = Object.entries(evals.bon.sets);
    parts.push(
      '## Best-of-N',
      '',
      'A random pick is the expected accuracy of choosing one of the N responses at random; a constant score ties every response and picks the first.',
      '',
      table(
        ['set', 'pass@N', 'maj@N', ...aggs.map((a) => `prm@N ${a}`), 'random pick', 'constant score'],
        sets.map(([name, s]) => [name, f1(s.pass_at_n), f1(s.maj_at_n), ...aggs.map((a) => f1(s.prm_at_n[a])), f1(s.random_pick), f1(s.constant_score)]),
      ),
      ...belowBaselineLines(sets.map(([name, row]) => ({ name, row })), aggs),
      '',
    );
  }
  const headline = headlineMetrics(labels, train, evals);
  parts.push('## Headline metrics', '', '```json', JSON.stringify(headline, null, 2), '```', '');
  return { markdown: parts.join('\n'), headline };
}

export async function runReportStage(ctx: RunContext): Promise<HeadlineMetrics> {
  // The pictures first, so report.md links only files that exist.
  const plots = await writeRunPlots(ctx.runDir, runPlots(loadRun(ctx.runDir)));
  const { markdown, headline } = renderReport(ctx.runDir, ctx.recipe, plots);
  await writeFileAtomic(join(ctx.runDir, 'report.md'), markdown);
  await writeFileAtomic(join(ctx.runDir, 'summary.json'), JSON.stringify(headline, null, 2) + '\n');
  ctx.log(`report: ${join(ctx.runDir, 'report.md')}`);
  return headline;
}
