import type { StepSample } from '../data/types.js';
import { bucketByLength } from '../model/encode.js';
import { Rng } from '../util/rng.js';

/**
 * Training items and the batch plan: which samples go into which padded micro-batch, in which
 * order, epoch by epoch. The plan is a pure function of (item lengths, seed, epoch), so a data
 * cursor (epoch, batch) is all a checkpoint needs to resume the exact same stream.
 */
export type TruncationPolicy = 'drop' | 'keep-first-steps';

/** What encode() gives back for one sample (the subset of the encode module's result used here). */
export interface EncodedForTraining {
  inputIds: ArrayLike<number>;
  stepPositions: readonly number[];
  nSteps: number;
  truncated?: { keptSteps: number; reason: string };
}

export type EncodeFn = (sample: { problem: string; steps: string[] }) => EncodedForTraining;

export interface TrainItem {
  id: string;
  inputIds: Int32Array;
  stepPositions: number[];
  /** One per step position (the labelled prefix of the sample). */
  labels: number[];
  /** The sample's first error, when known (for dev first-error metrics). */
  firstError?: number;
}

export interface PrepareReport {
  samples: number;
  kept: number;
  /** Samples without labels (not trainable). */
  unlabelled: number;
  /** Samples whose steps after the last label were not shown to the model (MC labels stop at the first negative). */
  cutAfterLastLabel: number;
  /** Samples longer than maxLength that were dropped (policy drop, or nothing fit). */
  droppedTooLong: number;
  /** Samples longer than maxLength kept with their first steps only (policy keep-first-steps). */
  truncatedSamples: number;
  /** Labelled steps lost to truncation (in kept and dropped samples). */
  droppedSteps: number;
}

export interface PrepareOptions {
  truncation: TruncationPolicy;
  /** 'hard' requires 0/1 labels; 'soft' accepts any value in [0,1]. */
  labelMode: 'hard' | 'soft';
}

/**
 * Encodes labelled samples for training. A sample is shown up to its last labelled step (steps
 * after the first negative MC step are dropped, not labelled). Samples that do not fit follow
 * the truncation policy and are counted; nothing is cut silently.
 */
export function prepareItems(samples: Iterable<StepSample>, encode: EncodeFn, opts: PrepareOptions): { items: TrainItem[]; report: PrepareReport } {
  const report: PrepareReport = { samples: 0, kept: 0, unlabelled: 0, cutAfterLastLabel: 0, droppedTooLong: 0, truncatedSamples: 0, droppedSteps: 0 };
  const items: TrainItem[] = [];
  for (const sample of samples) {
    report.samples++;
    const labels = sample.labels;
    if (!labels || labels.length === 0) {
      report.unlabelled++;
      continue;
    }
    if (labels.length > sample.steps.length) {
      throw new Error(`sample ${sample.id}: ${labels.length} labels for ${sample.steps.length} steps`);
    }
    labels.forEach((p, j) => {
      const ok = opts.labelMode === 'hard' ? p === 0 || p === 1 : p >= 0 && p <= 1;
      if (!ok) {
        throw new Error(`sample ${sample.id}: labels[${j}] = ${p}, expected ${opts.labelMode === 'hard' ? '0 or 1 (label_mode hard)' : 'a number in [0,1]'}`);
      }
    });
    if (labels.length < sample.steps.length) report.cutAfterLastLabel++;
    const steps = sample.steps.slice(0, labels.length);
    const encoded = encode({ problem: sample.problem, steps });
    let kept = labels.length;
    if (encoded.truncated) {
      kept = Math.min(encoded.truncated.keptSteps, encoded.stepPositions.length);
      report.droppedSteps += labels.length - kept;
      if (opts.truncation === 'drop' || kept === 0) {
        report.droppedTooLong++;
        if (opts.truncation === 'drop') report.droppedSteps += kept;
        continue;
      }
      report.truncatedSamples++;
    }
    if (encoded.stepPositions.length < kept) {
      throw new Error(`sample ${sample.id}: encode() returned ${encoded.stepPositions.length} step positions for ${kept} steps`);
    }
    items.push({
      id: sample.id,
      inputIds: Int32Array.from(encoded.inputIds),
      stepPositions: encoded.stepPositions.slice(0, kept),
      labels: labels.slice(0, kept),
      firstError: sample.firstError,
    });
    report.kept++;
  }
  return { items, report };
}

