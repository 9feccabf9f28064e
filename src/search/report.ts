import type { TopLevelSpec } from 'vega-lite';
import { markdownTable, pct } from '../eval/markdown.js';
import { renderSvg } from '../report/plots.js';
import type { SearchMetrics } from './metrics.js';

/** One point of the plot: a selection rule at one budget, with its interval. */
export interface BudgetPoint {
  series: string;
  n: number;
  tokens: number;
  accuracy: number;
  lo: number | null;
  hi: number | null;
}

const SERIES_NAMES: Record<string, string> = { bon: 'Best-of-N (PRM)', beam: 'beam search (PRM)', dvts: 'DVTS (PRM)' };

/** The plot's points: every method's PRM pick, and maj@N / pass@N of the Best-of-N samples. */
export function budgetPoints(m: SearchMetrics): BudgetPoint[] {
  const points: BudgetPoint[] = [];
  for (const r of m.runs) {
    const at = (series: string, accuracy: number, ci: [number, number] | null) =>
      points.push({ series, n: r.n, tokens: r.budget.policy_tokens, accuracy, lo: ci?.[0] ?? null, hi: ci?.[1] ?? null });
    at(SERIES_NAMES[r.method] ?? r.method, r.accuracy, r.accuracy_ci);
    if (r.method === 'bon') {
      at('maj@N', r.majority, r.majority_ci);
      at('pass@N', r.pass, r.pass_ci);
    }
  }
  return points;
}

/**
 * Accuracy against budget, two panels: against N (the nominal budget: samples, or beams x
 * width) and against the policy tokens actually generated per problem; bars are the bootstrap
 * intervals. pass@N (dashed) is the ceiling any selection from N samples can reach.
 */
export function searchBudgetSpec(points: readonly BudgetPoint[], title: string): TopLevelSpec {
  const series = [...new Set(points.map((p) => p.series))];
  const color = { field: 'series', type: 'nominal', title: 'selection', sort: series };
  const dash = { condition: { test: "datum.series === 'pass@N' || datum.series === 'maj@N'", value: [4, 3] }, value: [1, 0] };
  const panel = (x: object) => ({
    width: 300,
    height: 220,
    layer: [
      { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'accuracy', type: 'quantitative', title: 'accuracy %', scale: { zero: false } }, color, strokeDash: dash } },
      { mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'accuracy %' }, y2: { field: 'hi' }, color } },
    ],
  });
  const ns = [...new Set(points.map((p) => p.n))].sort((a, b) => a - b);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: points.map((p) => ({ ...p })) },
    config: { view: { stroke: null }, axis: { labelFontSize: 10, titleFontSize: 11 }, legend: { labelLimit: 260 } },
    hconcat: [
      panel({ field: 'n', type: 'quantitative', title: 'N (samples, or beams x width)', scale: { type: 'log', base: 2 }, axis: { values: ns } }),
      panel({ field: 'tokens', type: 'quantitative', title: 'policy tokens generated per problem', scale: { type: 'log' } }),
    ],
  } as unknown as TopLevelSpec;
}

export function searchMarkdown(m: SearchMetrics, plotFile: string): string {
  const cell = (v: number, ci: [number, number] | null) => (ci ? `${pct(v)} [${pct(ci[0])}, ${pct(ci[1])}]` : pct(v));
  const rows = m.runs.map((r) => [
    r.method,
    String(r.n),
    cell(r.accuracy, r.accuracy_ci),
    cell(r.weighted_vote, r.weighted_vote_ci),
    r.method === 'bon' ? cell(r.majority, r.majority_ci) : '',
    r.method === 'bon' ? cell(r.pass, r.pass_ci) : '',
    r.budget.policy_tokens.toFixed(0),
    r.budget.prm_passes.toFixed(1),
    r.budget.policy_requests.toFixed(1),
    String(r.unfinished),
  ]);
  const s = m.settings;
  return [
    `# Test-time search: accuracy against budget`,
    '',
    `${m.n_problems} problems; policy ${String(s.policy)} (temperature ${String(s.temperature)}), PRM: ${String(s.reward)}; ` +
      `beam width ${String(s.beam_width)}, at most ${String(s.max_steps)} steps, candidates ranked by the ${String(s.aggregator)} of their step scores; seed ${String(s.seed)}.`,
    '',
    markdownTable(['method', 'N', 'accuracy % (PRM pick)', 'weighted vote %', 'maj@N %', 'pass@N %', 'policy tokens / problem', 'PRM passes / problem', 'policy requests / problem', 'unfinished'], rows),
    '',
    `Intervals: ${m.bootstrap.level}% ${m.bootstrap.method}, ${m.bootstrap.resamples} resamples (seed ${m.bootstrap.seed}). ` +
      'maj@N and pass@N are over the N independent Best-of-N samples: pass@N bounds what any selection among them can reach.',
    '',
    `![accuracy against budget](${plotFile})`,
    '',
  ].join('\n');
}

export async function renderSearchReport(m: SearchMetrics, plotFile: string): Promise<{ markdown: string; svg: string; spec: TopLevelSpec }> {
  const spec = searchBudgetSpec(budgetPoints(m), `Accuracy against budget (${m.n_problems} problems)`);
  return { markdown: searchMarkdown(m, plotFile), svg: await renderSvg(spec), spec };
}
