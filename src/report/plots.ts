import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { BonCurvePoint } from '../eval/bon-metrics.js';

/**
 * Plot specifications (Vega-Lite) for the report, rendered headless to SVG by Vega itself: no
 * canvas and no browser. Each builder takes plain rows and returns a spec, so what a plot shows
 * is testable without rendering it.
 */

type Row = Record<string, string | number | null>;

const WIDTH = 260;
const HEIGHT = 180;
const BASE_CONFIG = { view: { stroke: null }, axis: { labelFontSize: 10, titleFontSize: 11 }, legend: { labelLimit: 260 } } as const;

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  // No data is ever loaded from a URL: every spec carries its rows inline.
  const loader = vega.loader();
  loader.load = async (uri: string) => {
    throw new Error(`plots load no external data (asked for ${uri})`);
  };
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader });
  try {
    const svg = await view.toSVG();
    return svg.startsWith('<?xml') ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  } finally {
    view.finalize();
  }
}

function base(title: string, rows: Row[]): Pick<TopLevelSpec, '$schema' | 'title' | 'data' | 'config'> {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, data: { values: rows }, config: BASE_CONFIG };
}

/**
 * A curve of logged values: each value a point, and a LOESS line over them per series. The
 * points are what was measured; the line only smooths them (no line through the points, whose
 * interpolation would invent values between log steps and make one odd batch look like a trend).
 * LOESS needs a few points; a series with fewer than four is drawn as points only.
 */
function smoothedCurveLayers(opts: { x: string; y: string; series: string; keep?: string[]; xTitle: string; yTitle: string | null; seriesTitle: string; rows: Row[] }): object[] {
  const counts = new Map<string, number>();
  for (const r of opts.rows) counts.set(String(r[opts.series]), (counts.get(String(r[opts.series])) ?? 0) + 1);
  const smoothable = [...counts].filter(([, n]) => n >= SMOOTH_MIN_POINTS).map(([k]) => k);
  const x = { field: opts.x, type: 'quantitative', title: opts.xTitle };
  const y = { field: opts.y, type: 'quantitative', title: opts.yTitle, scale: { zero: false } };
  const color = { field: opts.series, type: 'nominal', title: opts.seriesTitle, sort: null };
  const layers: object[] = [{ mark: { type: 'point', filled: true, size: 14, opacity: 0.45 }, encoding: { x, y, color } }];
  if (smoothable.length > 0) {
    layers.push({
      transform: [
        { filter: { field: opts.series, oneOf: smoothable } },
        // LOESS output keeps only its groupby fields: group by the ones the encoding reads too.
        { loess: opts.y, on: opts.x, groupby: [opts.series, ...(opts.keep ?? [])], bandwidth: SMOOTH_BANDWIDTH },
      ],
      mark: { type: 'line', strokeWidth: 2 },
      encoding: { x, y, color },
    });
  }
  return layers;
}

/** Fewest points a series needs for its LOESS line. */
export const SMOOTH_MIN_POINTS = 4;
/** Share of the points each LOESS fit uses (vega's default is 0.3). */
export const SMOOTH_BANDWIDTH = 0.3;

/** Training loss against optimizer step: points per logged step, a LOESS line per run. Rows: {run, step, loss}. */
export function trainingLossSpec(rows: Row[]): TopLevelSpec {
  return {
    ...base('Training loss (points: logged values; line: LOESS smoothing)', rows),
    width: 2 * WIDTH,
    height: HEIGHT,
    layer: smoothedCurveLayers({ x: 'step', y: 'loss', series: 'run', xTitle: 'optimizer step', yTitle: 'loss', seriesTitle: 'run', rows }),
  } as TopLevelSpec;
}

