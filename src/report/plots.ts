import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

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

/** Training loss against optimizer step, one line per run. Rows: {run, step, loss}. */
export function trainingLossSpec(rows: Row[]): TopLevelSpec {
  return {
    ...base('Training loss', rows),
    width: 2 * WIDTH,
    height: HEIGHT,
    mark: { type: 'line', interpolate: 'monotone', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: 'run' },
    },
  } as TopLevelSpec;
}

/** Dev metrics against step, one panel per metric. Rows: {run, step, metric, value}. */
export function devCurvesSpec(rows: Row[]): TopLevelSpec {
  return {
    ...base('Dev evaluations during training', rows),
    facet: { column: { field: 'metric', type: 'nominal', title: null } },
    spec: {
      width: WIDTH,
      height: HEIGHT,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'run', type: 'nominal', title: 'run' },
      },
    },
    resolve: { scale: { y: 'independent' } },
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

/** Grouped bars: a value per category for each run. Rows: {run, [category], value}. */
export function groupedBarSpec(rows: Row[], opts: { title: string; category: string; categoryTitle: string; valueTitle: string; facet?: string }): TopLevelSpec {
  const inner = {
    width: { step: 14 },
    height: HEIGHT,
    mark: { type: 'bar' },
    encoding: {
      x: { field: opts.category, type: 'nominal', title: opts.categoryTitle, sort: null, axis: { labelAngle: -30, labelLimit: 200 } },
      xOffset: { field: 'run', type: 'nominal', sort: null },
      y: { field: 'value', type: 'quantitative', title: opts.valueTitle },
      color: { field: 'run', type: 'nominal', title: 'run', sort: null },
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