export function formatPrepareReport(name: string, r: PrepareReport, maxLength: number, policy: TruncationPolicy): string {
  const parts = [`${name}: ${r.kept}/${r.samples} samples kept`];
  if (r.unlabelled) parts.push(`${r.unlabelled} without labels skipped`);
  if (r.cutAfterLastLabel) parts.push(`${r.cutAfterLastLabel} shown up to their last labelled step`);
  if (r.droppedTooLong || r.truncatedSamples) {
    parts.push(
      `longer than max_length ${maxLength} (policy ${policy}): ${r.droppedTooLong} dropped, ${r.truncatedSamples} cut to their first steps, ${r.droppedSteps} labelled steps lost`,
    );
  } else {
    parts.push(`none longer than max_length ${maxLength}`);
  }
  return parts.join('; ');
}

export interface BatchPlanOptions {
  /** Upper bound on batch rows x padded length. */
  maxTokensPerBatch: number;
  /** Upper bound on rows per batch. */
  maxBatchSize: number;
  seed: number | string;
  /** Samples are shuffled, then sorted by length within windows of this many batches' worth. */
  windowBatches?: number;
  /**
   * Sort by length within the windows (default), so batches carry little padding; false keeps
   * the shuffled order, so each batch is a random sample (train.group_by_length).
   */
  groupByLength?: boolean;
  shuffle?: boolean;
}

/**
 * The micro-batches of one epoch as lists of item indices. Shuffle everything with the epoch's
 * RNG, bucket by length inside windows (bucketByLength: sorted, packed under the token budget;
 * the window keeps batch membership random from epoch to epoch), then shuffle the batch order
 * so lengths do not march up and down. An item longer than the budget gets a batch of its own.
 */
export function planEpoch(lengths: readonly number[], epoch: number, opts: BatchPlanOptions): number[][] {
  const rng = new Rng(`${opts.seed}`).fork(`epoch:${epoch}`);
  const order = lengths.map((_, i) => i);
  if (opts.shuffle !== false) rng.shuffle(order);
  const window = Math.max(1, (opts.windowBatches ?? 50) * opts.maxBatchSize);
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += window) {
    const chunk = order.slice(start, start + window);
    const sized = chunk.map((i) => ({ inputIds: { length: lengths[i] } }));
    for (const group of bucketByLength(sized, opts.maxTokensPerBatch, { maxBatchSize: opts.maxBatchSize, sortByLength: opts.groupByLength })) {
      batches.push(group.map((j) => chunk[j]));
    }
  }
  if (opts.shuffle !== false) rng.shuffle(batches);
  return batches;
}

/**
 * The optimizer steps of one epoch, each a list of micro-batches (item index lists). A step holds
 * `rowsPerStep` items (batch_size x grad_accumulation, as TRL counts its global batch; one step
 * of each epoch, the remainder, may hold fewer): the rows are fixed first, then cut into
 * micro-batches of at most `maxBatchSize` rows and `maxTokensPerBatch` padded tokens. The token
 * cap therefore only adds micro-batches (more accumulation), never takes rows out of a step.
 *
 * Rows: shuffled with the epoch's RNG; with groupByLength, sorted by length within windows of 50
 * micro-batches' rows (HF's megabatches) before they are cut into steps; then the step order is
 * shuffled. With one micro-batch a step and no token cap binding, this is the plan prmkit made
 * before steps were counted in rows, so those runs reproduce.
 */
