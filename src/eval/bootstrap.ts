import { Rng } from '../util/rng.js';

export interface BootstrapOptions {
  /** Number of resamples (default 1000); 0 disables the intervals. */
  resamples?: number;
  /** Seed of the resampling stream (default 0). */
  seed?: number;
  /** Confidence level in percent (default 95). */
  level?: number;
}

export type Interval = [number, number];

/**
 * Percentile bootstrap over items (problems): `resamples` draws of n indices with replacement
 * from a seeded Rng. All metrics are resampled with the SAME index draws (paired), so
 * intervals of different metrics and curve points are comparable. Returns the draws as counts
 * per index (how often problem i appears in resample b), which turns every metric's resampled
 * mean into a dot product.
 */
export function bootstrapCounts(nItems: number, resamples: number, seed: number): Uint16Array[] {
  if (nItems > 65535) throw new Error(`bootstrap: ${nItems} items exceed the count width`);
  const rng = new Rng(seed);
  const draws: Uint16Array[] = [];
  for (let b = 0; b < resamples; b++) {
    const counts = new Uint16Array(nItems);
    for (let i = 0; i < nItems; i++) counts[rng.int(0, nItems - 1)]++;
    draws.push(counts);
  }
  return draws;
}

/** The percentile interval (percent) of the mean of 0/1 outcomes over the resamples. */
export function bootstrapInterval(outcomes: ArrayLike<number>, draws: readonly Uint16Array[], level: number): Interval {
  const n = outcomes.length;
  const means = new Float64Array(draws.length);
  draws.forEach((counts, b) => {
    let sum = 0;
    for (let i = 0; i < n; i++) if (counts[i] !== 0) sum += counts[i] * outcomes[i];
    means[b] = (100 * sum) / n;
  });
  means.sort();
  const alpha = (100 - level) / 200;
  return [quantile(means, alpha), quantile(means, 1 - alpha)];
}

/** Quantile of an ascending array with linear interpolation between order statistics (numpy's default). */
export function quantile(sortedAsc: ArrayLike<number>, q: number): number {
  const n = sortedAsc.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sortedAsc[lo] + (pos - lo) * (sortedAsc[hi] - sortedAsc[lo]);
}