/** Dev metrics against step, one panel per metric: points and a LOESS line per run. Rows: {run, step, metric, value}. */
export function devCurvesSpec(rows: Row[]): TopLevelSpec {
  // LOESS per panel and run: the series is the pair, so each metric's points are smoothed apart.
  const keyed = rows.map((r) => ({ ...r, series: `${r.run} | ${r.metric}` }));
  const layers = smoothedCurveLayers({ x: 'step', y: 'value', series: 'series', keep: ['run', 'metric'], xTitle: 'optimizer step', yTitle: null, seriesTitle: 'run', rows: keyed }).map((layer) => {
    const l = layer as { encoding: Record<string, unknown>; transform?: unknown[] };
    return { ...l, encoding: { ...l.encoding, color: { field: 'run', type: 'nominal', title: 'run', sort: null }, detail: { field: 'series', type: 'nominal' } } };
  });
  return {
    ...base('Dev evaluations during training (points: measured; line: LOESS smoothing)', keyed),
    facet: { column: { field: 'metric', type: 'nominal', title: null } },
    spec: { width: WIDTH, height: HEIGHT, layer: layers },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

/**
 * Histograms of step scores, one per class of step (right steps, first wrong steps), each
 * normalised to shares of its class so a rare class stays visible. Rows: {class, lo, hi, share}.
 */
export function stepScoreHistogramSpec(rows: Row[], title: string): TopLevelSpec {
  const classes = [...new Set(rows.map((r) => String(r.class)))];
  return {
    ...base(title, rows),
    width: 2 * WIDTH,
    height: HEIGHT,
    mark: { type: 'rect', opacity: 0.55 },
    encoding: {
      x: { field: 'lo', type: 'quantitative', title: 'step score (P(step is right))', scale: { zero: false } },
      x2: { field: 'hi' },
      y: { field: 'share', type: 'quantitative', title: '% of the steps of its class' },
      y2: { datum: 0 },
      color: { field: 'class', type: 'nominal', title: 'steps', sort: classes, scale: { range: ['#4c78a8', '#e45756'] } },
      tooltip: [{ field: 'class' }, { field: 'lo', format: '.2f' }, { field: 'hi', format: '.2f' }, { field: 'share', format: '.1f' }],
    },
  } as TopLevelSpec;
}

/**
 * Best-of-N accuracy against N: one panel per run, a line per selection rule (prm@N with each
 * aggregator, maj@N, pass@N). Rows: {run, n, rule, accuracy}.
 */
export function bonCurveSpec(rows: Row[], title: string): TopLevelSpec {
  // Panels in the order the runs come (the sweep's order), not alphabetical.
  const runs = [...new Set(rows.map((r) => String(r.run)))];
  return {
    ...base(title, rows),
    facet: { field: 'run', type: 'nominal', title: null, sort: runs },
    columns: Math.min(3, runs.length),
    spec: {
      width: WIDTH,
      height: HEIGHT,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'n', type: 'quantitative', title: 'N (responses per problem)', scale: { type: 'log', base: 2 }, axis: { values: [...new Set(rows.map((r) => r.n))] } },
        y: { field: 'accuracy', type: 'quantitative', title: 'accuracy %', scale: { zero: false } },
        color: { field: 'rule', type: 'nominal', title: 'selection' },
        strokeDash: { condition: { test: "datum.rule === 'pass@N' || datum.rule === 'maj@N'", value: [4, 3] }, value: [1, 0] },
      },
    },
  } as TopLevelSpec;
}

/** A Best-of-N curve as plot rows: one per N and selection rule (prm@N per aggregator, maj@N, pass@N). */
export function bonRules(curve: readonly BonCurvePoint[]): { n: number; rule: string; accuracy: number }[] {
  const out: { n: number; rule: string; accuracy: number }[] = [];
  for (const p of curve) {
    for (const [agg, v] of Object.entries(p.prm_at_n)) if (typeof v === 'number') out.push({ n: p.n, rule: `prm@N ${agg}`, accuracy: v });
    out.push({ n: p.n, rule: 'maj@N', accuracy: p.maj_at_n });
    out.push({ n: p.n, rule: 'pass@N', accuracy: p.pass_at_n });
  }
  return out;
}

/** Grouped bars: a value per category for each run. Rows: {run, [category], value}. */
export function groupedBarSpec(rows: Row[], opts: { title: string; category: string; categoryTitle: string; valueTitle: string; facet?: string; seriesTitle?: string; barWidth?: number }): TopLevelSpec {
  const inner = {
    width: { step: opts.barWidth ?? 14 },
    height: HEIGHT,
    mark: { type: 'bar' },
    encoding: {
      x: { field: opts.category, type: 'nominal', title: opts.categoryTitle, sort: null, axis: { labelAngle: -30, labelLimit: 200 } },
      xOffset: { field: 'run', type: 'nominal', sort: null },
      y: { field: 'value', type: 'quantitative', title: opts.valueTitle },
      color: { field: 'run', type: 'nominal', title: opts.seriesTitle ?? 'run', sort: null },
      tooltip: [{ field: 'run' }, { field: opts.category }, { field: 'value', format: '.1f' }],
    },
  };
  if (!opts.facet) return { ...base(opts.title, rows), ...inner } as TopLevelSpec;
  return {
    ...base(opts.title, rows),
    facet: { column: { field: opts.facet, type: 'nominal', title: null, sort: [...new Set(rows.map((r) => String(r[opts.facet as string])))] } },
    spec: inner,
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

/**
 * Metrics against one numeric sweep parameter, one panel per metric, a line per combination
 * of the other parameters. Rows: {x, series, metric, value}.
 */
export function metricsVsParamSpec(rows: Row[], opts: { param: string; logScale: boolean }): TopLevelSpec {
  const xs = [...new Set(rows.map((r) => r.x))].sort((a, b) => Number(a) - Number(b));
  const metrics = [...new Set(rows.map((r) => String(r.metric)))];
  return {
    ...base(`Headline metrics against ${opts.param}`, rows),
    facet: { field: 'metric', type: 'nominal', title: null, sort: metrics },
    columns: 2,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      mark: { type: 'line', point: true },
      encoding: {
        x: {
          field: 'x',
          type: 'quantitative',
          title: opts.param,
          scale: opts.logScale ? { type: 'log' } : { zero: false },
          // Ticks at the swept values themselves when there are few of them.
          axis: xs.length <= 10 ? { values: xs, format: '.4~r', labelOverlap: false } : { format: '.4~r' },
        },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '.4~r' } },
        color: { field: 'series', type: 'nominal', title: 'series', sort: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}