export function planEpochSteps(lengths: readonly number[], epoch: number, opts: BatchPlanOptions & { rowsPerStep: number }): number[][][] {
  if (!(opts.rowsPerStep >= 1)) throw new Error(`rows per optimizer step must be >= 1, got ${opts.rowsPerStep}`);
  const rng = new Rng(`${opts.seed}`).fork(`epoch:${epoch}`);
  const order = lengths.map((_, i) => i);
  if (opts.shuffle !== false) rng.shuffle(order);
  const window = Math.max(opts.rowsPerStep, (opts.windowBatches ?? 50) * opts.maxBatchSize);
  const steps: number[][] = [];
  for (let start = 0; start < order.length; start += window) {
    const chunk = order.slice(start, start + window);
    const positions = chunk.map((_, k) => k);
    if (opts.groupByLength !== false) positions.sort((a, b) => lengths[chunk[a]] - lengths[chunk[b]] || a - b);
    for (let k = 0; k < positions.length; k += opts.rowsPerStep) steps.push(positions.slice(k, k + opts.rowsPerStep).map((p) => chunk[p]));
  }
  if (opts.shuffle !== false) rng.shuffle(steps);
  return steps.map((rows) => {
    const sized = rows.map((i) => ({ inputIds: { length: lengths[i] } }));
    return bucketByLength(sized, opts.maxTokensPerBatch, { maxBatchSize: opts.maxBatchSize }).map((group) => group.map((j) => rows[j]));
  });
}

/** Where the data stream stands: the next micro-batch to run is `batch` of epoch `epoch`. */
export interface DataCursor {
  epoch: number;
  batch: number;
}

/**
 * The whole run's plan: epochs of optimizer steps of batch_size x accumulation rows each (see
 * planEpochSteps), kept as each epoch's micro-batches and the step ranges over them. Planned up
 * front so the total number of optimizer steps is known for the learning-rate schedule.
 */
export class TrainingPlan {
  readonly epochs: number[][][];
  /** For every optimizer step: its epoch and its micro-batch range [start, end). */
  readonly steps: { epoch: number; start: number; end: number }[];
  /** Rows every full optimizer step trains on. */
  readonly rowsPerStep: number;

  constructor(lengths: readonly number[], nEpochs: number, readonly accumulation: number, opts: BatchPlanOptions, maxSteps?: number) {
    if (lengths.length === 0) throw new Error('no training items');
    if (!(accumulation >= 1)) throw new Error(`gradient accumulation must be >= 1, got ${accumulation}`);
    this.rowsPerStep = opts.maxBatchSize * accumulation;
    this.epochs = [];
    this.steps = [];
    for (let e = 0; e < nEpochs; e++) {
      const micro: number[][] = [];
      this.epochs.push(micro);
      for (const step of planEpochSteps(lengths, e, { ...opts, rowsPerStep: this.rowsPerStep })) {
        this.steps.push({ epoch: e, start: micro.length, end: micro.length + step.length });
        micro.push(...step);
        if (maxSteps !== undefined && this.steps.length >= maxSteps) return;
      }
    }
  }

  get totalSteps(): number {
    return this.steps.length;
  }

  /** The cursor before optimizer step `step` (0-based); step === totalSteps gives the end. */
  cursorAt(step: number): DataCursor {
    if (step >= this.steps.length) return { epoch: this.epochs.length, batch: 0 };
    const s = this.steps[step];
    return { epoch: s.epoch, batch: s.start };
  }

  /** The optimizer step a saved cursor points at; throws when the cursor is not a step boundary of this plan. */
  stepOf(cursor: DataCursor): number {
    if (cursor.epoch >= this.epochs.length) return this.steps.length;
    const i = this.steps.findIndex((s) => s.epoch === cursor.epoch && s.start === cursor.batch);
    if (i < 0) throw new Error(`data cursor epoch ${cursor.epoch} batch ${cursor.batch} is not a step boundary of this training plan (was the data or batch config changed?)`);
    return i;
  }

  /** Micro-batches (item index lists) of optimizer step `step`. */
  microBatches(step: number): number[][] {
    const s = this.steps[step];
    return this.epochs[s.epoch].slice(s.start, s.end);
  }
}
