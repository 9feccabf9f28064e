import { share } from '../util/format.js';
import type { ReadStats } from './read.js';
import type { StepSample } from './types.js';

/** What `prmkit data stats` reports about a set of StepSamples. */
export interface DataStats {
  samples: number;
  steps: number;
  /** Exact step counts: number of steps -> number of samples. */
  stepsPerSample: Record<string, number>;
  stepsPerSampleSummary: { min: number; max: number; mean: number; median: number };
  labels: {
    /** Samples that carry per-step labels. */
    labelledSamples: number;
    labelledSteps: number;
    positive: number;
    negative: number;
    /** Labels strictly between 0 and 1. */
    soft: number;
    mean: number | null;
  };
  firstError: {
    /** Samples whose first error is known: "none" (-1) or a step index. */
    known: number;
    none: number;
    unknown: number;
    /** 0-based first-error step -> number of samples. */
    positions: Record<string, number>;
  };
  sources: Record<string, number>;
}

/** Accumulates DataStats one sample at a time (streams: memory is the histograms only). */
export class StatsCollector {
  private samples = 0;
  private steps = 0;
  private readonly stepCounts = new Map<number, number>();
  private labelledSamples = 0;
  private labelledSteps = 0;
  private positive = 0;
  private negative = 0;
  private soft = 0;
  private labelSum = 0;
  private none = 0;
  private unknown = 0;
  private readonly positions = new Map<number, number>();
  private readonly sources = new Map<string, number>();

  add(s: StepSample): void {
    this.samples++;
    this.steps += s.steps.length;
    bump(this.stepCounts, s.steps.length);
    bump(this.sources, s.source);
    if (s.labels) {
      this.labelledSamples++;
      for (const l of s.labels) {
        this.labelledSteps++;
        this.labelSum += l;
        if (l === 1) this.positive++;
        else if (l === 0) this.negative++;
        else this.soft++;
      }
    }
    if (s.firstError === undefined) this.unknown++;
    else if (s.firstError === -1) this.none++;
    else bump(this.positions, s.firstError);
  }

  result(): DataStats {
    const counts = [...this.stepCounts.entries()].sort((a, b) => a[0] - b[0]);
    return {
      samples: this.samples,
      steps: this.steps,
      stepsPerSample: Object.fromEntries(counts.map(([k, v]) => [String(k), v])),
      stepsPerSampleSummary: summary(counts, this.samples, this.steps),
      labels: {
        labelledSamples: this.labelledSamples,
        labelledSteps: this.labelledSteps,
        positive: this.positive,
        negative: this.negative,
        soft: this.soft,
        mean: this.labelledSteps > 0 ? this.labelSum / this.labelledSteps : null,
      },
      firstError: {
        known: this.samples - this.unknown,
        none: this.none,
        unknown: this.unknown,
        positions: Object.fromEntries([...this.positions.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
      },
      sources: Object.fromEntries([...this.sources.entries()].sort()),
    };
  }
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function summary(counts: [number, number][], samples: number, steps: number): DataStats['stepsPerSampleSummary'] {
  if (samples === 0) return { min: 0, max: 0, mean: 0, median: 0 };
  let seen = 0;
  let median = counts[0][0];
  for (const [k, v] of counts) {
    seen += v;
    if (seen * 2 >= samples) {
      median = k;
      break;
    }
  }
  return { min: counts[0][0], max: counts[counts.length - 1][0], mean: steps / samples, median };
}

/** Bucket edges for display: exact up to 10, then widening ranges. */
const EDGES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 31, 51, 101];

/** Groups an exact histogram into display buckets ("1", ..., "11-15", "101+"). */
export function bucketHistogram(hist: Record<string, number>, firstEdge = 1): [string, number][] {
  const edges = firstEdge === 0 ? [0, ...EDGES] : EDGES;
  const buckets = new Map<string, number>();
  for (const [key, count] of Object.entries(hist)) {
    const k = Number(key);
    let i = edges.length - 1;
    while (i > 0 && edges[i] > k) i--;
    const lo = edges[i];
    const hi = i + 1 < edges.length ? edges[i + 1] - 1 : Infinity;
    const label = hi === lo ? String(lo) : hi === Infinity ? `${lo}+` : `${lo}-${hi}`;
    buckets.set(label, (buckets.get(label) ?? 0) + count);
  }
  return [...buckets.entries()].sort((a, b) => parseInt(a[0]) - parseInt(b[0]));
}

/** The text report of `prmkit data stats`. */
export function formatStats(stats: DataStats, read?: ReadStats): string {
  const lines: string[] = [];
  const shareOf = (n: number, of: number) => share(n, of, { missing: '-' });
  if (read) {
    lines.push(`file: ${read.path} (format ${read.format})`);
    lines.push(`records ${read.records}  samples ${read.samples}  rejected ${read.rejected}  dropped steps ${read.droppedSteps}  truncated steps ${read.truncatedSteps}`);
    if (read.rejectsPath) lines.push(`rejects written to ${read.rejectsPath}`);
  }
  const s = stats.stepsPerSampleSummary;
  lines.push(`samples ${stats.samples}  steps ${stats.steps}  steps/sample min ${s.min} median ${s.median} mean ${s.mean.toFixed(2)} max ${s.max}`);
  lines.push(`sources: ${Object.entries(stats.sources).map(([k, v]) => `${k} ${v}`).join(', ') || '-'}`);
  lines.push('', 'steps per sample');
  lines.push(...histogramRows(bucketHistogram(stats.stepsPerSample), stats.samples));
  const l = stats.labels;
  lines.push('', 'labels');
  if (l.labelledSteps === 0) lines.push('  (no per-step labels)');
  else {
    lines.push(`  labelled samples ${l.labelledSamples}  labelled steps ${l.labelledSteps}  mean label ${l.mean?.toFixed(4)}`);
    lines.push(`  positive (1) ${l.positive} (${shareOf(l.positive, l.labelledSteps)})  negative (0) ${l.negative} (${shareOf(l.negative, l.labelledSteps)})  soft ${l.soft} (${shareOf(l.soft, l.labelledSteps)})`);
  }
  const f = stats.firstError;
  lines.push('', 'first error');
  lines.push(`  none (all steps correct) ${f.none} (${shareOf(f.none, stats.samples)})  at a step ${f.known - f.none} (${shareOf(f.known - f.none, stats.samples)})  unknown ${f.unknown}`);
  if (f.known - f.none > 0) {
    lines.push('  position (0-based step)');
    lines.push(...histogramRows(bucketHistogram(f.positions, 0), f.known - f.none, '    '));
  }
  return lines.join('\n');
}

function histogramRows(rows: [string, number][], total: number, indent = '  '): string[] {
  const width = Math.max(...rows.map(([k]) => k.length), 5);
  const max = Math.max(...rows.map(([, v]) => v), 1);
  return rows.map(([k, v]) => `${indent}${k.padStart(width)}  ${String(v).padStart(8)}  ${share(v, Math.max(total, 1)).padStart(6)}  ${'#'.repeat(Math.round((40 * v) / max))}`);
}
