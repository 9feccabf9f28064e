/**
 * Numbers for people: percentages in logs, tables and summaries. The name says the scale of
 * the input, so a fraction (0.123) and a value already in percent (12.3) are never confused.
 */

export interface PercentOptions {
  /** Decimals shown (default 1). */
  digits?: number;
  /** Shown for null, undefined and NaN (default "n/a"). */
  missing?: string;
  /** Append "%" (default true; off for table cells whose header says %). */
  sign?: boolean;
}

function known(x: number | null | undefined): x is number {
  return x !== null && x !== undefined && !Number.isNaN(x);
}

/** A fraction as a percentage: 0.123 -> "12.3%". */
export function percent(fraction: number | null | undefined, options: PercentOptions = {}): string {
  return known(fraction) ? percentText(100 * fraction, options) : (options.missing ?? 'n/a');
}

/** part of whole as a percentage: (1, 8) -> "12.5%"; `missing` when whole is 0. */
export function share(part: number, whole: number, options: PercentOptions = {}): string {
  return whole > 0 ? percentText((100 * part) / whole, options) : (options.missing ?? 'n/a');
}

function percentText(value: number, { digits = 1, sign = true }: PercentOptions): string {
  return `${value.toFixed(digits)}${sign ? '%' : ''}`;
}

/** A value already in percent (metrics stored as 0-100), to `digits` decimals: 12.345 -> "12.3". */
export function percentValue(value: number | null | undefined, digits = 1, missing = '-'): string {
  return known(value) ? value.toFixed(digits) : missing;
}

/** "1,500 of 3,400" (or "all 3,400"): how much of a benchmark an average covers. */
export function coverage(n: number, total: number): string {
  return n === total ? `all ${total.toLocaleString('en-US')}` : `${n.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
}
