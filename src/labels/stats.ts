/**
 * Label statistics: where labelers put the first error, how often two labelings agree by
 * position, and (when samples carry the truth in meta.truth, as sim samples do) how well each
 * labeling locates the true first error.
 *
 * Definitions (pred = a labeling's first-error index, truth = the true one, -1 = no error):
 *   precision = #(pred = truth != -1) / #(pred != -1)   — of the errors flagged, share at the right step
 *   recall    = #(pred = truth != -1) / #(truth != -1)  — of the true errors, share found at the right step
 *   accuracy  = #(pred = truth) / n                     — exact match, "no error" included
 *   accError / accCorrect / f1: ProcessBench's accuracies on erroneous / correct samples and their harmonic mean.
 */
import type { StepSample } from '../data/types.js';
import { percent } from '../util/format.js';

export interface KindMetrics {
  n: number;
  /** Share located exactly. */
  accuracy: number;
  /** Share where the labeling said "no error". */
  missed: number;
  /** Share flagged at a later step than the truth. */
  late: number;
  /** Share flagged at an earlier step than the truth. */
  early: number;
}

export interface FirstErrorMetrics {
  /** Samples with both a prediction and a truth. */
  n: number;
  predictedErrors: number;
  trueErrors: number;
  /** Errors flagged at the true step. */
  hits: number;
  precision: number | null;
  recall: number | null;
  accuracy: number | null;
  accError: number | null;
  accCorrect: number | null;
  f1: number | null;
  /** Per true error kind (meta.truth.errorKind), and "none" for correct samples. */
  byKind: Record<string, KindMetrics>;
}

/** Reads the truth a sample carries: meta.truth = { firstError, errorKind }. */
export function truthOf(sample: Pick<StepSample, 'meta'>): { firstError: number; kind: string | null } | undefined {
  const t = sample.meta?.truth as { firstError?: unknown; errorKind?: unknown } | undefined;
  if (!t || typeof t.firstError !== 'number') return undefined;
  return { firstError: t.firstError, kind: typeof t.errorKind === 'string' ? t.errorKind : null };
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/** Accumulates first-error predictions against the truth, one sample at a time. */
export class FirstErrorTally {
  private n = 0;
  private predicted = 0;
  private trueErrors = 0;
  private hits = 0;
  private exact = 0;
  private correctSamples = 0;
  private correctRight = 0;
  private readonly kinds = new Map<string, { n: number; exact: number; missed: number; late: number; early: number }>();

  add(pred: number | undefined, truth: number | undefined, kind?: string | null): void {
    if (pred === undefined || truth === undefined) return;
    this.n++;
    if (pred !== -1) this.predicted++;
    if (truth !== -1) this.trueErrors++;
    else this.correctSamples++;
    if (pred === truth) {
      this.exact++;
      if (truth !== -1) this.hits++;
      else this.correctRight++;
    }
    const k = truth === -1 ? 'none' : (kind ?? 'unknown');
    const row = this.kinds.get(k) ?? { n: 0, exact: 0, missed: 0, late: 0, early: 0 };
    row.n++;
    if (pred === truth) row.exact++;
    else if (pred === -1) row.missed++;
    else if (truth === -1 || pred < truth) row.early++;
    else row.late++;
    this.kinds.set(k, row);
  }

  metrics(): FirstErrorMetrics {
    const accError = ratio(this.hits, this.trueErrors);
    const accCorrect = ratio(this.correctRight, this.correctSamples);
    const f1 = accError !== null && accCorrect !== null ? (accError + accCorrect > 0 ? (2 * accError * accCorrect) / (accError + accCorrect) : 0) : null;
    const byKind: Record<string, KindMetrics> = {};
    for (const [k, r] of [...this.kinds.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      byKind[k] = { n: r.n, accuracy: r.exact / r.n, missed: r.missed / r.n, late: r.late / r.n, early: r.early / r.n };
    }
    return {
      n: this.n,
      predictedErrors: this.predicted,
      trueErrors: this.trueErrors,
      hits: this.hits,
      precision: ratio(this.hits, this.predicted),
      recall: ratio(this.hits, this.trueErrors),
      accuracy: ratio(this.exact, this.n),
      accError,
      accCorrect,
      f1,
      byKind,
    };
  }
}

/** Position buckets: "none" for -1, "0".."9", then "10+". */
export function positionBucket(index: number): string {
  if (index === -1) return 'none';
  return index >= 10 ? '10+' : String(index);
}

export interface AgreementRow {
  /** Samples the first labeling put at this position. */
  a: number;
  /** Samples the second labeling put at this position. */
  b: number;
  /** Samples both put at this position. */
  agree: number;
}

/** Agreement of two first-error labelings, by position. */
export class AgreementTally {
  private readonly rows = new Map<string, AgreementRow>();
  private total = 0;
  private agreed = 0;

  add(a: number | undefined, b: number | undefined): void {
    if (a === undefined || b === undefined) return;
    this.total++;
    const row = (key: string) => {
      const r = this.rows.get(key) ?? { a: 0, b: 0, agree: 0 };
      this.rows.set(key, r);
      return r;
    };
    row(positionBucket(a)).a++;
    row(positionBucket(b)).b++;
    if (a === b) {
      this.agreed++;
      row(positionBucket(a)).agree++;
    }
  }

  table(): { n: number; agreement: number | null; byPosition: Record<string, AgreementRow> } {
    const order = (k: string) => (k === 'none' ? -1 : k === '10+' ? 10 : Number(k));
    const byPosition: Record<string, AgreementRow> = {};
    for (const k of [...this.rows.keys()].sort((x, y) => order(x) - order(y))) byPosition[k] = this.rows.get(k)!;
    return { n: this.total, agreement: ratio(this.agreed, this.total), byPosition };
  }
}

export interface LabelQuality {
  samples: number;
  /** Samples with a first-error label. */
  labelled: number;
  /** How many samples each first-error position got. */
  positions: Record<string, number>;
  /** Against meta.truth, when samples carry it. */
  truth?: FirstErrorMetrics;
  /** Labeling (a) vs truth (b) by position, when samples carry the truth. */
  agreementWithTruth?: ReturnType<AgreementTally['table']>;
}

/** Streaming version of computeLabelStats. */
export class LabelQualityTally {
  private samples = 0;
  private labelled = 0;
  private readonly positions = new Map<string, number>();
  private readonly truth = new FirstErrorTally();
  private readonly agreement = new AgreementTally();
  private withTruth = 0;

  /** `firstError` overrides the sample's own (e.g. a judge verdict kept elsewhere). */
  add(sample: Pick<StepSample, 'meta' | 'firstError'>, firstError: number | undefined = sample.firstError): void {
    this.samples++;
    if (firstError === undefined) return;
    this.labelled++;
    const bucket = positionBucket(firstError);
    this.positions.set(bucket, (this.positions.get(bucket) ?? 0) + 1);
    const t = truthOf(sample);
    if (t) {
      this.withTruth++;
      this.truth.add(firstError, t.firstError, t.kind);
      this.agreement.add(firstError, t.firstError);
    }
  }

  result(): LabelQuality {
    const order = (k: string) => (k === 'none' ? -1 : k === '10+' ? 10 : Number(k));
    const positions: Record<string, number> = {};
    for (const k of [...this.positions.keys()].sort((x, y) => order(x) - order(y))) positions[k] = this.positions.get(k)!;
    const out: LabelQuality = { samples: this.samples, labelled: this.labelled, positions };
    if (this.withTruth > 0) {
      out.truth = this.truth.metrics();
      out.agreementWithTruth = this.agreement.table();
    }
    return out;
  }
}

/** Label quality of a set of labelled samples (firstError against meta.truth when present). */
export function computeLabelStats(samples: Iterable<Pick<StepSample, 'meta' | 'firstError'>>): LabelQuality {
  const tally = new LabelQualityTally();
  for (const s of samples) tally.add(s);
  return tally.result();
}

/** Right-aligned, so that the figures of several lines stand in columns. */
const aligned = (x: number | null | undefined) => percent(x).padStart(6);

/** A few lines for the terminal: one per labeling with truth metrics. */
export function formatQuality(name: string, q: LabelQuality): string {
  const head = `${name}: ${q.labelled}/${q.samples} labelled`;
  if (!q.truth) return head;
  const t = q.truth;
  const kinds = Object.entries(t.byKind)
    .map(([k, m]) => `${k} ${percent(m.accuracy)} (n=${m.n})`)
    .join(', ');
  return `${head}; vs truth: precision ${aligned(t.precision)}, recall ${aligned(t.recall)}, exact ${aligned(t.accuracy)}, F1 ${aligned(t.f1)}\n  located by kind: ${kinds}`;
}
